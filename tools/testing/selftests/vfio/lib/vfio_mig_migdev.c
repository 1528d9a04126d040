// SPDX-License-Identifier: GPL-2.0-only
/*
 * The migdev device as the selftests drive it: see vfio_mig_migdev.h.
 */
#include <stdarg.h>

#include <vfio_mig_migdev.h>

/*
 * Open instance @nth of mdev type @type ("migdev-1" or "migdev-precise"):
 * in a new type1 v2 container when @container is negative, else in
 * @container (md->container is then a duplicate of it); 0, or -errno
 * (-ENODEV when there is no such instance).
 */
int migdev_open_type(struct migdev *md, const char *type, int nth,
		     int container)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	char buf[4096];
	uint32_t i;
	int id, ret;

	memset(md, 0, sizeof(*md));
	md->fd = -1;
	md->group = -1;
	md->container = -1;
	id = vfio_find_mdev_group(type, nth, md->uuid, sizeof(md->uuid));
	if (id < 0)
		return -ENODEV;
	if (container < 0) {
		ret = vfio_open_container(id, VFIO_TYPE1v2_IOMMU,
					  &md->container, &md->group);
	} else {
		md->container = dup(container);
		ret = md->container < 0 ? -errno :
		      vfio_add_group(container, id, &md->group);
	}
	if (ret)
		return ret;
	md->fd = ioctl(md->group, VFIO_GROUP_GET_DEVICE_FD, md->uuid);
	if (md->fd < 0 || ioctl(md->fd, VFIO_DEVICE_GET_INFO, &info))
		return -errno;
	for (i = 0; i < info.num_regions; i++) {
		struct vfio_region_info *ri = (void *)buf;
		struct vfio_info_cap_header *hdr;
		uint32_t off;

		memset(buf, 0, sizeof(buf));
		ri->argsz = sizeof(buf);
		ri->index = i;
		if (ioctl(md->fd, VFIO_DEVICE_GET_REGION_INFO, ri))
			return -errno;
		if (i == VFIO_PCI_CONFIG_REGION_INDEX)
			md->config = ri->offset;
		else if (i == VFIO_PCI_BAR0_REGION_INDEX)
			md->bar0 = ri->offset;
		if (!(ri->flags & VFIO_REGION_INFO_FLAG_CAPS))
			continue;
		for (off = ri->cap_offset; off; off = hdr->next) {
			hdr = (void *)(buf + off);
			if (hdr->id == VFIO_REGION_INFO_CAP_TYPE) {
				struct vfio_region_info_cap_type *t = (void *)hdr;

				if (t->type == VFIO_REGION_TYPE_MIGRATION &&
				    t->subtype == VFIO_REGION_SUBTYPE_MIGRATION) {
					md->mig = ri->offset;
					md->mig_size = ri->size;
				}
			} else if (hdr->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
				struct vfio_region_info_cap_sparse_mmap *sp = (void *)hdr;

				if (sp->nr_areas) {
					md->mmap_offset = sp->areas[0].offset;
					md->mmap_size = sp->areas[0].size;
				}
			}
		}
	}
	return md->mig_size ? 0 : -ENOENT;
}

/* Open instance @nth of migdev-1 in a new type1 v2 container. */
int migdev_open(struct migdev *md, int nth)
{
	return migdev_open_type(md, MIGDEV_TYPE, nth, -1);
}

void migdev_close(struct migdev *md)
{
	if (md->fd >= 0)
		close(md->fd);
	if (md->group >= 0)
		close(md->group);
	if (md->container >= 0)
		close(md->container);
	md->fd = -1;
	md->group = -1;
	md->container = -1;
}

/* Region accesses: 0 or -errno. */
int mig_read(struct migdev *md, uint64_t off, void *val, size_t len)
{
	ssize_t n = pread(md->fd, val, len, md->mig + off);

	return n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
}

int mig_write(struct migdev *md, uint64_t off, const void *val, size_t len)
{
	ssize_t n = pwrite(md->fd, val, len, md->mig + off);

	return n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
}

uint32_t mig_state(struct migdev *md)
{
	uint32_t v = ~0U;

	mig_read(md, MIGDEV_HDR_STATE, &v, 4);
	return v;
}

int mig_set_state(struct migdev *md, uint32_t state)
{
	return mig_write(md, MIGDEV_HDR_STATE, &state, 4);
}

uint64_t mig_read64(struct migdev *md, uint64_t off)
{
	uint64_t v = ~0ULL;

	mig_read(md, off, &v, 8);
	return v;
}

/* BAR0 accesses, 4 or 8 bytes wide, as a guest's: 0 or -errno. */
int bar0_write(struct migdev *md, uint64_t off, uint64_t val, size_t len)
{
	ssize_t n = pwrite(md->fd, &val, len, md->bar0 + off);

	return n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
}

uint32_t bar0_read32(struct migdev *md, uint64_t off)
{
	uint32_t v = ~0U;

	if (pread(md->fd, &v, 4, md->bar0 + off) != 4)
		return ~0U;
	return v;
}

/*
 * Start a DMA command through BAR0, as a guest driver does: program the
 * address, length and seed, then write the command register.
 */
int bar0_dma(struct migdev *md, uint32_t cmd, uint64_t iova, uint32_t len,
	     uint32_t seed)
{
	return bar0_write(md, MIGDEV_REG_DMA_ADDR, iova, 8) ?:
	       bar0_write(md, MIGDEV_REG_DMA_LEN, len, 4) ?:
	       bar0_write(md, MIGDEV_REG_DMA_SEED, seed, 4) ?:
	       bar0_write(md, MIGDEV_REG_DMA_CMD, cmd, 4);
}

/*
 * Poll BAR0 until MIGDEV_REG_DMA_COUNT differs from @count or MIGDEV_REG_DMA_STATUS from
 * @status, for up to two seconds: true when it did.
 */
bool bar0_poll(struct migdev *md, uint32_t count, uint32_t status)
{
	int i;

	for (i = 0; i < 2000; i++) {
		if (bar0_read32(md, MIGDEV_REG_DMA_COUNT) != count ||
		    bar0_read32(md, MIGDEV_REG_DMA_STATUS) != status)
			return true;
		usleep(1000);
	}
	return false;
}

/* Write a debugfs file of the instance; 0 or -errno of the write. */
int migdev_ctl(struct migdev *md, const char *file, const char *fmt, ...)
{
	char path[512], buf[128];
	va_list ap;
	ssize_t n;
	int fd, len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), MIGDEV_DEBUGFS "/%s/%s", md->uuid, file);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, buf, len);
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

int migdev_dma(struct migdev *md, const char *cmd, uint64_t iova, uint64_t len,
	       uint32_t seed)
{
	return migdev_ctl(md, "dma", "%s 0x%llx %llu %u", cmd,
			  (unsigned long long)iova, (unsigned long long)len,
			  seed);
}

int migdev_stride(struct migdev *md, uint64_t iova, uint64_t n,
		  uint64_t stride, uint32_t seed)
{
	return migdev_ctl(md, "dma", "stride 0x%llx %llu 0x%llx %u",
			  (unsigned long long)iova, (unsigned long long)n,
			  (unsigned long long)stride, seed);
}

int64_t migdev_save_chunk(struct migdev *md, uint8_t *stream, size_t *len,
			  size_t max, const void *map)
{
	uint64_t off = mig_read64(md, MIGDEV_HDR_DATA_OFFSET);
	uint64_t size = mig_read64(md, MIGDEV_HDR_DATA_SIZE);
	uint8_t *to = stream + *len + 8;

	if (off == ~0ULL || size == ~0ULL || off != md->mmap_offset ||
	    size > MIGDEV_DATA_SIZE || off + size > md->mig_size)
		return -EINVAL;
	if (*len + 8 + size > max)
		return -ENOSPC;
	if (map && off + size <= md->mmap_offset + md->mmap_size)
		memcpy(to, (const char *)map + off - md->mmap_offset, size);
	else if (mig_read(md, off, to, size))
		return -EIO;
	memcpy(stream + *len, &size, 8);
	*len += 8 + size;
	mig_read64(md, MIGDEV_HDR_PENDING);
	return size;
}

int migdev_save_rest(struct migdev *md, uint8_t *stream, size_t *len,
		     size_t max)
{
	int64_t n;

	do {
		n = migdev_save_chunk(md, stream, len, max, NULL);
		if (n < 0)
			return n;
	} while (n && mig_read64(md, MIGDEV_HDR_PENDING));
	return 0;
}

int migdev_resume(struct migdev *md, const uint8_t *stream, size_t len)
{
	size_t pos = 0;
	int ret;

	while (pos < len) {
		uint64_t size, off;

		memcpy(&size, stream + pos, 8);
		off = mig_read64(md, MIGDEV_HDR_DATA_OFFSET);
		if (off == ~0ULL)
			return -EIO;
		ret = mig_write(md, off, stream + pos + 8, size);
		if (ret)
			return ret;
		ret = mig_write(md, MIGDEV_HDR_DATA_SIZE, &size, 8);
		if (ret)
			return ret;
		pos += 8 + size;
	}
	return 0;
}

/* Read the instance's state (registers, internal state) into @buf. */
int migdev_state(struct migdev *md, void *buf)
{
	char path[512];
	size_t got = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), MIGDEV_DEBUGFS "/%s/state", md->uuid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	while (got < MIGDEV_STATE_BYTES &&
	       (n = read(fd, (char *)buf + got, MIGDEV_STATE_BYTES - got)) > 0)
		got += n;
	close(fd);
	return got == MIGDEV_STATE_BYTES ? 0 : -EIO;
}

/* A number in a debugfs file of the instance ("pinned", "logged"). */
long migdev_read(struct migdev *md, const char *file)
{
	char path[512];

	snprintf(path, sizeof(path), MIGDEV_DEBUGFS "/%s/%s", md->uuid, file);
	return sysfs_read_long(path);
}

long migdev_pinned(struct migdev *md)
{
	return migdev_read(md, "pinned");
}

/*
 * pid of the device's kernel thread, which runs its DMA commands and makes
 * their calls into VFIO (debugfs "worker"); -1 without one.
 */
int migdev_worker(struct migdev *md)
{
	long pid = migdev_read(md, "worker");

	return pid > 0 ? (int)pid : -1;
}
