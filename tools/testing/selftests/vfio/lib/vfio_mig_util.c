// SPDX-License-Identifier: GPL-2.0-only
/*
 * Devices, containers and the type1 dirty page ioctls for the selftests:
 * see vfio_mig_util.h.
 */
#include <vfio_mig_util.h>

/* A number in the file at @path (sysfs, debugfs); -1 on error. */
long sysfs_read_long(const char *path)
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
int sysfs_iommu_group(const char *devdir)
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
int vfio_find_pci_group(long vendor, long device)
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
int vfio_find_mdev_group(const char *type, int nth, char *uuid, size_t uuid_len)
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
int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
	close(fd);
	return ret;
}

/* Read a number from file @name of cgroup directory @cg; -1 on error. */
long long cg_read(const char *cg, const char *name)
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
long long cg_key(const char *cg, const char *name, const char *key)
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

/*
 * Open @group_id and put it in a new container of @iommu_type
 * (VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_IOMMU).  Returns 0 or -errno.
 */
int vfio_open_container(int group_id, int iommu_type, int *container,
			int *group)
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
int vfio_add_group(int container, int group_id, int *group)
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

int vfio_map(int container, uint64_t iova, void *vaddr, uint64_t size)
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

int vfio_unmap(int container, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};

	return ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) ? -errno : 0;
}

/*
 * UNMAP_DMA with GET_DIRTY_BITMAP and @flags, the argument @argsz bytes
 * long; *@unmapped gets the unmapped size.
 */
int vfio_unmap_bitmap_raw(int container, uint32_t argsz, uint32_t flags,
			  uint64_t iova, uint64_t size, uint64_t pgsize,
			  uint64_t *bitmap, uint64_t bitmap_size,
			  uint64_t *unmapped)
{
	struct vfio_mig_unmap_bitmap arg = {
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

int vfio_unmap_bitmap(int container, uint64_t iova, uint64_t size,
		      uint64_t pgsize, uint64_t *bitmap, uint64_t bitmap_size,
		      uint64_t *unmapped)
{
	return vfio_unmap_bitmap_raw(container, sizeof(struct vfio_mig_unmap_bitmap), 0,
				     iova, size, pgsize, bitmap, bitmap_size,
				     unmapped);
}

/* VFIO_IOMMU_DIRTY_PAGES with only a flag (START, STOP). */
int vfio_dirty(int container, uint32_t flags)
{
	struct vfio_iommu_type1_dirty_bitmap db = {
		.argsz = sizeof(db),
		.flags = flags,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &db) ? -errno : 0;
}

/* DIRTY_PAGES with any @flags and an argument @argsz bytes long. */
int vfio_get_bitmap_raw(int container, uint32_t argsz, uint32_t flags,
			uint64_t iova, uint64_t size, uint64_t pgsize,
			uint64_t *bitmap, uint64_t bitmap_size)
{
	struct vfio_mig_dirty_get arg = {
		.db.argsz = argsz,
		.db.flags = flags,
		.get.iova = iova,
		.get.size = size,
		.get.bitmap.pgsize = pgsize,
		.get.bitmap.size = bitmap_size,
		.get.bitmap.data = (__u64 *)bitmap,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &arg) ? -errno : 0;
}

/* GET_BITMAP of [iova, iova + size) at @pgsize into @bitmap. */
int vfio_get_bitmap(int container, uint64_t iova, uint64_t size,
		    uint64_t pgsize, uint64_t *bitmap, uint64_t bitmap_size)
{
	return vfio_get_bitmap_raw(container, sizeof(struct vfio_mig_dirty_get),
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, iova,
				   size, pgsize, bitmap, bitmap_size);
}

/* Bytes of a bitmap for @size bytes at @pgsize: whole u64 words. */
uint64_t vfio_mig_bitmap_bytes(uint64_t size, uint64_t pgsize)
{
	uint64_t pages = (size + pgsize - 1) / pgsize;

	return (pages + 63) / 64 * 8;
}

/* Number of set bits in the first @nbits bits of @bitmap. */
uint64_t vfio_mig_bitmap_weight(const uint64_t *bitmap, uint64_t nbits)
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
struct vfio_info_cap_header *
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
