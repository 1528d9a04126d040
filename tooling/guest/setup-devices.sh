#!/bin/bash
# Inside the test VM: bind QEMU's edu device (1234:11e8) to vfio-pci,
# create two mdevs of the in-tree mtty sample (a group that never pins)
# and three of each type of the migdev sample, loading it first when it is a module
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
# of each type: migdev-1, and migdev-precise, which reports its writes
for t in 1:b precise:d; do
	migdev=/sys/class/mdev_bus/migdev/mdev_supported_types/migdev-${t%:*}
	[ -d "$migdev" ] || continue
	for n in 1 2 3; do
		uuid=6a0a2a3e-0000-4000-8000-00000000${t#*:}00$n
		echo "$uuid" > "$migdev/create" && echo "mdev migdev-${t%:*} $uuid"
	done
done
exit 0
