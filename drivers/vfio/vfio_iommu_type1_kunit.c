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
#include <kunit/test-bug.h>
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

/*
 * A type1v2 container, an emulated group of KUnit devices, open devices.
 * The devices live in here: KUnit frees what a test allocated after the
 * container's teardown action before that action runs.
 */
struct vfio_type1_test {
	void *iommu;
	struct iommu_group *grp;
	struct vfio_group *vgroup;
	struct vfio_device vdevs[2];
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
		vfio_iommu_type1_unregister_device(t->iommu, &t->vdevs[--t->nopen]);
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
	struct vfio_device *vdev = &t->vdevs[t->nopen];

	KUNIT_ASSERT_LT(test, t->nopen, (int)ARRAY_SIZE(t->vdevs));
	vdev->ops = ops;
	vdev->group = t->vgroup;
	vfio_iommu_type1_register_device(t->iommu, vdev);
	t->nopen++;
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
					  IOMMU_READ | IOMMU_WRITE, false, &page);
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
						   2, IOMMU_READ, false, pages));
}

/*
 * A whole-mapping mark, then a report of the first GiB, as type1 clears
 * after a GET: the rest stays dirty, with no entry per chunk, on a 1 TiB
 * mapping as on a 2^62-byte one (2^35 chunks), where the call returns at
 * once.  The tracker's own tests cover the other splits.
 */
static void vfio_type1_test_huge_split(struct kunit *test)
{
	const u64 sizes[] = { SZ_1T, 1ULL << 62 };
	struct vfio_dirty d;
	int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		vfio_dirty_init(&d, sizes[i]);
		vfio_dirty_mark_all(&d);
		vfio_dirty_clear(&d, 0, SZ_1G);
		KUNIT_EXPECT_EQ(test, d.run_start, SZ_1G >> PAGE_SHIFT);
		KUNIT_EXPECT_EQ(test, d.run_end, sizes[i] >> PAGE_SHIFT);
		KUNIT_EXPECT_TRUE(test, xa_empty(&d.chunks));
		vfio_dirty_clear(&d, 0, sizes[i]);
		KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&d));
		vfio_dirty_destroy(&d);
	}
}

#define PRECISE_IOVA	0x200000UL

/*
 * Map four writable pages at PRECISE_IOVA, a user page for the bitmaps
 * of the reports, and start tracking.
 */
static u64 __user *vfio_type1_test_precise_setup(struct kunit *test,
						 struct vfio_type1_test *t)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.iova = PRECISE_IOVA,
		.size = 4 * PAGE_SIZE,
	};
	struct vfio_iommu *iommu = t->iommu;
	unsigned long mem;

	mem = kunit_vm_mmap(test, NULL, 0, 5 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_NE(test, mem, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE(mem));
	map.vaddr = mem;
	KUNIT_ASSERT_EQ(test, 0, vfio_dma_do_map(iommu, &map));
	mutex_lock(&iommu->lock);
	iommu->dirty_page_tracking = true;
	mutex_unlock(&iommu->lock);
	return (u64 __user *)(mem + 4 * PAGE_SIZE);
}

/* GET_BITMAP of the four pages, without asking drivers: the bits. */
static u64 vfio_type1_test_report(struct kunit *test, struct vfio_type1_test *t,
				  u64 __user *ubits)
{
	struct vfio_iommu *iommu = t->iommu;
	struct vfio_bitmap bitmap = {
		.pgsize = PAGE_SIZE, .size = sizeof(u64), .data = ubits,
	};
	u64 bits = 0;
	int ret;

	KUNIT_EXPECT_EQ(test, 0, put_user(0ULL, ubits));
	mutex_lock(&iommu->lock);
	ret = vfio_iommu_dirty_report(iommu, &bitmap, PRECISE_IOVA,
				      4 * PAGE_SIZE, true);
	mutex_unlock(&iommu->lock);
	KUNIT_EXPECT_EQ(test, 0, ret);
	KUNIT_EXPECT_EQ(test, 0, get_user(bits, ubits));
	return bits;
}

/* Pin and unpin for device 0, counting its pins as the container does. */
static int vfio_type1_test_pin_kind(struct vfio_type1_test *t,
				    unsigned int pg, bool precise)
{
	struct page *page;
	int ret;

	ret = vfio_iommu_type1_pin_pages(t->iommu, t->grp,
					 PRECISE_IOVA + pg * PAGE_SIZE, 1,
					 IOMMU_READ | IOMMU_WRITE, precise, &page);
	if (precise && ret > 0)
		atomic_long_add(ret, &t->vdevs[0].dirty_pinned);
	return ret;
}

static void vfio_type1_test_unpin_kind(struct vfio_type1_test *t,
				       unsigned int pg, bool precise)
{
	if (precise)
		atomic_long_dec(&t->vdevs[0].dirty_pinned);
	vfio_iommu_type1_unpin_pages(t->iommu, PRECISE_IOVA + pg * PAGE_SIZE, 1,
				     precise);
}

/*
 * Pins of drivers that report their writes (precise) and of drivers that
 * do not, on one container: page 0 pinned precisely, page 1 not, page 2
 * both ways.  Only the imprecise pins are dirty at every report; a
 * reported write is reported once; a precise unpin adds nothing.
 */
static void vfio_type1_test_precise_pins(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	u64 __user *ubits = vfio_type1_test_precise_setup(test, t);

	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 0, true));
	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 1, false));
	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 2, true));
	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 2, false));
	KUNIT_EXPECT_EQ(test, 0x6ULL, vfio_type1_test_report(test, t, ubits));
	KUNIT_EXPECT_EQ(test, 0x6ULL, vfio_type1_test_report(test, t, ubits));

	/* a 10-byte write into page 0, then one across pages 0 and 1 */
	KUNIT_EXPECT_EQ(test, 0, vfio_iommu_type1_mark_dirty(t->iommu,
							     PRECISE_IOVA + 100, 10));
	KUNIT_EXPECT_EQ(test, 0x7ULL, vfio_type1_test_report(test, t, ubits));
	KUNIT_EXPECT_EQ(test, 0x6ULL, vfio_type1_test_report(test, t, ubits));
	KUNIT_EXPECT_EQ(test, 0, vfio_iommu_type1_mark_dirty(t->iommu,
							     PRECISE_IOVA + PAGE_SIZE - 1, 2));
	vfio_type1_test_unpin_kind(t, 0, true);
	KUNIT_EXPECT_EQ(test, 0x7ULL, vfio_type1_test_report(test, t, ubits));
	KUNIT_EXPECT_EQ(test, 0x6ULL, vfio_type1_test_report(test, t, ubits));

	/* page 2 loses its imprecise pin: dirty once, then clean */
	vfio_type1_test_unpin_kind(t, 2, false);
	KUNIT_EXPECT_EQ(test, 0x6ULL, vfio_type1_test_report(test, t, ubits));
	KUNIT_EXPECT_EQ(test, 0x2ULL, vfio_type1_test_report(test, t, ubits));
	vfio_type1_test_unpin_kind(t, 2, true);
	vfio_type1_test_unpin_kind(t, 1, false);
	KUNIT_EXPECT_EQ(test, 0x2ULL, vfio_type1_test_report(test, t, ubits));
	KUNIT_EXPECT_EQ(test, 0x0ULL, vfio_type1_test_report(test, t, ubits));
}

/*
 * A pin that fails part-way (its second page lies past the mapping) gives
 * back what it took, precise or not: no page stays pinned, and none is
 * dirty, since the driver never had it.
 */
static void vfio_type1_test_pin_unwind(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	u64 __user *ubits = vfio_type1_test_precise_setup(test, t);
	struct vfio_iommu *iommu = t->iommu;
	struct page *pages[2];
	struct vfio_dma *dma;
	int precise;

	for (precise = 0; precise < 2; precise++) {
		KUNIT_EXPECT_EQ(test, -EINVAL,
				vfio_iommu_type1_pin_pages(iommu, t->grp,
							   PRECISE_IOVA + 3 * PAGE_SIZE, 2,
							   IOMMU_READ | IOMMU_WRITE,
							   precise, pages));
		mutex_lock(&iommu->lock);
		dma = vfio_find_dma(iommu, PRECISE_IOVA, PAGE_SIZE);
		KUNIT_EXPECT_TRUE(test, dma && RB_EMPTY_ROOT(&dma->pfn_list));
		mutex_unlock(&iommu->lock);
		KUNIT_EXPECT_EQ(test, 0x0ULL, vfio_type1_test_report(test, t, ubits));
	}
}

/*
 * A report of a range that is not all mapped and writable is refused
 * whole: nothing is marked.  With tracking off, nothing is recorded.
 */
static void vfio_type1_test_precise_bad_marks(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	u64 __user *ubits = vfio_type1_test_precise_setup(test, t);
	struct vfio_iommu *iommu = t->iommu;

	KUNIT_EXPECT_EQ(test, -EINVAL,
			vfio_iommu_type1_mark_dirty(iommu, PRECISE_IOVA + 3 * PAGE_SIZE,
						    PAGE_SIZE + 1));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			vfio_iommu_type1_mark_dirty(iommu, PRECISE_IOVA - 1, 2));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			vfio_iommu_type1_mark_dirty(iommu, 0 - 8, 16));
	KUNIT_EXPECT_EQ(test, -EINVAL,
			vfio_iommu_type1_mark_dirty(iommu, PRECISE_IOVA, 0));
	KUNIT_EXPECT_EQ(test, -EPERM,
			vfio_iommu_type1_mark_dirty(iommu, TEST_IOVA, 1));
	KUNIT_EXPECT_EQ(test, 0x0ULL, vfio_type1_test_report(test, t, ubits));

	mutex_lock(&iommu->lock);
	vfio_iommu_dirty_stop(iommu);
	mutex_unlock(&iommu->lock);
	KUNIT_EXPECT_EQ(test, 0, vfio_iommu_type1_mark_dirty(iommu, PRECISE_IOVA, 1));
	mutex_lock(&iommu->lock);
	iommu->dirty_page_tracking = true;
	mutex_unlock(&iommu->lock);
	KUNIT_EXPECT_EQ(test, 0x0ULL, vfio_type1_test_report(test, t, ubits));
}

/* A driver with a log of its device's writes, which it reads when asked. */
struct vfio_type1_test_log {
	struct vfio_type1_test *t;
	u64 iova[4];
	int n;
	int err;
	int calls;
	bool closed;	/* the driver's state of an open device is gone */
};

static int vfio_type1_test_sync(struct vfio_device *vdev)
{
	struct kunit *test = kunit_get_current_test();
	struct vfio_type1_test_log *log = test->priv;
	struct vfio_iommu *iommu = log->t->iommu;

	log->calls++;
	KUNIT_EXPECT_FALSE_MSG(test, log->closed, "sync of a device that holds no pin");
	/* called without type1's lock: it reports through vfio_mark_dirty() */
	KUNIT_EXPECT_FALSE(test, mutex_is_locked(&iommu->lock));
	if (log->err)
		return log->err;
	while (log->n)
		KUNIT_EXPECT_EQ(test, 0,
				vfio_iommu_type1_mark_dirty(iommu,
							    log->iova[--log->n], 8));
	return 0;
}

static const struct vfio_dirty_ops vfio_type1_test_dirty_ops = {
	.sync = vfio_type1_test_sync,
};

/* Device 0 gets the driver with a log; the test's priv is the log. */
static struct vfio_type1_test_log *
vfio_type1_test_log_setup(struct kunit *test, struct vfio_type1_test *t)
{
	struct vfio_type1_test_log *log;

	log = kunit_kzalloc(test, sizeof(*log), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, log);
	log->t = t;
	test->priv = log;
	t->vdevs[0].dirty_ops = &vfio_type1_test_dirty_ops;
	return log;
}

/* VFIO_IOMMU_DIRTY_PAGES GET_BITMAP of the four pages, as a user makes it. */
static int vfio_type1_test_get(struct kunit *test, struct vfio_type1_test *t,
			       u64 __user *ubits, u64 *bits)
{
	struct {
		struct vfio_iommu_type1_dirty_bitmap dirty;
		struct vfio_iommu_type1_dirty_bitmap_get get;
	} arg = {
		.dirty = {
			.argsz = sizeof(arg),
			.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
		},
		.get = {
			.iova = PRECISE_IOVA,
			.size = 4 * PAGE_SIZE,
			.bitmap = {
				.pgsize = PAGE_SIZE,
				.size = sizeof(u64),
				.data = ubits,
			},
		},
	};
	void __user *uarg = ubits + 1;
	int ret;

	KUNIT_EXPECT_EQ(test, 0, put_user(0ULL, ubits));
	KUNIT_EXPECT_EQ(test, 0, copy_to_user(uarg, &arg, sizeof(arg)));
	ret = vfio_iommu_type1_dirty_pages(t->iommu, (unsigned long)uarg);
	KUNIT_EXPECT_EQ(test, 0, get_user(*bits, ubits));
	return ret;
}

/*
 * GET_BITMAP asks the drivers first: what the device wrote before the call
 * is in its report.  A driver that cannot say fails the call, and nothing
 * is lost: the pages pinned imprecisely are still there at the next one.
 */
static void vfio_type1_test_precise_sync(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	u64 __user *ubits = vfio_type1_test_precise_setup(test, t);
	struct vfio_type1_test_log *log;
	u64 bits;

	log = vfio_type1_test_log_setup(test, t);

	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 3, true));
	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 1, false));
	log->iova[log->n++] = PRECISE_IOVA + 3 * PAGE_SIZE + 16;
	log->iova[log->n++] = PRECISE_IOVA + 4;
	KUNIT_EXPECT_EQ(test, 0, vfio_type1_test_get(test, t, ubits, &bits));
	KUNIT_EXPECT_EQ(test, 0xbULL, bits);
	KUNIT_EXPECT_EQ(test, 1, log->calls);
	KUNIT_EXPECT_EQ(test, 0, vfio_type1_test_get(test, t, ubits, &bits));
	KUNIT_EXPECT_EQ(test, 0x2ULL, bits);

	log->iova[log->n++] = PRECISE_IOVA + 2 * PAGE_SIZE;
	log->err = -EIO;
	KUNIT_EXPECT_EQ(test, -EIO, vfio_type1_test_get(test, t, ubits, &bits));
	KUNIT_EXPECT_EQ(test, 0x0ULL, bits);
	log->err = 0;
	KUNIT_EXPECT_EQ(test, 0, vfio_type1_test_get(test, t, ubits, &bits));
	KUNIT_EXPECT_EQ(test, 0x6ULL, bits);
	KUNIT_EXPECT_EQ(test, 4, log->calls);

	vfio_type1_test_unpin_kind(t, 3, true);
	vfio_type1_test_unpin_kind(t, 1, false);
	t->vdevs[0].dirty_ops = NULL;
}

/*
 * A device that holds no pin is not asked to sync: it may not be open (a
 * device joins the container before open_device() and leaves it after
 * close_device()), and it has reported every write before it unpinned.
 */
static void vfio_type1_test_sync_unpinned(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	u64 __user *ubits = vfio_type1_test_precise_setup(test, t);
	struct vfio_type1_test_log *log;
	u64 bits;

	log = vfio_type1_test_log_setup(test, t);

	/* the container has seen precise pins; the device then closed */
	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 0, true));
	vfio_type1_test_unpin_kind(t, 0, true);
	log->closed = true;
	KUNIT_EXPECT_EQ(test, 0, vfio_type1_test_get(test, t, ubits, &bits));
	KUNIT_EXPECT_EQ(test, 0x0ULL, bits);
	KUNIT_EXPECT_EQ(test, 0, log->calls);

	/* open again and pinning: asked, and what it logged is reported */
	log->closed = false;
	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 1, true));
	log->iova[log->n++] = PRECISE_IOVA + PAGE_SIZE + 8;
	KUNIT_EXPECT_EQ(test, 0, vfio_type1_test_get(test, t, ubits, &bits));
	KUNIT_EXPECT_EQ(test, 0x2ULL, bits);
	KUNIT_EXPECT_EQ(test, 1, log->calls);
	vfio_type1_test_unpin_kind(t, 1, true);
	t->vdevs[0].dirty_ops = NULL;
}

/*
 * A driver with a log unpins a page its device wrote after the last sync:
 * it drains its log for the page first, so UNMAP_DMA with a bitmap, which
 * finds nothing pinned to notify and asks no driver, still carries the
 * page.  A report after the unmap would come too late (-EINVAL).
 */
static void vfio_type1_test_unpin_reports(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	u64 __user *ubits = vfio_type1_test_precise_setup(test, t);
	struct {
		struct vfio_iommu_type1_dma_unmap unmap;
		struct vfio_bitmap bitmap;
	} arg = {
		.unmap = {
			.argsz = sizeof(arg),
			.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
			.iova = PRECISE_IOVA,
			.size = 4 * PAGE_SIZE,
		},
		.bitmap = { .pgsize = PAGE_SIZE, .size = sizeof(u64), .data = ubits },
	};
	void __user *uarg = ubits + 1;
	struct vfio_type1_test_log *log;
	u64 bits = 0;

	log = vfio_type1_test_log_setup(test, t);

	KUNIT_ASSERT_EQ(test, 1, vfio_type1_test_pin_kind(t, 2, true));
	log->iova[log->n++] = PRECISE_IOVA + 2 * PAGE_SIZE + 8;
	KUNIT_EXPECT_EQ(test, 0, vfio_type1_test_sync(&t->vdevs[0]));
	vfio_type1_test_unpin_kind(t, 2, true);

	KUNIT_EXPECT_EQ(test, 0, put_user(0ULL, ubits));
	KUNIT_EXPECT_EQ(test, 0, copy_to_user(uarg, &arg, sizeof(arg)));
	KUNIT_EXPECT_EQ(test, 0, vfio_iommu_type1_unmap_dma(t->iommu,
							    (unsigned long)uarg));
	KUNIT_EXPECT_EQ(test, 0, get_user(bits, ubits));
	KUNIT_EXPECT_EQ(test, 0x4ULL, bits);
	KUNIT_EXPECT_EQ(test, 0, copy_from_user(&arg, uarg, sizeof(arg)));
	KUNIT_EXPECT_EQ(test, 4 * PAGE_SIZE, arg.unmap.size);
	KUNIT_EXPECT_EQ(test, 1, log->calls);
	KUNIT_EXPECT_EQ(test, -EINVAL,
			vfio_iommu_type1_mark_dirty(t->iommu, PRECISE_IOVA, 8));
	t->vdevs[0].dirty_ops = NULL;
}

/*
 * A driver that, asked to unpin a page, unpins it and pins the other one
 * of two mappings (its device's DMA, which a guest drives, arrives there)
 * until it has been asked @limit times.
 */
struct vfio_type1_test_repin {
	struct vfio_type1_test *t;
	bool pinned[2];
	int calls, limit;
};

#define REPIN_IOVA(i)	(PRECISE_IOVA + (i) * 2 * PAGE_SIZE)

static void vfio_type1_test_repin_pin(struct vfio_type1_test_repin *r, int i)
{
	struct kunit *test = kunit_get_current_test();
	struct page *page;

	KUNIT_EXPECT_EQ(test, 1,
			vfio_iommu_type1_pin_pages(r->t->iommu, r->t->grp,
						   REPIN_IOVA(i), 1, IOMMU_READ,
						   false, &page));
	r->pinned[i] = true;
}

static void vfio_type1_test_repin_unpin(struct vfio_type1_test_repin *r, int i)
{
	vfio_iommu_type1_unpin_pages(r->t->iommu, REPIN_IOVA(i), 1, false);
	r->pinned[i] = false;
}

static void vfio_type1_test_repin_unmap(struct vfio_device *vdev, u64 iova,
					u64 length)
{
	struct vfio_type1_test_repin *r = kunit_get_current_test()->priv;
	int i = iova != REPIN_IOVA(0);

	if (r->pinned[i])
		vfio_type1_test_repin_unpin(r, i);
	if (++r->calls < r->limit && !r->pinned[!i])
		vfio_type1_test_repin_pin(r, !i);
}

static const struct vfio_device_ops vfio_type1_test_repin_ops = {
	.dma_unmap = vfio_type1_test_repin_unmap,
};

/*
 * Two pinned mappings whose driver pins each again while it is asked to
 * unpin the other: the unmap of both gives up with -EBUSY after a bounded
 * number of requests (two per pass), with nothing unmapped.  Once the
 * driver lets go, the same unmap takes both.
 */
static void vfio_type1_test_unmap_repin(struct kunit *test)
{
	struct vfio_type1_test *t = vfio_type1_test_setup(test, 1);
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ,
		.size = PAGE_SIZE,
	};
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = REPIN_IOVA(0),
		.size = 3 * PAGE_SIZE,
	};
	struct vfio_type1_test_repin *r;
	unsigned long mem;
	int i;

	r = kunit_kzalloc(test, sizeof(*r), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r);
	r->t = t;
	r->limit = 1000;
	test->priv = r;
	mem = kunit_vm_mmap(test, NULL, 0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_NE(test, mem, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR_VALUE(mem));
	for (i = 0; i < 2; i++) {
		map.vaddr = mem + i * PAGE_SIZE;
		map.iova = REPIN_IOVA(i);
		KUNIT_ASSERT_EQ(test, 0, vfio_dma_do_map(t->iommu, &map));
		vfio_type1_test_repin_pin(r, i);
	}
	t->vdevs[0].ops = &vfio_type1_test_repin_ops;

	KUNIT_EXPECT_EQ(test, -EBUSY, vfio_dma_do_unmap(t->iommu, &unmap, NULL));
	KUNIT_EXPECT_EQ(test, 2 * VFIO_UNMAP_NOTIFY_PASSES, r->calls);
	KUNIT_EXPECT_EQ(test, 0, unmap.size);
	for (i = 0; i < 2; i++)
		KUNIT_EXPECT_NOT_NULL(test, vfio_find_dma(t->iommu, REPIN_IOVA(i),
							  PAGE_SIZE));

	r->limit = 0;
	r->calls = 0;
	unmap.size = 3 * PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, 0, vfio_dma_do_unmap(t->iommu, &unmap, NULL));
	KUNIT_EXPECT_EQ(test, 2 * PAGE_SIZE, unmap.size);
	KUNIT_EXPECT_GE(test, 2, r->calls);
	for (i = 0; i < 2; i++) {
		KUNIT_EXPECT_NULL(test, vfio_find_dma(t->iommu, REPIN_IOVA(i),
						      PAGE_SIZE));
		if (r->pinned[i])
			vfio_type1_test_repin_unpin(r, i);
	}
	t->vdevs[0].ops = &vfio_type1_test_pin_ops;
}

static struct kunit_case vfio_type1_test_cases[] = {
	KUNIT_CASE(vfio_type1_test_pin_singleton),
	KUNIT_CASE(vfio_type1_test_pin_two_devices),
	KUNIT_CASE(vfio_type1_test_pin_joined_device),
	KUNIT_CASE(vfio_type1_test_no_wrap),
	KUNIT_CASE(vfio_type1_test_huge_split),
	KUNIT_CASE(vfio_type1_test_precise_pins),
	KUNIT_CASE(vfio_type1_test_pin_unwind),
	KUNIT_CASE(vfio_type1_test_precise_bad_marks),
	KUNIT_CASE(vfio_type1_test_precise_sync),
	KUNIT_CASE(vfio_type1_test_sync_unpinned),
	KUNIT_CASE(vfio_type1_test_unpin_reports),
	KUNIT_CASE(vfio_type1_test_unmap_repin),
	{}
};

static struct kunit_suite vfio_type1_test_suite = {
	.name = "vfio_type1_dirty_scope",
	.test_cases = vfio_type1_test_cases,
};

kunit_test_suite(vfio_type1_test_suite);
