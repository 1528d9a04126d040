/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for the VFIO kselftests: find a device's group, open a type1
 * container on it, map memory and drive the dirty page ioctls; read the
 * files of a cgroup.
 *
 * Devices are found in sysfs, so the tests run wherever the devices are:
 *  - PCI: a device bound to vfio-pci, by vendor:device ID (the VM the tests
 *    are written for has QEMU's "edu" device, 1234:11e8, behind intel-iommu);
 *  - mdev: a mediated device, by the name of its parent driver's type.
 *
 * A test whose device is missing is skipped with the reason, so that the
 * tests can run anywhere.  A test runner that sets the devices up itself
 * says which ones it provides in VFIO_SELFTEST_REQUIRE (names separated by
 * spaces or commas: "edu", "mtty", "migdev", "migdev-module", "failslab",
 * "memcg"); a test that misses one of those fails instead, with the same
 * reason.
 */
#ifndef __SELFTESTS_VFIO_UTIL_H
#define __SELFTESTS_VFIO_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/vfio.h>

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
#define PAGE_4K		4096ULL

static inline long sysfs_read_long(const char *path)
{
	char buf[32] = "";
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 0) : -1;
}

/* The group number behind a sysfs device directory, or -1. */
static inline int sysfs_iommu_group(const char *devdir)
{
	char link[PATH_MAX + 16], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "%s/iommu_group", devdir);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	return atoi(strrchr(target, '/') + 1);
}

/* Group of the first PCI device vendor:device bound to vfio-pci, or -1. */
static inline int vfio_find_pci_group(long vendor, long device)
{
	const char *drv = "/sys/bus/pci/drivers/vfio-pci";
	char path[PATH_MAX];
	struct dirent *d;
	int group = -1;
	DIR *dir;

	dir = opendir(drv);
	if (!dir)
		return -1;
	while (group < 0 && (d = readdir(dir))) {
		if (!strchr(d->d_name, ':'))
			continue;
		snprintf(path, sizeof(path), "%s/%s/vendor", drv, d->d_name);
		if (sysfs_read_long(path) != vendor)
			continue;
		snprintf(path, sizeof(path), "%s/%s/device", drv, d->d_name);
		if (sysfs_read_long(path) != device)
			continue;
		snprintf(path, sizeof(path), "%s/%s", drv, d->d_name);
		group = sysfs_iommu_group(path);
	}
	closedir(dir);
	return group;
}

/*
 * Group of the @nth (from 0) mdev whose type directory is named @type
 * ("<parent driver>-<type>", e.g. "mtty-2"), or -1.  @uuid, when not NULL,
 * receives the device's name.
 */
static inline int vfio_find_mdev_group(const char *type, int nth, char *uuid,
				       size_t uuid_len)
{
	const char *bus = "/sys/bus/mdev/devices";
	char path[PATH_MAX], target[PATH_MAX];
	struct dirent **names;
	int i, n, group = -1;
	ssize_t len;

	n = scandir(bus, &names, NULL, alphasort);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char *base;

		if (group >= 0 || name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/mdev_type", bus, name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		base = strrchr(target, '/') + 1;
		if (strcmp(base, type))
			continue;
		if (nth-- > 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", bus, name);
		group = sysfs_iommu_group(path);
		if (uuid)
			snprintf(uuid, uuid_len, "%s", name);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return group;
}

/* Write @val to the file at @path (sysfs, debugfs, procfs): 0 or -errno. */
static inline int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
	close(fd);
	return ret;
}

#define CG_ROOT		"/sys/fs/cgroup"

/* Read a number from file @name of cgroup directory @cg; -1 on error. */
static inline long long cg_read(const char *cg, const char *name)
{
	char path[256], buf[64], *end;
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f)) {
		v = strtoll(buf, &end, 10);
		if (end == buf)
			v = -1;
	}
	fclose(f);
	return v;
}

/* Value of @key in the flat-keyed cgroup file @name; -1 on error. */
static inline long long cg_key(const char *cg, const char *name, const char *key)
{
	char path[256], k[64];
	long long v, ret = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (!strcmp(k, key))
			ret = v;
	fclose(f);
	return ret;
}

/* Whether @what is listed in VFIO_SELFTEST_REQUIRE. */
static inline bool vfio_required(const char *what)
{
	const char *list = getenv("VFIO_SELFTEST_REQUIRE"), *p;
	size_t len = strlen(what);

	for (p = list; p && *p; p += strcspn(p, " ,")) {
		p += strspn(p, " ,");
		if (!strncmp(p, what, len) && (!p[len] || strchr(" ,", p[len])))
			return true;
	}
	return false;
}

#ifdef TEST_HARNESS_MAIN	/* kselftest_harness.h */
/*
 * The test's reason is written: skip with it, or, when @what is required,
 * fail with it.
 */
static inline void vfio_skip_or_fail(struct __test_metadata *_metadata,
				     const char *what)
{
	char *reason = _metadata->results->reason;
	size_t size = sizeof(_metadata->results->reason);
	const char *req = "required by VFIO_SELFTEST_REQUIRE, but ";
	bool required = vfio_required(what);

	if (required) {
		memmove(reason + strlen(req), reason,
			strnlen(reason, size - strlen(req) - 1) + 1);
		reason[size - 1] = '\0';
		memcpy(reason, req, strlen(req));
		_metadata->exit_code = KSFT_FAIL;
	} else {
		_metadata->exit_code = KSFT_SKIP;
		_metadata->trigger = 0;
	}
	ksft_print_msg("%s: %s\n", required ? "FAIL" : "SKIP", reason);
}

/*
 * In a kselftest_harness test: @what (a name for VFIO_SELFTEST_REQUIRE) is
 * missing.  Skip with the reason, or fail with it when @what is required.
 */
#define VFIO_SKIP_OR_FAIL(what, statement, fmt, ...) do {		\
	snprintf(_metadata->results->reason,				\
		 sizeof(_metadata->results->reason), fmt, ##__VA_ARGS__);	\
	vfio_skip_or_fail(_metadata, what);				\
	statement;							\
} while (0)

/*
 * fail-nth (fault injection, failslab): the n-th slab allocation a task
 * makes after fail_nth_arm() fails.  fail_nth_disarm() says whether it
 * did: false when the task made fewer than n allocations meanwhile.
 */
static inline bool fail_nth_ready(struct __test_metadata *_metadata)
{
	if (sysfs_write("/sys/kernel/debug/failslab/ignore-gfp-wait", "N") ||
	    sysfs_write("/sys/kernel/debug/failslab/verbose", "0"))
		VFIO_SKIP_OR_FAIL("failslab", return false,
				  "no failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
	return true;
}

/*
 * Arm fail-nth for task @tid (a thread id; 0: the calling thread), whose
 * @n-th slab allocation from now on fails.  Returns the file to give
 * fail_nth_disarm(), or -1.
 */
static inline int fail_nth_arm(int tid, int n)
{
	char path[64], val[16];
	int fd;

	if (!tid)
		tid = syscall(SYS_gettid);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/fail-nth", tid, tid);
	fd = open(path, O_RDWR);
	snprintf(val, sizeof(val), "%d", n);
	if (fd >= 0 && write(fd, val, strlen(val)) != (ssize_t)strlen(val)) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline bool fail_nth_disarm(int fd)
{
	char val[16] = "";
	bool injected = pread(fd, val, sizeof(val) - 1, 0) > 0 && !atoi(val);

	if (write(fd, "0", 1) != 1)
		injected = false;
	close(fd);
	return injected;
}
#endif

/*
 * Open @group_id and put it in a new container of @iommu_type
 * (VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_IOMMU).  Returns 0 or -errno.
 */
static inline int vfio_open_container(int group_id, int iommu_type,
				      int *container, int *group)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[64];
	int err;

	*container = open("/dev/vfio/vfio", O_RDWR);
	if (*container < 0)
		return -errno;
	snprintf(path, sizeof(path), "/dev/vfio/%d", group_id);
	*group = open(path, O_RDWR);
	if (*group < 0)
		goto fail_container;
	if (ioctl(*group, VFIO_GROUP_GET_STATUS, &status))
		goto fail_group;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EBUSY;
		goto fail_group;
	}
	if (ioctl(*group, VFIO_GROUP_SET_CONTAINER, container))
		goto fail_group;
	if (ioctl(*container, VFIO_SET_IOMMU, iommu_type))
		goto fail_group;
	return 0;

fail_group:
	err = errno;
	close(*group);
	errno = err;
fail_container:
	err = errno;
	close(*container);
	*container = -1;
	*group = -1;
	return -err;
}

/* Open @group_id and add it to @container, which has its IOMMU set. */
static inline int vfio_add_group(int container, int group_id, int *group)
{
	char path[64];
	int err;

	snprintf(path, sizeof(path), "/dev/vfio/%d", group_id);
	*group = open(path, O_RDWR);
	if (*group < 0)
		return -errno;
	if (ioctl(*group, VFIO_GROUP_SET_CONTAINER, &container)) {
		err = -errno;
		close(*group);
		*group = -1;
		return err;
	}
	return 0;
}

static inline int vfio_map(int container, uint64_t iova, void *vaddr,
			   uint64_t size)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};

	return ioctl(container, VFIO_IOMMU_MAP_DMA, &map) ? -errno : 0;
}

static inline int vfio_unmap(int container, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};

	return ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) ? -errno : 0;
}

struct unmap_bitmap {
	struct vfio_iommu_type1_dma_unmap unmap;
	struct vfio_bitmap bitmap;
};

/*
 * UNMAP_DMA with GET_DIRTY_BITMAP and @flags, the argument @argsz bytes
 * long; *@unmapped gets the unmapped size.
 */
static inline int vfio_unmap_bitmap_raw(int container, uint32_t argsz,
					uint32_t flags, uint64_t iova,
					uint64_t size, uint64_t pgsize,
					uint64_t *bitmap, uint64_t bitmap_size,
					uint64_t *unmapped)
{
	struct unmap_bitmap arg = {
		.unmap.argsz = argsz,
		.unmap.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | flags,
		.unmap.iova = iova,
		.unmap.size = size,
		.bitmap.pgsize = pgsize,
		.bitmap.size = bitmap_size,
		.bitmap.data = (__u64 *)bitmap,
	};
	int ret = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &arg) ? -errno : 0;

	if (unmapped)
		*unmapped = arg.unmap.size;
	return ret;
}

static inline int vfio_unmap_bitmap(int container, uint64_t iova,
				    uint64_t size, uint64_t pgsize,
				    uint64_t *bitmap, uint64_t bitmap_size,
				    uint64_t *unmapped)
{
	return vfio_unmap_bitmap_raw(container, sizeof(struct unmap_bitmap), 0,
				     iova, size, pgsize, bitmap, bitmap_size,
				     unmapped);
}

/* VFIO_IOMMU_DIRTY_PAGES with only a flag (START, STOP). */
static inline int vfio_dirty(int container, uint32_t flags)
{
	struct vfio_iommu_type1_dirty_bitmap db = {
		.argsz = sizeof(db),
		.flags = flags,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &db) ? -errno : 0;
}

struct dirty_get {
	struct vfio_iommu_type1_dirty_bitmap db;
	struct vfio_iommu_type1_dirty_bitmap_get get;
};

/* GET_BITMAP with an argument @argsz bytes long. */
static inline int vfio_get_bitmap_raw(int container, uint32_t argsz,
				      uint64_t iova, uint64_t size,
				      uint64_t pgsize, uint64_t *bitmap,
				      uint64_t bitmap_size)
{
	struct dirty_get arg = {
		.db.argsz = argsz,
		.db.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
		.get.iova = iova,
		.get.size = size,
		.get.bitmap.pgsize = pgsize,
		.get.bitmap.size = bitmap_size,
		.get.bitmap.data = (__u64 *)bitmap,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &arg) ? -errno : 0;
}

/* GET_BITMAP of [iova, iova + size) at @pgsize into @bitmap. */
static inline int vfio_get_bitmap(int container, uint64_t iova, uint64_t size,
				  uint64_t pgsize, uint64_t *bitmap,
				  uint64_t bitmap_size)
{
	return vfio_get_bitmap_raw(container, sizeof(struct dirty_get), iova,
				   size, pgsize, bitmap, bitmap_size);
}

/* Bytes of a bitmap for @size bytes at @pgsize: whole u64 words. */
static inline uint64_t bitmap_bytes(uint64_t size, uint64_t pgsize)
{
	uint64_t pages = (size + pgsize - 1) / pgsize;

	return (pages + 63) / 64 * 8;
}

/* Number of set bits in the first @nbits bits of @bitmap. */
static inline uint64_t bitmap_weight(const uint64_t *bitmap, uint64_t nbits)
{
	uint64_t i, w = 0;

	for (i = 0; i < nbits; i++)
		w += (bitmap[i / 64] >> (i % 64)) & 1;
	return w;
}

/*
 * Find capability @id in the VFIO_IOMMU_GET_INFO chain of @info (@len bytes
 * valid).  NULL when absent or when the chain is malformed.
 */
static inline struct vfio_info_cap_header *
vfio_iommu_info_cap(struct vfio_iommu_type1_info *info, size_t len, uint16_t id)
{
	uint32_t off, hops = 0;

	if (!(info->flags & VFIO_IOMMU_INFO_CAPS))
		return NULL;
	for (off = info->cap_offset; off && hops < 64; hops++) {
		struct vfio_info_cap_header *hdr;

		if (off < sizeof(*info) || off + sizeof(*hdr) > len)
			return NULL;
		hdr = (struct vfio_info_cap_header *)((char *)info + off);
		if (hdr->id == id)
			return hdr;
		off = hdr->next;
	}
	return NULL;
}

#endif /* __SELFTESTS_VFIO_UTIL_H */
