// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of type1's dirty tracking that need a container or a
 * mapping's size: built into vfio_iommu_type1.c (it includes this file)
 * to reach its internals.
 *
 * The groups are test doubles: an iommu_group of KUnit devices attached
 * as an emulated IOMMU group, one fake vfio_device registered for
 * dma_unmap, and a mapping of the test thread's own memory.
 */

#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/mman.h>

#define TEST_IOVA	0x100000UL

static void vfio_type1_test_dma_unmap(struct vfio_device *vdev, u64 iova,
				      u64 length)
{
}

static const struct vfio_device_ops vfio_type1_test_ops = {
	.dma_unmap = vfio_type1_test_dma_unmap,
};

/*
 * Attach an emulated group of @ndev devices to a new type1v2 container
 * that maps one read-only page at TEST_IOVA, and try to pin that page for
 * writing: a group of one device gets as far as the permission check
 * (-EPERM), a larger group is refused before anything is looked up.
 */
static int vfio_type1_test_pin(struct kunit *test, int ndev)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ,
		.iova = TEST_IOVA,
		.size = PAGE_SIZE,
	};
	struct device *devs[2];
	struct vfio_device *vdev;
	struct iommu_group *grp;
	struct page *page;
	void *iommu;
	int i, ret;

	map.vaddr = kunit_vm_mmap(test, NULL, 0, PAGE_SIZE,
				  PROT_READ | PROT_WRITE,
				  MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE((unsigned long)map.vaddr));
	vdev = kunit_kzalloc(test, sizeof(*vdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vdev);
	vdev->ops = &vfio_type1_test_ops;

	grp = iommu_group_alloc();
	KUNIT_ASSERT_FALSE(test, IS_ERR(grp));
	for (i = 0; i < ndev; i++) {
		devs[i] = kunit_device_register(test, i ? "vfio-t1-b" : "vfio-t1-a");
		KUNIT_ASSERT_FALSE(test, IS_ERR(devs[i]));
		KUNIT_ASSERT_EQ(test, 0, iommu_group_add_device(grp, devs[i]));
	}

	iommu = vfio_iommu_type1_open(VFIO_TYPE1v2_IOMMU);
	KUNIT_ASSERT_FALSE(test, IS_ERR(iommu));
	KUNIT_EXPECT_EQ(test, 0, vfio_iommu_type1_attach_group(iommu, grp,
							       VFIO_EMULATED_IOMMU));
	vfio_iommu_type1_register_device(iommu, vdev);
	KUNIT_EXPECT_EQ(test, 0, vfio_dma_do_map(iommu, &map));

	ret = vfio_iommu_type1_pin_pages(iommu, grp, TEST_IOVA, 1,
					 IOMMU_READ | IOMMU_WRITE, &page);

	vfio_iommu_type1_unregister_device(iommu, vdev);
	vfio_iommu_type1_detach_group(iommu, grp);
	vfio_iommu_type1_release(iommu);
	for (i = 0; i < ndev; i++)
		iommu_group_remove_device(devs[i]);
	iommu_group_put(grp);
	return ret;
}

static void vfio_type1_test_pin_singleton(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, -EPERM, vfio_type1_test_pin(test, 1));
}

static void vfio_type1_test_pin_two_devices(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, -EINVAL, vfio_type1_test_pin(test, 2));
}

/*
 * A whole-mapping mark, then a report of the first GiB: the rest stays
 * dirty.  On a 1 TiB mapping that takes 8191 whole-chunk entries; on a
 * 2^62-byte mapping it would take 2^35, so the mapping stays dirty whole
 * (reporting more, never less) and the call returns at once.
 */
static void vfio_type1_test_huge_split(struct kunit *test)
{
	struct vfio_dirty d;
	unsigned long c;
	void *entry;
	int n = 0;

	vfio_dirty_init(&d, SZ_1T);
	vfio_dirty_mark_all(&d);
	vfio_dirty_clear(&d, 0, SZ_1G);
	KUNIT_EXPECT_FALSE(test, d.all);
	xa_for_each(&d.chunks, c, entry) {
		if (entry != xa_mk_value(1) || c < SZ_1G >> (2 * PAGE_SHIFT + 3))
			break;
		n++;
	}
	KUNIT_EXPECT_EQ(test, n, (SZ_1T - SZ_1G) >> (2 * PAGE_SHIFT + 3));
	vfio_dirty_destroy(&d);

	vfio_dirty_init(&d, 1ULL << 62);
	vfio_dirty_mark_all(&d);
	vfio_dirty_clear(&d, 0, SZ_1G);
	KUNIT_EXPECT_TRUE(test, d.all);
	KUNIT_EXPECT_TRUE(test, xa_empty(&d.chunks));
	vfio_dirty_clear(&d, 0, 1ULL << 62);
	KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&d));
	vfio_dirty_destroy(&d);
}

static struct kunit_case vfio_type1_test_cases[] = {
	KUNIT_CASE(vfio_type1_test_pin_singleton),
	KUNIT_CASE(vfio_type1_test_pin_two_devices),
	KUNIT_CASE(vfio_type1_test_huge_split),
	{}
};

static struct kunit_suite vfio_type1_test_suite = {
	.name = "vfio_type1_dirty_scope",
	.test_cases = vfio_type1_test_cases,
};

kunit_test_suite(vfio_type1_test_suite);
