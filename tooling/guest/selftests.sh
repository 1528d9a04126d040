#!/bin/bash
# Inside the test VM: set up the devices the kselftests use, then run every
# kselftest binary in $1, writing its TAP to $VM_RESULTS/kselftest/<name>.tap
# and its exit status to <name>.exit.
set -u
ksft=$1
out=$VM_RESULTS/kselftest
mkdir -p "$out"

"$(dirname "$0")/setup-devices.sh"

for t in "$ksft"/*_test; do
	name=$(basename "$t")
	echo "== $name"
	timeout 600 "$t" > "$out/$name.tap" 2>&1
	echo $? > "$out/$name.exit"
	grep -E '^(not )?ok ' "$out/$name.tap"
done
exit 0
