// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of type1's dirty tracking that need a container or a
 * mapping's size: built into vfio_iommu_type1.c (it includes this file)
 * to reach its internals.
 *
 * The groups are test doubles: an iommu_group of KUnit devices attached
 * as an emulated IOMMU group, fake vfio_devices opened on it, and a
 * mapping of the test thread's own memory.
 */

#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/mman.h>

#define TEST_IOVA	0x100000UL

static void vfio_type1_test_dma_unmap(struct vfio_device *vdev, u64 iova,
				      u64 length)
{
}

/* a vendor driver that pins (mdev-like), and a device that does not */
static const struct vfio_device_ops vfio_type1_test_pin_ops = {
	.dma_unmap = vfio_type1_test_dma_unmap,
};

static const struct vfio_device_ops vfio_type1_test_plain_ops = {
};

/* A type1v2 container, an emulated group of KUnit devices, open devices. */
struct vfio_type1_test {
	void *iommu;
	struct iommu_group *grp;
	struct vfio_group *vgroup;
	struct vfio_device *vdevs[2];
	int ndev, nopen;
};

/*
 * Undone by KUnit actions, last done first: the container (closing its
 * devices, detaching the group), each device's group membership before
 * KUnit unregisters the device, the group.
 */
static void vfio_type1_test_close(void *data)
{
	struct vfio_type1_test *t = data;

	while (t->nopen)
		vfio_iommu_type1_unregister_device(t->iommu, t->vdevs[--t->nopen]);
	vfio_iommu_type1_detach_group(t->iommu, t->grp);
	vfio_iommu_type1_release(t->iommu);
}

static void vfio_type1_test_remove_dev(void *dev)
{
	iommu_group_remove_device(dev);
}

static void vfio_type1_test_put_group(void *grp)
{
	iommu_group_put(grp);
}

/* Add a KUnit device to the test's iommu_group. */
static void vfio_type1_test_add_dev(struct kunit *test,
				    struct vfio_type1_test *t)
{
	struct device *dev;

	dev = kunit_device_register(test, t->ndev++ ? "vfio-t1-b" : "vfio-t1-a");
	KUNIT_ASSERT_FALSE(test, IS_ERR(dev));
	KUNIT_ASSERT_EQ(test, 0, iommu_group_add_device(t->grp, dev));
	KUNIT_ASSERT_EQ(test, 0,
			kunit_add_action_or_reset(test, vfio_type1_test_remove_dev, dev));
}

/* Open a device of the group: type1 hears of it as the container's user. */
static void vfio_type1_test_open(struct kunit *test, struct vfio_type1_test *t,
				 const struct vfio_device_ops *ops)
{
	struct vfio_device *vdev = kunit_kzalloc(test, sizeof(*vdev), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, vdev);
	vdev->ops = ops;
	vdev->group = t->vgroup;
	vfio_iommu_type1_register_device(t->iommu, vdev);
	t->vdevs[t->nopen++] = vdev;
}

/*
 * A new type1v2 container that maps one read-only page of the test
 * thread's memory at TEST_IOVA, with an emulated group of @ndev devices
 * attached and a pinning device of it open.  Torn down when the test ends.
 */
static struct vfio_type1_test *vfio_type1_test_setup(struct kunit *test,
						     int ndev)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ,
		.iova = TEST_IOVA,
		.size = PAGE_SIZE,
	};
	struct vfio_type1_test *t;
	int i;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	t->vgroup = kunit_kzalloc(test, sizeof(*t->vgroup), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->vgroup);
	map.vaddr = kunit_vm_mmap(test, NULL, 0, PAGE_SIZE,
				  PROT_READ | PROT_WRITE,
				  MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_NE(test, map.vaddr, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE((unsigned long)map.vaddr));

	t->grp = iommu_group_alloc();
	KUNIT_ASSERT_FALSE(test, IS_ERR(t->grp));
	KUNIT_ASSERT_EQ(test, 0,
			kunit_add_action_or_reset(test, vfio_type1_test_put_group, t->grp));
	t->vgroup->iommu_group = t->grp;
	for (i = 0; i < ndev; i++)
		vfio_type1_test_add_dev(test, t);

	t->iommu = vfio_iommu_type1_open(VFIO_TYPE1v2_IOMMU);
	KUNIT_ASSERT_FALSE(test, IS_ERR(t->iommu));
	if (vfio_iommu_type1_attach_group(t->iommu, t->grp, VFIO_EMULATED_IOMMU)) {
		vfio_iommu_type1_release(t->iommu);
		KUNIT_FAIL_AND_ABORT(test, "attaching the group failed");
	}
	KUNIT_ASSERT_EQ(test, 0,
			kunit_add_action_or_reset(test, vfio_type1_test_close, t));
	vfio_type1_test_open(test, t, &vfio_type1_test_pin_ops);
	KUNIT_ASSERT_EQ(test, 0, vfio_dma_do_map(t->iommu, &map));
	return t;
}

/*
 * Pin the read-only page for writing: a group of one device gets as far
 * as the permission check (-EPERM), a larger group is refused before
 * anything is looked up (-EINVAL).
 */
static int vfio_type1_test_pin(struct vfio_type1_test *t)
{
	struct page *page;

	return vfio_iommu_type1_pin_pages(t->iommu, t->grp, TEST_IOVA, 1,
					  IOMMU_READ | IOMMU_WRITE, &page);
}

static void vfio_type1_test_pin_singleton(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, -EPERM, vfio_type1_test_pin(vfio_type1_test_setup(test, 1)));
}

static void vfio_type1_test_pin_two_devices(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, -EINVAL, vfio_type1_test_pin(vfio_type1_test_setup(test, 2)));
}

/*
 * A device joins the group after it was attached (vfio-pci may bind to a
 * device of a group owned for VFIO) and is opened: from then on the group
 * may not pin.
 */
static void vfio_type1_test_pin_joined_device(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);

	KUNIT_EXPECT_EQ(test, -EPERM, vfio_type1_test_pin(t));
	vfio_type1_test_add_dev(test, t);
	vfio_type1_test_open(test, t, &vfio_type1_test_plain_ops);
	KUNIT_EXPECT_EQ(test, -EINVAL, vfio_type1_test_pin(t));
}

/*
 * Accesses that would run past 2^64 are refused before anything happens:
 * with a page mapped at the top of the IOVA space and one at IOVA 0,
 * neither is written, nor pinned.
 */
static void vfio_type1_test_no_wrap(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.size = PAGE_SIZE,
	};
	u8 data[16], seen[16] = {}, zero[16] = {};
	unsigned long mem;
	struct page *pages[2];

	mem = kunit_vm_mmap(test, NULL, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_NE(test, mem, 0);
	map.vaddr = mem;
	map.iova = 0;
	KUNIT_ASSERT_EQ(test, 0, vfio_dma_do_map(t->iommu, &map));
	map.vaddr = mem + PAGE_SIZE;
	map.iova = 0 - PAGE_SIZE;
	KUNIT_ASSERT_EQ(test, 0, vfio_dma_do_map(t->iommu, &map));

	memset(data, 0xa5, sizeof(data));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			vfio_iommu_type1_dma_rw(t->iommu, 0 - 8, data, 16, true));
	KUNIT_EXPECT_EQ(test, 0, copy_from_user(seen, (void __user *)mem, 8));
	KUNIT_EXPECT_EQ(test, 0, copy_from_user(seen + 8, (void __user *)
						(mem + 2 * PAGE_SIZE - 8), 8));
	KUNIT_EXPECT_MEMEQ(test, seen, zero, sizeof(seen));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			vfio_iommu_type1_pin_pages(t->iommu, t->grp, 0 - PAGE_SIZE,
						   2, IOMMU_READ, pages));
}

/*
 * A whole-mapping mark, then a report of the first GiB: the rest stays
 * dirty.  On a 1 TiB mapping that takes 8184 whole-chunk entries; on a
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
	KUNIT_CASE(vfio_type1_test_pin_joined_device),
	KUNIT_CASE(vfio_type1_test_no_wrap),
	KUNIT_CASE(vfio_type1_test_huge_split),
	{}
};

static struct kunit_suite vfio_type1_test_suite = {
	.name = "vfio_type1_dirty_scope",
	.test_cases = vfio_type1_test_cases,
};

kunit_test_suite(vfio_type1_test_suite);
