#!/bin/bash
# Inside the test VM: set up the devices the kselftests use, then run every
# kselftest binary in $1, writing its TAP to $VM_RESULTS/kselftest/<name>.tap
# and its exit status to <name>.exit.
set -u
ksft=$1
out=$VM_RESULTS/kselftest
mkdir -p "$out"

# the migdev module, when it is one, is built beside the kselftests
export MIGDEV_KO=$ksft/migdev.ko
"$(dirname "$0")/setup-devices.sh"

for t in "$ksft"/*_test; do
	name=$(basename "$t")
	echo "== $name"
	timeout 600 "$t" > "$out/$name.tap" 2>&1
	echo $? > "$out/$name.exit"
	grep -E '^(not )?ok ' "$out/$name.tap"
done

# End to end: live migration by QEMU 7.2 with the migdev sample device
echo "== e2e-migration"
timeout 900 python3 "$(dirname "$0")/e2e-migration.py" --runs "${E2E_RUNS:-1}" \
	--tap "$out/e2e-migration.tap" > "$out/e2e-migration.log" 2>&1
echo $? > "$out/e2e-migration.exit"
cat "$out/e2e-migration.log"
exit 0
