/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for tests of the migdev sample driver (samples/vfio-mdev/migdev.c,
 * whose register map is samples/vfio-mdev/migdev.h): open an instance, find
 * its v1 migration region, access the region's header at natural width,
 * save and resume its state as QEMU 7.2 does, and drive the device through
 * BAR0 and its debugfs files.
 */
#ifndef __SELFTESTS_VFIO_MIG_MIGDEV_H
#define __SELFTESTS_VFIO_MIG_MIGDEV_H

#include <vfio_mig_util.h>

#include "../../../../../../samples/vfio-mdev/migdev.h"

#define MIGDEV_TYPE		"migdev-1"
#define MIGDEV_PRECISE_TYPE	"migdev-precise"	/* reports its writes */
#define MIGDEV_DEBUGFS		"/sys/kernel/debug/migdev"
/* debugfs "state": the registers, then the internal state */
#define MIGDEV_STATE_BYTES	(MIGDEV_BAR0_SIZE + MIGDEV_STATE_SIZE)

#define MIGDEV_V1_STOP		VFIO_DEVICE_STATE_V1_STOP
#define MIGDEV_V1_RUNNING	VFIO_DEVICE_STATE_V1_RUNNING
#define MIGDEV_V1_SAVING	VFIO_DEVICE_STATE_V1_SAVING
#define MIGDEV_V1_RESUMING	VFIO_DEVICE_STATE_V1_RESUMING

/* The header of the migration region */
#define MIGDEV_HDR_STATE	offsetof(struct vfio_device_migration_info, device_state)
#define MIGDEV_HDR_RESERVED	offsetof(struct vfio_device_migration_info, reserved)
#define MIGDEV_HDR_PENDING	offsetof(struct vfio_device_migration_info, pending_bytes)
#define MIGDEV_HDR_DATA_OFFSET	offsetof(struct vfio_device_migration_info, data_offset)
#define MIGDEV_HDR_DATA_SIZE	offsetof(struct vfio_device_migration_info, data_size)

struct migdev {
	char uuid[256];
	int container;
	int group;
	int fd;
	uint64_t config;	/* offset of the config space region */
	uint64_t bar0;		/* offset of the BAR0 region */
	uint64_t mig;		/* offset of the migration region */
	uint64_t mig_size;
	uint64_t mmap_offset;	/* of the mmappable area in the region */
	uint64_t mmap_size;
};

/*
 * Open instance @nth of mdev type @type ("migdev-1" or "migdev-precise"):
 * in a new type1 v2 container when @container is negative, else in
 * @container (md->container is then a duplicate of it); 0, or -errno
 * (-ENODEV when there is no such instance).
 */
int migdev_open_type(struct migdev *md, const char *type, int nth,
		     int container);

/* Open instance @nth of migdev-1 in a new type1 v2 container. */
int migdev_open(struct migdev *md, int nth);

void migdev_close(struct migdev *md);

/* Migration region accesses: 0 or -errno. */
int mig_read(struct migdev *md, uint64_t off, void *val, size_t len);
int mig_write(struct migdev *md, uint64_t off, const void *val, size_t len);

/* device_state, or ~0 when it cannot be read. */
uint32_t mig_state(struct migdev *md);
int mig_set_state(struct migdev *md, uint32_t state);

/* A 64-bit header field, or ~0 when it cannot be read. */
uint64_t mig_read64(struct migdev *md, uint64_t off);

/*
 * A saved stream is a sequence of chunks, each its size (u64) followed by
 * its data, as QEMU 7.2 moves them.
 *
 * Save one chunk as QEMU 7.2 does: data_offset, data_size, the data (from
 * @map, the mmap of the data section, when set), then pending_bytes, which
 * acknowledges it.  The chunk must lie in the data section.  Appends it to
 * @stream, of which *@len of @max bytes are used.  Returns the chunk's
 * size, or -errno (-ENOSPC: the stream is full).
 */
int64_t migdev_save_chunk(struct migdev *md, uint8_t *stream, size_t *len,
			  size_t max, const void *map);

/* Stop-and-copy: save chunks until nothing is pending; 0 or -errno. */
int migdev_save_rest(struct migdev *md, uint8_t *stream, size_t *len,
		     size_t max);

/*
 * Resume the chunks of the @len bytes of @stream into @md: for each,
 * data_offset, the data, then data_size.  0 or -errno.
 */
int migdev_resume(struct migdev *md, const uint8_t *stream, size_t len);

/* BAR0 accesses, 4 or 8 bytes wide, as a guest's: 0 or -errno. */
int bar0_write(struct migdev *md, uint64_t off, uint64_t val, size_t len);
uint32_t bar0_read32(struct migdev *md, uint64_t off);

/*
 * Start a DMA command through BAR0, as a guest driver does: program the
 * address, length and seed, then write the command register.
 */
int bar0_dma(struct migdev *md, uint32_t cmd, uint64_t iova, uint32_t len,
	     uint32_t seed);

/*
 * Poll BAR0 until MIGDEV_REG_DMA_COUNT differs from @count or
 * MIGDEV_REG_DMA_STATUS from @status, for up to two seconds: true when it
 * did.
 */
bool bar0_poll(struct migdev *md, uint32_t count, uint32_t status);

/* Write a debugfs file of the instance; 0 or -errno of the write. */
int migdev_ctl(struct migdev *md, const char *file, const char *fmt, ...);

/*
 * One DMA command through debugfs "dma": @cmd ("pin", "rw", "keep",
 * "release", "kept") of @len bytes at @iova, seeded @seed; 0 or -errno.
 */
int migdev_dma(struct migdev *md, const char *cmd, uint64_t iova,
	       uint64_t len, uint32_t seed);

/* Bytes of each write of debugfs "stride" */
#define MIGDEV_STRIDE_BYTES	8
/* Most writes of one debugfs "stride" */
#define MIGDEV_STRIDE_MAX	(1024 * 1024)

/*
 * debugfs "stride" (dma "stride IOVA COUNT STRIDE SEED"): @n writes of
 * MIGDEV_STRIDE_BYTES with vfio_dma_rw(), @stride bytes apart from @iova,
 * write k being bytes 8k to 8k + 7 of a transfer seeded @seed, in one
 * command of the device; 0 or -errno (of the first write that failed: the
 * writes before it stay).
 */
int migdev_stride(struct migdev *md, uint64_t iova, uint64_t n,
		  uint64_t stride, uint32_t seed);

/* Read the instance's state (registers, internal state) into @buf. */
int migdev_state(struct migdev *md, void *buf);

/* A number in a debugfs file of the instance ("pinned", "logged"). */
long migdev_read(struct migdev *md, const char *file);

/* Pages in the device's working set. */
long migdev_pinned(struct migdev *md);

/*
 * pid of the device's kernel thread, which runs its DMA commands and makes
 * their calls into VFIO (debugfs "worker"); -1 without one.
 */
int migdev_worker(struct migdev *md);

/* Byte @pos of a DMA transfer seeded @seed: u32 word k is seed + k. */
static inline uint8_t migdev_pattern(uint64_t pos, uint32_t seed)
{
	return (uint8_t)((seed + (uint32_t)(pos / 4)) >> (8 * (pos % 4)));
}

#endif /* __SELFTESTS_VFIO_MIG_MIGDEV_H */
