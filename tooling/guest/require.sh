# shellcheck shell=bash
# The features this configuration provides (tooling/kernel.config, the VM's
# edu device, setup-devices.sh), as the tags that start the kselftests' SKIP
# reasons ("edu: ..."): the one place the default is written.  The runner
# (tooling/report.py --require) fails a kselftest SKIP whose tag is in the
# set, and an untagged SKIP while the set is not empty.  Sourced by
# tooling/lib.sh and tooling/guest/selftests.sh; VFIO_SELFTEST_REQUIRE set
# on the host overrides it ("" requires nothing).
VFIO_SELFTEST_REQUIRE_DEFAULT="edu mtty migdev migdev-module failslab memcg"
