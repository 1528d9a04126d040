#!/bin/bash
# Inside the test VM, for make viommu: set up the devices, then the vIOMMU
# live migration (viommu-migration.py) with MAPPINGS mappings and the
# remaining options, its TAP in /mnt/viommu.tap.
#
#   viommu.sh KSFT_DIR MIGDEV_KO MAPPINGS [viommu-migration.py options]
set -eu
ksft=$1 kmod=$2 n=$3
shift 3
MIGDEV_KO=$kmod "$(dirname "$0")/setup-devices.sh" > /dev/null
uname -r
VFIO_SELFTEST_REQUIRE=migdev exec python3 "$(dirname "$0")/viommu-migration.py" \
	--guest "$ksft/viommu-guest.elf" --stats "$ksft/ioctl-stats.so" \
	-n "$n" "$@" --tap /mnt/viommu.tap
