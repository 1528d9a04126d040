# SPDX-License-Identifier: GPL-2.0-only
# The library of the type1 dirty tracking and migration selftests, built
# beside the tests and linked into each (see lib/include/vfio_mig_util.h).

LIBVFIO_MIG_SRCDIR := $(selfdir)/vfio/lib

LIBVFIO_MIG_C := vfio_mig_util.c
LIBVFIO_MIG_C += vfio_mig_perf.c
LIBVFIO_MIG_C += vfio_mig_fail_nth.c
LIBVFIO_MIG_C += vfio_mig_migdev.c
LIBVFIO_MIG_C += vfio_mig_fuzz.c
LIBVFIO_MIG_C += vfio_mig_fuzz_model.c

LIBVFIO_MIG_OUTPUT := $(OUTPUT)/libvfio_mig

LIBVFIO_MIG_O := $(patsubst %.c, $(LIBVFIO_MIG_OUTPUT)/%.o, $(LIBVFIO_MIG_C))

$(shell mkdir -p $(LIBVFIO_MIG_OUTPUT))

CFLAGS += -I$(LIBVFIO_MIG_SRCDIR)/include

$(LIBVFIO_MIG_O): $(LIBVFIO_MIG_OUTPUT)/%.o : $(LIBVFIO_MIG_SRCDIR)/%.c
	$(CC) $(CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@

EXTRA_CLEAN += $(LIBVFIO_MIG_OUTPUT)
