#!/bin/bash
# Inside the test VM, for make fuzz: set up the devices, then run the
# fuzzer's kselftests (the vfio_fuzz_*_test of KSFT_DIR/tests.list) with
# the budget of VFIO_FUZZ_ITERS, VFIO_FUZZ_SECONDS and VFIO_FUZZ_SEED (set
# by tooling/fuzz), each one's TAP in $VM_RESULTS/kselftest/<name>.tap and
# its exit status in <name>.exit (tooling/fuzz reports them with the skip
# policy).  Exit status non-zero when any failed.
#
#   fuzz.sh KSFT_DIR
set -u
ksft=$1
export MIGDEV_KO=${MIGDEV_KO:-$ksft/migdev.ko}
"$(dirname "$0")/setup-devices.sh" > /dev/null
out=$VM_RESULTS/kselftest
mkdir -p "$out"
rc=0 n=0
for name in $(grep -E '^vfio_fuzz.*_test$' "$ksft/tests.list"); do
	n=$((n + 1))
	echo "== $name"
	"$ksft/$name" 2>&1 | tee "$out/$name.tap"
	st=${PIPESTATUS[0]}
	echo "$st" > "$out/$name.exit"
	[ "$st" = 0 ] || rc=1
done
[ $n -gt 0 ] || { echo "no vfio_fuzz*_test in $ksft/tests.list"; exit 1; }
exit $rc
