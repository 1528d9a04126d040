#!/bin/bash
# Inside the test VM: set up the devices the kselftests use, then run every
# kselftest binary in $1, writing its TAP to $VM_RESULTS/kselftest/<name>.tap
# and its exit status to <name>.exit.
set -u
ksft=$1
out=$VM_RESULTS/kselftest
mkdir -p "$out"

# QEMU's edu device (1234:11e8) to vfio-pci
for dev in /sys/bus/pci/devices/*; do
	[ "$(cat "$dev/vendor")" = 0x1234 ] && [ "$(cat "$dev/device")" = 0x11e8 ] || continue
	echo vfio-pci > "$dev/driver_override"
	echo "${dev##*/}" > /sys/bus/pci/drivers_probe
	echo "edu ${dev##*/} -> $(basename "$(readlink "$dev/driver")"), group $(basename "$(readlink "$dev/iommu_group")")"
done

# mdevs of the in-tree mtty sample: a group that never pins pages
mtty=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
if [ -d "$mtty" ]; then
	for uuid in 6a0a2a3e-0000-4000-8000-00000000a001 6a0a2a3e-0000-4000-8000-00000000a002; do
		echo "$uuid" > "$mtty/create" && echo "mdev mtty-2 $uuid"
	done
fi

for t in "$ksft"/*_test; do
	name=$(basename "$t")
	echo "== $name"
	timeout 600 "$t" > "$out/$name.tap" 2>&1
	echo $? > "$out/$name.exit"
	grep -E '^(not )?ok ' "$out/$name.tap"
done
exit 0
