#!/bin/bash
# Inside the test VM: set up the devices the kselftests use, then run every
# kselftest binary in $1, writing its TAP to $VM_RESULTS/kselftest/<name>.tap
# and its exit status to <name>.exit.
set -u
ksft=$1
out=$VM_RESULTS/kselftest
mkdir -p "$out"

# the migdev module, when it is one, is built beside the kselftests (the
# debug run passes the debug kernel's)
export MIGDEV_KO=${MIGDEV_KO:-$ksft/migdev.ko}
"$(dirname "$0")/setup-devices.sh"

# What this configuration provides (tooling/kernel.config, the VM's edu
# device, setup-devices.sh): a test that finds one of them missing fails
# instead of skipping (see tools/testing/selftests/vfio/vfio_util.h).
export VFIO_SELFTEST_REQUIRE=${VFIO_SELFTEST_REQUIRE-edu mtty migdev migdev-module failslab memcg}
echo "VFIO_SELFTEST_REQUIRE=$VFIO_SELFTEST_REQUIRE"
# budgets of the stress test and the fuzzer (make test-debug: longer)
export VFIO_STRESS_SECONDS=${VFIO_STRESS_SECONDS:-5}
echo "VFIO_STRESS_SECONDS=$VFIO_STRESS_SECONDS"
# each test binary's time limit (the debug kernel runs the same steps slower)
echo "VFIO_SELFTEST_TIMEOUT=${VFIO_SELFTEST_TIMEOUT:-600}"

for t in "$ksft"/*_test; do
	name=$(basename "$t")
	echo "== $name"
	timeout "${VFIO_SELFTEST_TIMEOUT:-600}" "$t" > "$out/$name.tap" 2>&1
	echo $? > "$out/$name.exit"
	grep -E '^(not )?ok ' "$out/$name.tap"
done

# End to end: live migration by QEMU 7.2 with the migdev sample device
echo "== e2e-migration"
timeout 900 python3 "$(dirname "$0")/e2e-migration.py" --runs "${E2E_RUNS:-1}" --guest "$ksft/e2e-guest.elf" \
	--tap "$out/e2e-migration.tap" > "$out/e2e-migration.log" 2>&1
echo $? > "$out/e2e-migration.exit"
cat "$out/e2e-migration.log"

# Behind a vIOMMU: QEMU's per-mapping GET_BITMAP and unmap-with-bitmap
# paths, at a size for the test run (tooling/viommu runs the full one)
echo "== viommu-migration"
timeout 900 python3 "$(dirname "$0")/viommu-migration.py" --guest "$ksft/viommu-guest.elf" \
	--stats "$ksft/ioctl-stats.so" -n "${VIOMMU_MAPPINGS:-1000}" -r 2 \
	--tap "$out/viommu-migration.tap" > "$out/viommu-migration.log" 2>&1
echo $? > "$out/viommu-migration.exit"
cat "$out/viommu-migration.log"
exit 0
