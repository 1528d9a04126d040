// SPDX-License-Identifier: GPL-2.0-only
/*
 * Demo (runs in the VM): type1 dirty page tracking on the edu device's
 * container, step by step, with what the kernel answers.
 */
#include <time.h>
#include <vfio_mig_util.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(void)
{
	const uint64_t iova = 1ULL << 32, size = 256ULL << 20;
	uint64_t nbits = size / VFIO_MIG_PAGE_4K, *bitmap;
	struct vfio_iommu_type1_info_cap_migration *mig;
	struct vfio_iommu_type1_info *info;
	int id, container, group, ret;
	double t;
	void *buf;

	id = vfio_find_pci_group(VFIO_MIG_EDU_VENDOR, VFIO_MIG_EDU_DEVICE);
	if (id < 0) {
		printf("no edu device bound to vfio-pci\n");
		return 1;
	}
	ret = vfio_open_container(id, VFIO_TYPE1v2_IOMMU, &container, &group);
	if (ret) {
		printf("open container: %s\n", strerror(-ret));
		return 1;
	}
	printf("edu device: IOMMU group %d in a type1 v2 container\n", id);

	info = calloc(1, 4096);
	info->argsz = 4096;
	if (ioctl(container, VFIO_IOMMU_GET_INFO, info))
		return perror("GET_INFO"), 1;
	mig = (void *)vfio_iommu_info_cap(info, 4096, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	if (!mig) {
		printf("GET_INFO: no migration capability\n");
		return 1;
	}
	printf("migration capability: pgsize_bitmap %#llx, max_dirty_bitmap_size %llu bytes\n",
	       (unsigned long long)mig->pgsize_bitmap,
	       (unsigned long long)mig->max_dirty_bitmap_size);

	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t = now_us();
	ret = vfio_map(container, iova, buf, size);
	printf("MAP_DMA %llu MiB at iova %#llx: %s (%.0f ms, pins every page)\n",
	       (unsigned long long)(size >> 20), (unsigned long long)iova,
	       ret ? strerror(-ret) : "ok", (now_us() - t) / 1e3);
	if (ret)
		return 1;
	ret = vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	printf("DIRTY_PAGES START: %s\n", ret ? strerror(-ret) : "ok");
	bitmap = calloc(nbits / 64, 8);
	t = now_us();
	ret = vfio_get_bitmap(container, iova, size, VFIO_MIG_PAGE_4K, bitmap, nbits / 8);
	printf("DIRTY_PAGES GET_BITMAP: %s in %.0f us, %llu of %llu pages dirty "
	       "(an IOMMU-backed device may write anywhere)\n",
	       ret ? strerror(-ret) : "ok", now_us() - t,
	       (unsigned long long)vfio_mig_bitmap_weight(bitmap, nbits),
	       (unsigned long long)nbits);
	ret = vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	printf("DIRTY_PAGES STOP: %s\n", ret ? strerror(-ret) : "ok");
	ret = vfio_get_bitmap(container, iova, size, VFIO_MIG_PAGE_4K, bitmap, nbits / 8);
	printf("GET_BITMAP after STOP: %s (expected: Invalid argument)\n",
	       ret ? strerror(-ret) : "ok");
	return ret == -EINVAL ? 0 : 1;
}
