#!/bin/bash
# Inside the test VM, for make bench: set up the devices (loading MIGDEV_KO
# when given: the series' kernel), then vfio_dirty_perf with the bench's
# options and, on the series, vfio_migdev_perf.
#
#   bench.sh KSFT_DIR MIGDEV_KO|"" [vfio_dirty_perf options]
set -u
ksft=$1 kmod=$2
shift 2
MIGDEV_KO=$kmod "$(dirname "$0")/setup-devices.sh" > /dev/null
uname -r
"$ksft/vfio_dirty_perf" "$@"
[ -z "$kmod" ] || "$ksft/vfio_migdev_perf"
