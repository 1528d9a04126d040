/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The library of the type1 dirty tracking and migration selftests
 * (lib/libvfio_mig.mk): find a device's group, open a type1 container on
 * it, map memory and drive the dirty page ioctls; read the files of a
 * cgroup.
 *
 * Devices are found in sysfs, so the tests run wherever the devices are:
 *  - PCI: a device bound to vfio-pci, by vendor:device ID (the VM the tests
 *    are written for has QEMU's "edu" device, 1234:11e8, behind intel-iommu);
 *  - mdev: a mediated device, by the name of its parent driver's type.
 *
 * A test that misses a device or a kernel feature is skipped, and the
 * reason starts with a tag that names what is missing, then a colon:
 *
 *   edu            QEMU's edu device bound to vfio-pci
 *   mtty           mtty-2 mdevs (samples/vfio-mdev/mtty.c)
 *   migdev         migdev-1 and migdev-precise mdevs
 *                  (samples/vfio-mdev/migdev.c)
 *   migdev-module  migdev built as a module, at $MIGDEV_KO
 *   failslab       fault injection (CONFIG_FAILSLAB,
 *                  CONFIG_FAULT_INJECTION_DEBUG_FS)
 *   memcg          cgroup2 with the memory controller
 *
 * e.g. SKIP(return, "migdev: needs two migdev-1 mdevs").  A runner that
 * sets the devices up itself names the tags it provides in
 * VFIO_SELFTEST_REQUIRE and fails a run that skips for one of them.
 */
#ifndef __SELFTESTS_VFIO_MIG_UTIL_H
#define __SELFTESTS_VFIO_MIG_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/vfio.h>

#define VFIO_MIG_EDU_VENDOR	0x1234
#define VFIO_MIG_EDU_DEVICE	0x11e8
#define VFIO_MIG_PAGE_4K	4096ULL
#define VFIO_MIG_CG_ROOT	"/sys/fs/cgroup"

/* A number in the file at @path (sysfs, debugfs); -1 on error. */
long sysfs_read_long(const char *path);

/* Write @val to the file at @path (sysfs, debugfs, procfs): 0 or -errno. */
int sysfs_write(const char *path, const char *val);

/* The group number behind a sysfs device directory, or -1. */
int sysfs_iommu_group(const char *devdir);

/* Group of the first PCI device vendor:device bound to vfio-pci, or -1. */
int vfio_find_pci_group(long vendor, long device);

/*
 * Group of the @nth (from 0) mdev whose type directory is named @type
 * ("<parent driver>-<type>", e.g. "mtty-2"), or -1.  @uuid, when not NULL,
 * receives the device's name.
 */
int vfio_find_mdev_group(const char *type, int nth, char *uuid,
			 size_t uuid_len);

/* Read a number from file @name of cgroup directory @cg; -1 on error. */
long long cg_read(const char *cg, const char *name);

/* Value of @key in the flat-keyed cgroup file @name; -1 on error. */
long long cg_key(const char *cg, const char *name, const char *key);

/*
 * Open @group_id and put it in a new container of @iommu_type
 * (VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_IOMMU).  Returns 0 or -errno.
 */
int vfio_open_container(int group_id, int iommu_type, int *container,
			int *group);

/* Open @group_id and add it to @container, which has its IOMMU set. */
int vfio_add_group(int container, int group_id, int *group);

/* MAP_DMA (read and write) and UNMAP_DMA: 0 or -errno. */
int vfio_map(int container, uint64_t iova, void *vaddr, uint64_t size);
int vfio_unmap(int container, uint64_t iova, uint64_t size);

/* The argument of UNMAP_DMA with GET_DIRTY_BITMAP */
struct vfio_mig_unmap_bitmap {
	struct vfio_iommu_type1_dma_unmap unmap;
	struct vfio_bitmap bitmap;
};

/*
 * UNMAP_DMA with GET_DIRTY_BITMAP and @flags, the argument @argsz bytes
 * long; *@unmapped gets the unmapped size.
 */
int vfio_unmap_bitmap_raw(int container, uint32_t argsz, uint32_t flags,
			  uint64_t iova, uint64_t size, uint64_t pgsize,
			  uint64_t *bitmap, uint64_t bitmap_size,
			  uint64_t *unmapped);
int vfio_unmap_bitmap(int container, uint64_t iova, uint64_t size,
		      uint64_t pgsize, uint64_t *bitmap, uint64_t bitmap_size,
		      uint64_t *unmapped);

/* VFIO_IOMMU_DIRTY_PAGES with only a flag (START, STOP). */
int vfio_dirty(int container, uint32_t flags);

/* The argument of DIRTY_PAGES with GET_BITMAP */
struct vfio_mig_dirty_get {
	struct vfio_iommu_type1_dirty_bitmap db;
	struct vfio_iommu_type1_dirty_bitmap_get get;
};

/* DIRTY_PAGES with any @flags and an argument @argsz bytes long. */
int vfio_get_bitmap_raw(int container, uint32_t argsz, uint32_t flags,
			uint64_t iova, uint64_t size, uint64_t pgsize,
			uint64_t *bitmap, uint64_t bitmap_size);

/* GET_BITMAP of [iova, iova + size) at @pgsize into @bitmap. */
int vfio_get_bitmap(int container, uint64_t iova, uint64_t size,
		    uint64_t pgsize, uint64_t *bitmap, uint64_t bitmap_size);

/* Bytes of a bitmap for @size bytes at @pgsize: whole u64 words. */
uint64_t vfio_mig_bitmap_bytes(uint64_t size, uint64_t pgsize);

/* Number of set bits in the first @nbits bits of @bitmap. */
uint64_t vfio_mig_bitmap_weight(const uint64_t *bitmap, uint64_t nbits);

/*
 * Find capability @id in the VFIO_IOMMU_GET_INFO chain of @info (@len bytes
 * valid).  NULL when absent or when the chain is malformed.
 */
struct vfio_info_cap_header *
vfio_iommu_info_cap(struct vfio_iommu_type1_info *info, size_t len,
		    uint16_t id);

#endif /* __SELFTESTS_VFIO_MIG_UTIL_H */
