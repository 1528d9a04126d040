#!/bin/bash
# Inside the test VM: bind QEMU's edu device (1234:11e8) to vfio-pci,
# create two mdevs of the in-tree mtty sample (a group that never pins)
# and three of the migdev sample, loading it first when it is a module
# ($MIGDEV_KO, the file built with the running kernel).
for dev in /sys/bus/pci/devices/*; do
	[ "$(cat "$dev/vendor")" = 0x1234 ] && [ "$(cat "$dev/device")" = 0x11e8 ] || continue
	echo vfio-pci > "$dev/driver_override"
	echo "${dev##*/}" > /sys/bus/pci/drivers_probe
	echo "edu ${dev##*/} -> $(basename "$(readlink "$dev/driver")"), group $(basename "$(readlink "$dev/iommu_group")")"
done

mtty=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
if [ -d "$mtty" ]; then
	for uuid in 6a0a2a3e-0000-4000-8000-00000000a001 6a0a2a3e-0000-4000-8000-00000000a002; do
		echo "$uuid" > "$mtty/create" && echo "mdev mtty-2 $uuid"
	done
fi
# instances of the migdev sample: source, destination, one more
if [ ! -d /sys/module/migdev ] && [ -n "${MIGDEV_KO:-}" ] && [ -f "$MIGDEV_KO" ]; then
	insmod "$MIGDEV_KO" && echo "insmod $MIGDEV_KO"
fi
migdev=/sys/class/mdev_bus/migdev/mdev_supported_types/migdev-1
if [ -d "$migdev" ]; then
	for uuid in 6a0a2a3e-0000-4000-8000-00000000b001 6a0a2a3e-0000-4000-8000-00000000b002 \
		    6a0a2a3e-0000-4000-8000-00000000b003; do
		echo "$uuid" > "$migdev/create" && echo "mdev migdev-1 $uuid"
	done
fi
exit 0
