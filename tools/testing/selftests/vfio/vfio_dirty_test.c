// SPDX-License-Identifier: GPL-2.0-only
/*
 * Dirty page tracking of the VFIO type1 IOMMU backend, from user space.
 *
 * Containers:
 *  - "edu": a PCI device behind an IOMMU bound to vfio-pci.  Such a group
 *    never pins pages, so while it is in the container every IOMMU-mapped
 *    page is reported dirty, in every report.
 *  - "mdev": a mediated device of the in-tree mtty sample, which never pins
 *    either; an emulated-IOMMU group is in pinned-page scope from attach,
 *    so nothing is dirty.
 *  - "mixed": both.  Detaching edu while tracking makes every mapped page
 *    dirty exactly once, which gives the tests bits that a wrong reset
 *    would lose.
 *
 * Pinned-page scope and vfio_dma_rw() need a device that pins and writes:
 * vfio_dirty_pin_test.c, with the migdev sample driver.
 */
#include <setjmp.h>
#include <signal.h>
#include <time.h>

#include "../kselftest_harness.h"
#include <vfio_mig_util.h>

#define MTTY_TYPE	"mtty-2"
#define MAP_IOVA	0x100000ULL
#define MAP_PAGES	64ULL
#define MAP_SIZE	(MAP_PAGES * VFIO_MIG_PAGE_4K)
#define SZ_2M		0x200000ULL
#define SZ_1G		0x40000000ULL
#define SZ_1T		(1024 * SZ_1G)

#define START	VFIO_IOMMU_DIRTY_PAGES_FLAG_START
#define STOP	VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP
#define GET	VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP

static int edu_group(void)
{
	return vfio_find_pci_group(VFIO_MIG_EDU_VENDOR, VFIO_MIG_EDU_DEVICE);
}

static int mtty_group(int nth)
{
	return vfio_find_mdev_group(MTTY_TYPE, nth, NULL, 0);
}

static void *anon(uint64_t size, int prot)
{
	return mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
}

/*
 * Whether bits [first, first + n) are all @val in @bitmap.  When not, one
 * line says how many are wrong and which is the first: a caller's single
 * EXPECT_TRUE() covers the whole range.
 */
static bool bits_are(const uint64_t *bitmap, uint64_t first, uint64_t n, bool val)
{
	uint64_t i, wrong = 0, first_wrong = 0;

	for (i = first; i < first + n; i++) {
		if (!!(bitmap[i / 64] & (1ULL << (i % 64))) == val)
			continue;
		if (!wrong++)
			first_wrong = i;
	}
	if (wrong)
		ksft_print_msg("bits [%llu, %llu) not all %d: %llu wrong, the first %llu\n",
			       (unsigned long long)first, (unsigned long long)(first + n),
			       val, (unsigned long long)wrong,
			       (unsigned long long)first_wrong);
	return !wrong;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------------- */

FIXTURE(edu) {
	int container;
	int group;
	void *buf;
};

FIXTURE_SETUP(edu)
{
	int id = edu_group();

	self->container = -1;
	self->group = -1;
	self->buf = MAP_FAILED;
	if (id < 0)
		SKIP(return,
		     "edu: no 1234:11e8 (QEMU edu) device bound to vfio-pci");
	ASSERT_EQ(0, vfio_open_container(id, VFIO_TYPE1v2_IOMMU,
					 &self->container, &self->group));
	self->buf = anon(4 * MAP_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->buf);
}

FIXTURE_TEARDOWN(edu)
{
	if (self->buf != MAP_FAILED)
		munmap(self->buf, 4 * MAP_SIZE);
	if (self->group >= 0)
		close(self->group);
	if (self->container >= 0)
		close(self->container);	/* no STOP: release frees tracking */
}

/* GET_INFO: migration capability, version 1, 4 KiB up to 1 GiB pages. */
TEST_F(edu, migration_capability)
{
	struct vfio_iommu_type1_info_cap_migration *mig;
	struct vfio_iommu_type1_info *info;
	size_t len = 4096;
	uint64_t pgsizes = 0, s;

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
	for (s = VFIO_MIG_PAGE_4K; s <= SZ_1G; s <<= 1)
		pgsizes |= s;
	EXPECT_EQ(pgsizes, mig->pgsize_bitmap);
	EXPECT_GE(mig->max_dirty_bitmap_size, SZ_1G);
	/* the 4 bytes of padding after flags are initialised too */
	EXPECT_EQ(0, *(uint32_t *)((char *)mig + 12));
	free(info);
}

/* START / GET_BITMAP / STOP: an IOMMU-backed group makes every page dirty. */
TEST_F(edu, start_get_stop_all_dirty)
{
	uint64_t bitmap[MAP_PAGES / 64];
	unsigned int i;

	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container, START));
	ASSERT_EQ(0, vfio_dirty(self->container, START));	/* harmless */

	for (i = 0; i < 2; i++) {	/* reported again: the device may write */
		memset(bitmap, 0, sizeof(bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					     VFIO_MIG_PAGE_4K, bitmap, sizeof(bitmap)));
		EXPECT_EQ(~0ULL, bitmap[0]);
	}

	ASSERT_EQ(0, vfio_dirty(self->container, STOP));
	ASSERT_EQ(0, vfio_dirty(self->container, STOP));	/* harmless */
	memset(bitmap, 0, sizeof(bitmap));
	EXPECT_EQ(-EINVAL, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					   VFIO_MIG_PAGE_4K, bitmap, sizeof(bitmap)));
	EXPECT_EQ(0, bitmap[0]);
	EXPECT_EQ(0, vfio_unmap(self->container, MAP_IOVA, MAP_SIZE));
}

/* Tracking off: GET_BITMAP and UNMAP with a bitmap are EINVAL, change nothing. */
TEST_F(edu, tracking_off_einval)
{
	uint64_t bitmap[1] = { 0 }, unmapped = 1;

	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	EXPECT_EQ(-EINVAL, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					   VFIO_MIG_PAGE_4K, bitmap, sizeof(bitmap)));
	EXPECT_EQ(-EINVAL, vfio_unmap_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					     VFIO_MIG_PAGE_4K, bitmap, sizeof(bitmap),
					     &unmapped));
	EXPECT_EQ(0, bitmap[0]);
	/* still mapped */
	EXPECT_EQ(-EEXIST, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	EXPECT_EQ(0, vfio_unmap(self->container, MAP_IOVA, MAP_SIZE));
}

/* A mapping created while tracking is tracked; so are holes (as zero). */
TEST_F(edu, map_while_tracking)
{
	uint64_t bitmap[2] = { 0, 0 };

	ASSERT_EQ(0, vfio_dirty(self->container, START));
	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA - MAP_SIZE,
				     2 * MAP_SIZE, VFIO_MIG_PAGE_4K, bitmap, sizeof(bitmap)));
	EXPECT_EQ(0, bitmap[0]);
	EXPECT_EQ(~0ULL, bitmap[1]);
}

/*
 * GET_BITMAP over a range that bisects two mappings and spans the hole
 * between them: bits land relative to the range's iova, holes are zero.
 */
TEST_F(edu, get_bisecting_range_with_hole)
{
	char *buf = self->buf;
	uint64_t bitmap[2];

	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA + 2 * MAP_SIZE,
			      buf + 2 * MAP_SIZE, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container, START));
	memset(bitmap, 0, sizeof(bitmap));
	/* pages 32..159 from MAP_IOVA: 32 of A, 64 of hole, 32 of B */
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA + 32 * VFIO_MIG_PAGE_4K,
				     128 * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, bitmap,
				     sizeof(bitmap)));
	EXPECT_TRUE(bits_are(bitmap, 0, 32, true));
	EXPECT_TRUE(bits_are(bitmap, 32, 64, false));
	EXPECT_TRUE(bits_are(bitmap, 96, 32, true));
	/* one page, in the middle of a mapping, at an odd offset */
	memset(bitmap, 0, sizeof(bitmap));
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA + 7 * VFIO_MIG_PAGE_4K,
				     VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(1, bitmap[0]);
}

/* Coarse bitmap pages: a bit is set when any part of its page is dirty. */
TEST_F(edu, coarse_page_sizes)
{
	uint64_t bitmap[1];

	/* 64 pages at 1 MiB + 2 MiB: inside the 2 MiB page [2M, 4M) */
	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA + SZ_2M, self->buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container, START));

	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, 0, 64 * SZ_2M, SZ_2M,
				     bitmap, 8));
	EXPECT_EQ(0x2ULL, bitmap[0]);
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, 0, 4 * SZ_1G, SZ_1G,
				     bitmap, 8));
	EXPECT_EQ(0x1ULL, bitmap[0]);
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, 0, 64 * 65536, 65536,
				     bitmap, 8));
	/* [3M, 3M + 256K) is 64 KiB pages 48..51 */
	EXPECT_EQ(0xfULL << 48, bitmap[0]);
}

/* UNMAP with a bitmap: the bits of what goes, relative to the unmap's iova. */
TEST_F(edu, unmap_with_bitmap)
{
	char *buf = self->buf;
	uint64_t bitmap[4] = { 0 }, unmapped = 0;

	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA + 2 * MAP_SIZE,
			      buf + 2 * MAP_SIZE, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container, START));
	ASSERT_EQ(0, vfio_unmap_bitmap(self->container, MAP_IOVA, 4 * MAP_SIZE,
				       VFIO_MIG_PAGE_4K, bitmap, sizeof(bitmap), &unmapped));
	EXPECT_EQ(2 * MAP_SIZE, unmapped);
	EXPECT_EQ(~0ULL, bitmap[0]);
	EXPECT_EQ(0, bitmap[1]);
	EXPECT_EQ(~0ULL, bitmap[2]);
	EXPECT_EQ(0, bitmap[3]);
	/* gone: mapping again works */
	EXPECT_EQ(0, vfio_map(self->container, MAP_IOVA, buf, MAP_SIZE));
}

/* UNMAP with a read-only bitmap: EFAULT, and every mapping stays. */
TEST_F(edu, unmap_bitmap_fault_keeps_mappings)
{
	uint64_t *ro = anon(4096, PROT_READ), unmapped = 1;

	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container, START));
	EXPECT_EQ(-EFAULT, vfio_unmap_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					     VFIO_MIG_PAGE_4K, ro, 8, &unmapped));
	EXPECT_EQ(-EEXIST, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	munmap(ro, 4096);
}

/* Dirty tracking is a type1 v2 feature: a v1 container refuses it. */
TEST(v1_container_refuses)
{
	int id = edu_group();
	int container, group;

	if (id < 0)
		SKIP(return,
		     "edu: no 1234:11e8 (QEMU edu) device bound to vfio-pci");
	ASSERT_EQ(0, vfio_open_container(id, VFIO_TYPE1_IOMMU, &container, &group));
	EXPECT_EQ(-EACCES, vfio_dirty(container, START));
	EXPECT_EQ(-EACCES, vfio_dirty(container, STOP));
	EXPECT_EQ(-EACCES, vfio_dirty(container, GET));
	close(group);
	close(container);
}

/* ---------------------------------------------------------------------- */

FIXTURE(mdev) {
	int container;
	int group;
};

FIXTURE_SETUP(mdev)
{
	int id = mtty_group(0);

	self->container = -1;
	self->group = -1;
	if (id < 0)
		SKIP(return,
		     "mtty: no " MTTY_TYPE " mdev (CONFIG_SAMPLE_VFIO_MDEV_MTTY)");
	ASSERT_EQ(0, vfio_open_container(id, VFIO_TYPE1v2_IOMMU,
					 &self->container, &self->group));
}

FIXTURE_TEARDOWN(mdev)
{
	if (self->group >= 0)
		close(self->group);
	if (self->container >= 0)
		close(self->container);
}

/* An mdev that never pins dirties nothing. */
TEST_F(mdev, nothing_dirty)
{
	void *buf = anon(MAP_SIZE, PROT_READ | PROT_WRITE);
	uint64_t bitmap[1] = { 0 };

	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container, START));
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
				     VFIO_MIG_PAGE_4K, bitmap, sizeof(bitmap)));
	EXPECT_EQ(0, bitmap[0]);
	munmap(buf, MAP_SIZE);
}

/*
 * A 1 TiB mapping of PROT_NONE address space (an mdev container pins
 * nothing at MAP time), reported at 4 KiB (a 32 MiB bitmap) and at 1 GiB.
 */
TEST_F(mdev, huge_mapping)
{
	uint64_t iova = 1ULL << 42, nbits = SZ_1T / VFIO_MIG_PAGE_4K, *bitmap;
	void *va = anon(SZ_1T, PROT_NONE);
	double t;

	ASSERT_NE(MAP_FAILED, va);
	ASSERT_EQ(0, vfio_map(self->container, iova, va, SZ_1T));
	t = now_ms();
	ASSERT_EQ(0, vfio_dirty(self->container, START));
	ksft_print_msg("START with a 1 TiB mapping: %.3f ms\n", now_ms() - t);

	bitmap = anon(nbits / 8, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, bitmap);
	t = now_ms();
	ASSERT_EQ(0, vfio_get_bitmap(self->container, iova, SZ_1T, VFIO_MIG_PAGE_4K,
				     bitmap, nbits / 8));
	ksft_print_msg("GET_BITMAP of 1 TiB at 4 KiB, nothing dirty: %.3f ms\n",
		       now_ms() - t);
	EXPECT_TRUE(bits_are(bitmap, 0, 64, false));
	EXPECT_TRUE(bits_are(bitmap, nbits - 64, 64, false));
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, iova, SZ_1T, SZ_1G,
				     bitmap, 1024 / 8));
	EXPECT_EQ(0, bitmap[0]);
	/* the unmap with a bitmap of the whole TiB */
	ASSERT_EQ(0, vfio_unmap_bitmap(self->container, iova, SZ_1T, VFIO_MIG_PAGE_4K,
				       bitmap, nbits / 8, NULL));
	EXPECT_TRUE(bits_are(bitmap, 0, 64, false));
	munmap(bitmap, nbits / 8);
	munmap(va, SZ_1T);
}

/* ---------------------------------------------------------------------- */

FIXTURE(mixed) {
	int container;
	int edu;
	int mdev;
	void *buf;
};

FIXTURE_SETUP(mixed)
{
	int edu = edu_group(), mdev = mtty_group(0);

	self->container = -1;
	self->edu = -1;
	self->mdev = -1;
	self->buf = MAP_FAILED;
	if (edu < 0)
		SKIP(return, "edu: needs both the edu device on vfio-pci and an "
		     MTTY_TYPE " mdev");
	if (mdev < 0)
		SKIP(return, "mtty: needs both the edu device on vfio-pci and an "
		     MTTY_TYPE " mdev");
	ASSERT_EQ(0, vfio_open_container(edu, VFIO_TYPE1v2_IOMMU,
					 &self->container, &self->edu));
	ASSERT_EQ(0, vfio_add_group(self->container, mdev, &self->mdev));
	self->buf = anon(2 * MAP_SIZE, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->buf);
	ASSERT_EQ(0, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->container, START));
}

FIXTURE_TEARDOWN(mixed)
{
	if (self->buf != MAP_FAILED)
		munmap(self->buf, 2 * MAP_SIZE);
	if (self->mdev >= 0)
		close(self->mdev);
	if (self->edu >= 0)
		close(self->edu);
	if (self->container >= 0)
		close(self->container);
}

/* Detach the edu group: every mapped page is now dirty exactly once. */
static void detach_edu(struct __test_metadata *_metadata, int *edu)
{
	ASSERT_EQ(0, ioctl(*edu, VFIO_GROUP_UNSET_CONTAINER));
	close(*edu);
	*edu = -1;
}

/*
 * The scope: all dirty while the IOMMU-backed group is in; after it leaves,
 * everything once; only the part a GET reports restarts clean.
 */
TEST_F(mixed, scope_detach_reports_once)
{
	uint64_t bitmap[1];

	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
				     VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(~0ULL, bitmap[0]);

	detach_edu(_metadata, &self->edu);

	/* pages 8..23 */
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA + 8 * VFIO_MIG_PAGE_4K,
				     16 * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(0xffffULL, bitmap[0]);
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA + 8 * VFIO_MIG_PAGE_4K,
				     16 * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(0, bitmap[0]);
	/* the rest is still dirty, once */
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
				     VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(~0xffff00ULL, bitmap[0]);
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
				     VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(0, bitmap[0]);
}

/*
 * The IOMMU-backed group back in a container that kept its mappings: type1
 * maps them for it (replays them into its new domain), and every mapped
 * page is dirty at every report again.
 */
TEST_F(mixed, iommu_group_back_replays_mappings)
{
	uint64_t bitmap[1];
	int i;

	detach_edu(_metadata, &self->edu);
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
				     VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(~0ULL, bitmap[0]);		/* once, for the group that left */
	ASSERT_EQ(0, vfio_add_group(self->container, edu_group(), &self->edu));
	for (i = 0; i < 2; i++) {
		bitmap[0] = 0;
		ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
					     VFIO_MIG_PAGE_4K, bitmap, 8));
		EXPECT_EQ(~0ULL, bitmap[0]);
	}
	/* mapped for the group: a second MAP of the range is refused */
	EXPECT_EQ(-EEXIST, vfio_map(self->container, MAP_IOVA, self->buf, MAP_SIZE));
	EXPECT_EQ(0, vfio_unmap(self->container, MAP_IOVA, MAP_SIZE));
}

/* STOP forgets the once-dirty pages; a new START starts clean. */
TEST_F(mixed, stop_forgets)
{
	uint64_t bitmap[1] = { 0 };

	detach_edu(_metadata, &self->edu);
	ASSERT_EQ(0, vfio_dirty(self->container, STOP));
	ASSERT_EQ(0, vfio_dirty(self->container, START));
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
				     VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(0, bitmap[0]);
}

/* ---------------------------------------------------------------------- */

/*
 * Bad input.  Each case is one ioctl that must fail with exactly its errno
 * and change nothing: the mapping stays and, at the end, one good GET still
 * reports every page once dirty.
 */
enum op { OP_DIRTY, OP_GET, OP_UNMAP };

struct bad {
	const char *name;
	enum op op;
	int err;
	uint32_t argsz_delta;	/* subtracted from the full argsz */
	uint32_t flags;		/* OP_DIRTY: flags; OP_UNMAP: extra flags */
	int64_t iova_delta;
	uint64_t iova;		/* when non-zero, replaces the iova */
	uint64_t size;		/* 0: the mapping's size */
	uint64_t pgsize;	/* 0: 4 KiB; ~0: zero */
	uint64_t bsize;		/* 0: enough; ~0: zero */
	int bdata;		/* which bitmap pointer */
	bool size_zero;
};

enum { B_OK, B_NULL, B_KERNEL, B_RO, B_UNMAPPED, B_WRAP, B_HALF_RO };

#define NONE	(~0ULL)

static const struct bad bad_inputs[] = {
	{ "dirty argsz short",		OP_DIRTY, EINVAL, .argsz_delta = 5, .flags = START },
	{ "dirty argsz zero",		OP_DIRTY, EINVAL, .argsz_delta = 8, .flags = STOP },
	{ "dirty no flag",		OP_DIRTY, EINVAL, .flags = 0 },
	{ "dirty START|STOP",		OP_DIRTY, EINVAL, .flags = START | STOP },
	{ "dirty START|GET",		OP_DIRTY, EINVAL, .flags = START | GET },
	{ "dirty STOP|GET",		OP_DIRTY, EINVAL, .flags = STOP | GET },
	{ "dirty all three",		OP_DIRTY, EINVAL, .flags = START | STOP | GET },
	{ "dirty unknown flag 8",	OP_DIRTY, EINVAL, .flags = 8 },
	{ "dirty unknown flag 1<<31",	OP_DIRTY, EINVAL, .flags = 1U << 31 },
	{ "dirty STOP|unknown",		OP_DIRTY, EINVAL, .flags = STOP | 16 },
	{ "get argsz without range",	OP_GET, EINVAL, .argsz_delta = 40 },
	{ "get argsz one byte short",	OP_GET, EINVAL, .argsz_delta = 1 },
	{ "get pgsize zero",		OP_GET, EINVAL, .pgsize = NONE },
	{ "get pgsize 3",		OP_GET, EINVAL, .pgsize = 3 },
	{ "get pgsize 6 KiB",		OP_GET, EINVAL, .pgsize = 6144 },
	{ "get pgsize 2 KiB",		OP_GET, EINVAL, .pgsize = 2048 },
	{ "get pgsize 2 GiB",		OP_GET, EINVAL, .pgsize = 2 * SZ_1G },
	{ "get pgsize 1<<63",		OP_GET, EINVAL, .pgsize = 1ULL << 63 },
	{ "get iova unaligned",		OP_GET, EINVAL, .iova_delta = 1 },
	{ "get iova half page",		OP_GET, EINVAL, .iova_delta = 2048 },
	{ "get iova unaligned to 2M",	OP_GET, EINVAL, .pgsize = SZ_2M, .size = 64 * SZ_2M },
	{ "get size zero",		OP_GET, EINVAL, .size_zero = true },
	{ "get size unaligned",		OP_GET, EINVAL, .size = MAP_SIZE + 1 },
	{ "get size not 2M multiple",
	  OP_GET, EINVAL, .iova = SZ_2M, .pgsize = SZ_2M, .size = SZ_2M + VFIO_MIG_PAGE_4K },
	{ "get range wraps",
	  OP_GET, EINVAL, .iova = ~0ULL - VFIO_MIG_PAGE_4K + 1, .size = 2 * VFIO_MIG_PAGE_4K },
	{ "get range to 2^64, small bitmap", OP_GET, EINVAL,
	  .iova = VFIO_MIG_PAGE_4K, .size = 0 - VFIO_MIG_PAGE_4K },
	{ "get bitmap size zero",	OP_GET, EINVAL, .bsize = NONE },
	{ "get bitmap one word short",	OP_GET, EINVAL,
	  .size = 128 * VFIO_MIG_PAGE_4K, .bsize = 8 },
	{ "get bitmap 4 bytes",		OP_GET, EINVAL, .bsize = 4 },
	{ "get bitmap too large",	OP_GET, E2BIG, .bsize = 1ULL << 50 },
	{ "get bitmap NULL",		OP_GET, EFAULT, .bdata = B_NULL },
	{ "get bitmap kernel address",	OP_GET, EFAULT, .bdata = B_KERNEL },
	{ "get bitmap read-only",	OP_GET, EFAULT, .bdata = B_RO },
	{ "get bitmap unmapped",	OP_GET, EFAULT, .bdata = B_UNMAPPED },
	{ "get bitmap wraps address space", OP_GET, EFAULT, .bdata = B_WRAP },
	/* 32 dirty bits land in the writable word, 32 in the read-only one */
	{ "get bitmap half read-only",
	  OP_GET, EFAULT, .bdata = B_HALF_RO, .iova = MAP_IOVA - 32 * VFIO_MIG_PAGE_4K,
	  .size = 128 * VFIO_MIG_PAGE_4K },
	{ "unmap argsz without bitmap",	OP_UNMAP, EINVAL, .argsz_delta = 24 },
	{ "unmap argsz one byte short",	OP_UNMAP, EINVAL, .argsz_delta = 1 },
	{ "unmap bitmap and ALL",	OP_UNMAP, EINVAL, .flags = VFIO_DMA_UNMAP_FLAG_ALL },
	{ "unmap bitmap and VADDR",	OP_UNMAP, EINVAL, .flags = VFIO_DMA_UNMAP_FLAG_VADDR },
	{ "unmap unknown flag",		OP_UNMAP, EINVAL, .flags = 1U << 7 },
	{ "unmap pgsize zero",		OP_UNMAP, EINVAL, .pgsize = NONE },
	{ "unmap pgsize 2 KiB",		OP_UNMAP, EINVAL, .pgsize = 2048 },
	{ "unmap pgsize 3 GiB",		OP_UNMAP, EINVAL, .pgsize = 3 * SZ_1G },
	{ "unmap iova unaligned",	OP_UNMAP, EINVAL, .iova_delta = 512 },
	{ "unmap bisects the mapping",	OP_UNMAP, EINVAL, .iova_delta = VFIO_MIG_PAGE_4K },
	{ "unmap size unaligned",	OP_UNMAP, EINVAL, .size = MAP_SIZE - 1 },
	{ "unmap bitmap size zero",	OP_UNMAP, EINVAL, .bsize = NONE },
	{ "unmap bitmap short",
	  OP_UNMAP, EINVAL, .size = 128 * VFIO_MIG_PAGE_4K,
	  .iova_delta = -(64 * (int64_t)VFIO_MIG_PAGE_4K),
	  .bsize = 8 },
	{ "unmap bitmap too large",	OP_UNMAP, E2BIG, .bsize = 1ULL << 50 },
	{ "unmap bitmap NULL",		OP_UNMAP, EFAULT, .bdata = B_NULL },
	{ "unmap bitmap kernel address", OP_UNMAP, EFAULT, .bdata = B_KERNEL },
	{ "unmap bitmap read-only",	OP_UNMAP, EFAULT, .bdata = B_RO },
	{ "unmap bitmap unmapped",	OP_UNMAP, EFAULT, .bdata = B_UNMAPPED },
	{ "unmap bitmap half read-only",
	  OP_UNMAP, EFAULT, .bdata = B_HALF_RO, .iova_delta = -(32 * (int64_t)VFIO_MIG_PAGE_4K),
	  .size = 128 * VFIO_MIG_PAGE_4K },
};

struct pages {
	char *rw;		/* 2 pages read-write */
	char *ro;		/* 1 page read-only */
	char *half;		/* 8 bytes rw, then a read-only page */
	char *gone;		/* unmapped */
};

static uint64_t *bad_bitmap(const struct bad *b, struct pages *p)
{
	switch (b->bdata) {
	case B_NULL:		return NULL;
	case B_KERNEL:		return (uint64_t *)0xffff888000000000ULL;
	case B_RO:		return (uint64_t *)p->ro;
	case B_UNMAPPED:	return (uint64_t *)p->gone;
	case B_WRAP:		return (uint64_t *)(~0ULL - 7);
	case B_HALF_RO:		return (uint64_t *)p->half;
	default:		return (uint64_t *)p->rw;
	}
}

static int run_bad(int container, const struct bad *b, struct pages *p)
{
	uint64_t iova = (b->iova ? b->iova : MAP_IOVA) + b->iova_delta;
	uint64_t size = b->size_zero ? 0 : (b->size ? b->size : MAP_SIZE);
	uint64_t pgsize = b->pgsize == NONE ? 0 : (b->pgsize ? b->pgsize : VFIO_MIG_PAGE_4K);
	uint64_t bsize = b->bsize == NONE ? 0 : (b->bsize ? b->bsize : 16);
	uint64_t *data = bad_bitmap(b, p);

	memset(p->rw, 0, 2 * VFIO_MIG_PAGE_4K);
	if (b->op == OP_DIRTY) {
		struct vfio_iommu_type1_dirty_bitmap db = {
			.argsz = sizeof(db) - b->argsz_delta,
			.flags = b->flags,
		};

		return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &db) ? errno : 0;
	}
	if (b->op == OP_GET)
		return -vfio_get_bitmap_raw(container,
					    sizeof(struct vfio_mig_dirty_get) - b->argsz_delta,
					    VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
					    iova, size, pgsize, data, bsize);
	return -vfio_unmap_bitmap_raw(container,
				      sizeof(struct vfio_mig_unmap_bitmap) - b->argsz_delta,
				      b->flags, iova, size, pgsize, data, bsize,
				      NULL);
}

TEST_F(mixed, bad_inputs_change_nothing)
{
	struct pages p;
	uint64_t bitmap[1];
	unsigned int i;
	char *area;

	/* pages: 2 writable, 1 read-only, 1 writable (its last 8 bytes
	 * start the half read-only bitmap), 1 read-only, 1 unmapped
	 */
	area = anon(7 * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, area);
	p.rw = area;
	p.ro = area + 2 * VFIO_MIG_PAGE_4K;
	p.half = area + 4 * VFIO_MIG_PAGE_4K - 8;
	p.gone = area + 6 * VFIO_MIG_PAGE_4K;
	ASSERT_EQ(0, mprotect(p.ro, VFIO_MIG_PAGE_4K, PROT_READ));
	ASSERT_EQ(0, mprotect(area + 4 * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, PROT_READ));
	ASSERT_EQ(0, munmap(p.gone, VFIO_MIG_PAGE_4K));

	detach_edu(_metadata, &self->edu);	/* every page dirty, once */

	ksft_print_msg("%zu bad inputs\n", ARRAY_SIZE(bad_inputs));
	for (i = 0; i < ARRAY_SIZE(bad_inputs); i++) {
		const struct bad *b = &bad_inputs[i];

		EXPECT_EQ(b->err, run_bad(self->container, b, &p)) {
			ksft_print_msg("case %u: %s\n", i, b->name);
		}
		EXPECT_EQ(-EEXIST, vfio_map(self->container, MAP_IOVA,
					    self->buf, MAP_SIZE)) {
			ksft_print_msg("case %u: %s lost the mapping\n", i, b->name);
		}
	}
	/* no bad call reset a bit */
	bitmap[0] = 0;
	ASSERT_EQ(0, vfio_get_bitmap(self->container, MAP_IOVA, MAP_SIZE,
				     VFIO_MIG_PAGE_4K, bitmap, 8));
	EXPECT_EQ(~0ULL, bitmap[0]);
	munmap(area, 6 * VFIO_MIG_PAGE_4K);
}

TEST_HARNESS_MAIN
