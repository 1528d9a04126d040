// SPDX-License-Identifier: GPL-2.0-only
/*
 * Dirty page tracking of the VFIO type1 IOMMU backend, from user space.
 *
 * The "edu" fixture uses a PCI device behind a real (or emulated) IOMMU,
 * bound to vfio-pci: such a group never pins pages, so while it is in the
 * container every IOMMU-mapped page is reported dirty.
 */
#include "../kselftest_harness.h"
#include "vfio_util.h"

#define MAP_IOVA	0x100000ULL
#define MAP_PAGES	64ULL
#define MAP_SIZE	(MAP_PAGES * PAGE_4K)

FIXTURE(edu) {
	int container;
	int group;
	void *buf;
};

FIXTURE_SETUP(edu)
{
	int id = vfio_find_pci_group(EDU_VENDOR, EDU_DEVICE);

	self->container = -1;
	self->group = -1;
	self->buf = MAP_FAILED;
	if (id < 0)
		SKIP(return, "no 1234:11e8 (QEMU edu) device bound to vfio-pci");
	ASSERT_EQ(0, vfio_open_container(id, VFIO_TYPE1v2_IOMMU,
					 &self->container, &self->group));
	self->buf = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
}

FIXTURE_TEARDOWN(edu)
{
	if (self->buf != MAP_FAILED)
		munmap(self->buf, MAP_SIZE);
	if (self->group >= 0)
		close(self->group);
	if (self->container >= 0)
		close(self->container);
}

/* GET_INFO carries the migration capability, version 1, 4 KiB pages. */
TEST_F(edu, migration_capability)
{
	struct vfio_iommu_type1_info_cap_migration *mig;
	struct vfio_iommu_type1_info *info;
	size_t len = 4096;

	info = calloc(1, len);
	ASSERT_NE(NULL, info);
	info->argsz = len;
	ASSERT_EQ(0, ioctl(self->container, VFIO_IOMMU_GET_INFO, info));
	ASSERT_TRUE(info->flags & VFIO_IOMMU_INFO_CAPS);
	mig = (void *)vfio_iommu_info_cap(info, len,
					  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	ASSERT_NE(NULL, mig);
	EXPECT_EQ(2, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	EXPECT_EQ(1, mig->header.version);
	EXPECT_EQ(0, mig->flags);
	EXPECT_TRUE(mig->pgsize_bitmap & PAGE_4K);
	EXPECT_NE(0, mig->max_dirty_bitmap_size);
	free(info);
}

/* START / GET_BITMAP / STOP: an IOMMU-backed group makes every page dirty. */
TEST_F(edu, start_get_stop_all_dirty)
{
	uint64_t bitmap[MAP_PAGES / 64];
	unsigned int i;

	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container,
				VFIO_IOMMU_DIRTY_PAGES_FLAG_START));

	for (i = 0; i < 2; i++) {	/* reported again: the device may write */
		memset(bitmap, 0, sizeof(bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					     PAGE_4K, bitmap, sizeof(bitmap)));
		EXPECT_EQ(~0ULL, bitmap[0]);
	}

	ASSERT_EQ(0, vfio_dirty(self->container,
				VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	memset(bitmap, 0, sizeof(bitmap));
	EXPECT_EQ(-EINVAL, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					   PAGE_4K, bitmap, sizeof(bitmap)));
	EXPECT_EQ(0, bitmap[0]);
	EXPECT_EQ(0, vfio_unmap(self->container, MAP_IOVA, MAP_SIZE));
}

/* Dirty tracking is a type1 v2 feature: a v1 container refuses it. */
TEST(v1_container_refuses)
{
	int id = vfio_find_pci_group(EDU_VENDOR, EDU_DEVICE);
	int container, group;

	if (id < 0)
		SKIP(return, "no 1234:11e8 (QEMU edu) device bound to vfio-pci");
	ASSERT_EQ(0, vfio_open_container(id, VFIO_TYPE1_IOMMU, &container, &group));
	EXPECT_EQ(-EACCES, vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	close(group);
	close(container);
}

TEST_HARNESS_MAIN
