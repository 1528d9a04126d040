#!/bin/bash
# Inside the test VM: set up the devices the kselftests use, then run the
# kselftests the kselftest Makefile lists ($1/tests.list, written by
# tooling/build), writing each one's TAP to $VM_RESULTS/kselftest/<name>.tap
# and its exit status to <name>.exit, then both end-to-end migrations.  A
# listed test without its binary fails.  VFIO_SELFTESTS (names of the
# list) and VFIO_E2E (e2e-migration, viommu-migration), when set, choose
# fewer (make test-race).  VFIO_FIRST_FAILURE=FILE stops at the first
# failure, KUnit's at boot included, and writes what failed to FILE (make
# mutate).
#
#   selftests.sh KSFT_DIR               all of them
#   selftests.sh KSFT_DIR NAME [ARGS]   one kselftest binary, ARGS to its
#                                       harness (e.g. -t TEST); no e2e
set -u
ksft=$1
shift
only=${1:-}
[ $# -eq 0 ] || shift
out=$VM_RESULTS/kselftest
mkdir -p "$out"
. "$(dirname "$0")/require.sh"

# make mutate: the first failure ends the run
first_failure() {	# first_failure WHAT TAP
	[ -n "${VFIO_FIRST_FAILURE:-}" ] || return 0
	{ echo "$1"; grep -m1 -E '^ *not ok' "$2" 2>/dev/null; } > "$VFIO_FIRST_FAILURE"
	exit 0
}
if [ -n "${VFIO_FIRST_FAILURE:-}" ]; then
	dmesg > "$out/kunit.log"
	if grep -qE '^\[[ 0-9.]+\] +not ok [0-9]+ ' "$out/kunit.log"; then
		t=$(grep -m1 -E '^\[[ 0-9.]+\] +not ok [0-9]+ ' "$out/kunit.log" | sed -E 's/.*not ok [0-9]+ //')
		first_failure "kunit $t" /dev/null
	fi
fi

# the migdev module, when it is one, is built beside the kselftests (the
# debug run passes the debug kernel's)
export MIGDEV_KO=${MIGDEV_KO:-$ksft/migdev.ko}
"$(dirname "$0")/setup-devices.sh"

# What this configuration provides: the host's report fails a SKIP tagged
# with one of these (tooling/report.py --require); tests may read it too.
export VFIO_SELFTEST_REQUIRE=${VFIO_SELFTEST_REQUIRE-$VFIO_SELFTEST_REQUIRE_DEFAULT}
echo "VFIO_SELFTEST_REQUIRE=$VFIO_SELFTEST_REQUIRE"
# budgets of the stress test and the fuzzer (make test-debug: longer)
export VFIO_STRESS_SECONDS=${VFIO_STRESS_SECONDS:-5}
echo "VFIO_STRESS_SECONDS=$VFIO_STRESS_SECONDS"
# each test binary's time limit (the debug kernel runs the same steps slower)
echo "VFIO_SELFTEST_TIMEOUT=${VFIO_SELFTEST_TIMEOUT:-600}"

run_test() {	# run_test NAME [ARGS...]
	local name=$1
	shift
	echo "== $name${*:+ $*}"
	if [ ! -x "$ksft/$name" ]; then
		echo "not ok 1 $name # listed by the kselftest Makefile, but $ksft/$name was not built" \
			> "$out/$name.tap"
		echo 1 > "$out/$name.exit"
	else
		timeout "${VFIO_SELFTEST_TIMEOUT:-600}" "$ksft/$name" "$@" > "$out/$name.tap" 2>&1
		echo $? > "$out/$name.exit"
	fi
	if [ -n "$only" ]; then
		cat "$out/$name.tap"
	else
		grep -E '^(not )?ok |^1\.\.0' "$out/$name.tap"
	fi
	[ "$(cat "$out/$name.exit")" = 0 ] || first_failure "kselftest $name" "$out/$name.tap"
}

if [ -n "$only" ]; then
	run_test "$only" "$@"
	exit 0
fi

[ -s "$ksft/tests.list" ] || { echo "no $ksft/tests.list (tooling/build writes it)"; exit 1; }
for name in ${VFIO_SELFTESTS-$(cat "$ksft/tests.list")}; do
	run_test "$name"
done
e2e=${VFIO_E2E-e2e-migration viommu-migration}

# End to end: live migration by QEMU 7.2 with the migdev sample device
if [[ " $e2e " == *" e2e-migration "* ]]; then
echo "== e2e-migration"
timeout 900 python3 "$(dirname "$0")/e2e-migration.py" --runs "${E2E_RUNS:-1}" --guest "$ksft/e2e-guest.elf" \
	--tap "$out/e2e-migration.tap" > "$out/e2e-migration.log" 2>&1
echo $? > "$out/e2e-migration.exit"
cat "$out/e2e-migration.log"
[ "$(cat "$out/e2e-migration.exit")" = 0 ] || first_failure e2e-migration "$out/e2e-migration.tap"
fi

# Behind a vIOMMU: QEMU's per-mapping GET_BITMAP and unmap-with-bitmap
# paths, at a size for the test run (tooling/viommu runs the full one)
if [[ " $e2e " == *" viommu-migration "* ]]; then
echo "== viommu-migration"
timeout 900 python3 "$(dirname "$0")/viommu-migration.py" --guest "$ksft/viommu-guest.elf" \
	--stats "$ksft/ioctl-stats.so" -n "${VIOMMU_MAPPINGS:-1000}" -r 2 \
	--tap "$out/viommu-migration.tap" > "$out/viommu-migration.log" 2>&1
echo $? > "$out/viommu-migration.exit"
cat "$out/viommu-migration.log"
[ "$(cat "$out/viommu-migration.exit")" = 0 ] || first_failure viommu-migration "$out/viommu-migration.tap"
fi
exit 0
