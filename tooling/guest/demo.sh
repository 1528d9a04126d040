#!/bin/bash
# Inside the test VM, for make demo: the type1 dirty tracking walk-through
# on the edu device, then a live migration of a VM with a migdev device
# from QEMU 7.2 to QEMU 7.2 ($E2E_RUNS times, default 1).
#
#   demo.sh BUILD_DIR
set -u
kout=$1
guest=$(dirname "$0")
echo "guest kernel: $(uname -r)"
MIGDEV_KO=$kout/samples/vfio-mdev/migdev.ko "$guest/setup-devices.sh"
echo
echo '== type1 dirty tracking on the edu device'
"$kout/demo-dirty" || exit 1
echo
echo '== live migration of a VM with a migdev device, QEMU 7.2 to QEMU 7.2'
exec python3 "$guest/e2e-migration.py" --guest "$kout/kselftest/vfio/e2e-guest.elf" --runs "${E2E_RUNS:-1}"
