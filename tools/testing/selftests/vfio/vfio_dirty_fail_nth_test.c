// SPDX-License-Identifier: GPL-2.0-only
/*
 * The type1 dirty tracker under allocation failures, end to end through
 * the migdev sample driver: every ioctl, device open, group attach and DMA
 * command that allocates is run with its n-th slab allocation failing, for
 * every n in turn (fail-nth, FAIL_NTH_SWEEP()), and must either absorb the
 * failure (reporting more, never less) or fail with -ENOMEM and change
 * nothing.  Those that allocate nothing are checked to be so.
 */
#include <sys/ioctl.h>

#include "vfio_dirty_pin.h"

/*
 * Allocation failures: the n-th slab allocation of a GET_BITMAP fails, for
 * every n in turn (fail-nth).  Marking pinned pages needs memory; without
 * it the tracker records more (the whole chunk), so every GET succeeds and
 * reports at least the pinned pages, and more after some failures.
 */
TEST_F(pin, allocation_failures_report_more)
{
	struct fail_nth_sweep s = { .name = "GET_BITMAP, pages pinned" };

	if (!fail_nth_ready(_metadata))
		return;
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx 8192 0",
				(unsigned long long)(PIN_IOVA + 20 * VFIO_MIG_PAGE_4K)));
	FAIL_NTH_SWEEP(&s, 31) {
		/* each report starts clean: marking the pinned pages allocates */
		memset(self->bitmap, 0, sizeof(self->bitmap));
		FAIL_NTH(&s, EXPECT_EQ(0, vfio_get_bitmap(self->md.container,
							  PIN_IOVA, PIN_SIZE,
							  VFIO_MIG_PAGE_4K,
							  self->bitmap,
							  sizeof(self->bitmap))));
		if (!s.injected)	/* fewer than n allocations: all tried */
			break;
		EXPECT_EQ(3ULL << 20, self->bitmap[0] & (3ULL << 20));
		s.more += vfio_mig_bitmap_weight(self->bitmap, PIN_PAGES) > 2;
	}
	EXPECT_GT(s.points, 0);
	EXPECT_GT(s.more, 0);
	ksft_print_msg("%d allocations of a GET_BITMAP failed in turn, %d reported more\n",
		       s.points, s.more);
	/*
	 * With memory back, one report clears what fell back to whole
	 * chunks; after it, reports are exact again.
	 */
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE, VFIO_MIG_PAGE_4K,
				     self->bitmap, sizeof(self->bitmap)));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 20, 2);
	EXPECT_PIN_REPORT();
}

/* Pages 4 and 5 of the PIN_FAIL_IOVA mapping pinned by the device. */
static void fail_keep(struct __test_metadata *_metadata, struct migdev *md)
{
	ASSERT_EQ(0, migdev_ctl(md, "dma", "keep 0x%llx 8192 0",
				(unsigned long long)(PIN_FAIL_IOVA + 4 * VFIO_MIG_PAGE_4K)));
}

/*
 * MAP while tracking and UNMAP with a bitmap (of pages the device pinned:
 * unpinning them marks them dirty, which allocates), each with its n-th
 * allocation failing for every n in turn until it makes fewer.  A MAP
 * either absorbs the failure (the tracker then records more, never less)
 * and does its work, or fails with -ENOMEM and changes nothing: no mapping
 * made or lost, no dirty bit lost.  The UNMAP never fails: what it
 * allocates is the tracker's, which marks the whole chunk instead, so its
 * report holds more than the pinned pages, which the sweep must show.
 * STOP and START allocate nothing.  The container works after each.
 */
TEST_F(pin, allocation_failures_change_nothing)
{
	struct fail_nth_sweep map = { .name = "MAP while tracking" };
	struct fail_nth_sweep unmap = { .name = "UNMAP with a bitmap of pinned pages" };
	uint64_t bm[1], unmapped;
	int fd, ret;
	void *mem;

	if (!fail_nth_ready(_metadata))
		return;
	mem = mmap(NULL, PIN_FAIL_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);

	FAIL_NTH_SWEEP(&map, 63) {
		FAIL_NTH(&map, ret = vfio_map(self->md.container, PIN_FAIL_IOVA,
					      mem, PIN_FAIL_SIZE));
		if (!map.injected)
			break;
		if (!ret) {
			map.absorbed++;
			ASSERT_EQ(0, vfio_unmap(self->md.container, PIN_FAIL_IOVA, PIN_FAIL_SIZE));
			continue;
		}
		ASSERT_EQ(-ENOMEM, ret);
		/* nothing mapped: an unmap of the range finds nothing */
		unmapped = 1;
		ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, PIN_FAIL_IOVA, PIN_FAIL_SIZE,
					       VFIO_MIG_PAGE_4K, bm, sizeof(bm), &unmapped));
		ASSERT_EQ(0, unmapped);
	}
	ASSERT_EQ(0, ret);
	fail_nth_sweep_print(_metadata, &map);

	/* the device pins pages 4 and 5 of it */
	fail_keep(_metadata, &self->md);
	FAIL_NTH_SWEEP(&unmap, 63) {
		bm[0] = 0;
		FAIL_NTH(&unmap, ret = vfio_unmap_bitmap(self->md.container,
							 PIN_FAIL_IOVA,
							 PIN_FAIL_SIZE,
							 VFIO_MIG_PAGE_4K, bm,
							 sizeof(bm), &unmapped));
		if (!unmap.injected)
			break;
		unmap.absorbed++;
		/* unmapped, the bits reported (or more): map, pin again */
		ASSERT_EQ(0, ret);
		ASSERT_EQ(PIN_FAIL_SIZE, unmapped);
		ASSERT_EQ(0x30ULL, bm[0] & 0x30);
		unmap.more += bm[0] != 0x30;
		ASSERT_EQ(0, vfio_map(self->md.container, PIN_FAIL_IOVA, mem, PIN_FAIL_SIZE));
		fail_keep(_metadata, &self->md);
	}
	/* no allocation failed: exact */
	ASSERT_EQ(0, ret);
	EXPECT_EQ(PIN_FAIL_SIZE, unmapped);
	EXPECT_EQ(0x30ULL, bm[0]);
	EXPECT_GT(unmap.more, 0);
	fail_nth_sweep_print(_metadata, &unmap);

	fd = fail_nth_none_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	fail_nth_none_check(_metadata, fd, "STOP");
	ASSERT_EQ(0, ret);
	/* tracking off */
	ASSERT_EQ(-EINVAL, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE, VFIO_MIG_PAGE_4K,
					   self->bitmap, sizeof(self->bitmap)));
	fd = fail_nth_none_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	fail_nth_none_check(_metadata, fd, "START");
	ASSERT_EQ(0, ret);
	/* tracking on again: a write is reported */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 8 9",
				(unsigned long long)(PIN_IOVA + 30 * VFIO_MIG_PAGE_4K)));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 30, 1);
	EXPECT_PIN_REPORT();
	munmap(mem, PIN_FAIL_SIZE);
}

/* The device's file, or -errno. */
static int open_device(struct migdev *md)
{
	int dev = ioctl(md->group, VFIO_GROUP_GET_DEVICE_FD, md->uuid);

	return dev < 0 ? -errno : dev;
}

/*
 * Opening the device (VFIO_GROUP_GET_DEVICE_FD: the VFIO core, migdev's
 * open_device, type1's device list) with its n-th allocation failing, for
 * every n in turn: -ENOMEM and nothing half-open, or a working device.
 * Leaks would show in the kmemleak scan after the suite.
 */
TEST_F(pin, allocation_failures_device_open)
{
	struct fail_nth_sweep s = { .name = "device open (VFIO_GROUP_GET_DEVICE_FD)" };
	int dev;

	if (!fail_nth_ready(_metadata))
		return;
	close(self->md.fd);
	self->md.fd = -1;
	FAIL_NTH_SWEEP(&s, 255) {
		FAIL_NTH(&s, dev = open_device(&self->md));
		if (!s.injected)
			break;
		if (dev >= 0) {
			struct migdev opened = { .fd = dev, .bar0 = self->md.bar0 };

			s.absorbed++;
			ASSERT_EQ(MIGDEV_ID, bar0_read32(&opened, MIGDEV_REG_ID));
			close(dev);
			continue;
		}
		ASSERT_EQ(-ENOMEM, dev);
	}
	ASSERT_GE(dev, 0);
	self->md.fd = dev;
	/* a working device in a working container */
	EXPECT_EQ(MIGDEV_ID, bar0_read32(&self->md, MIGDEV_REG_ID));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 8 5",
				(unsigned long long)(PIN_IOVA + 40 * VFIO_MIG_PAGE_4K)));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 40, 1);
	EXPECT_PIN_REPORT();
	fail_nth_sweep_print(_metadata, &s);
}

/*
 * A GET_BITMAP under fail-nth: [iova, iova + size) at @pgsize into
 * @bitmap (@words u64 words).  It must report at least @must: the pages
 * pinned now (kept pinned throughout) and those @redirty writes.  A
 * report restarts the range from the pinned pages, so @redirty makes the
 * written ones dirty again after each one that succeeded.
 */
struct get_case {
	struct fail_nth_sweep s;
	struct migdev *md;
	uint64_t iova, size, pgsize;
	uint64_t *bitmap, *must;
	uint64_t words;
	void (*redirty)(struct __test_metadata *_metadata, struct migdev *md);
};

/* The zeroed @bitmap and @must of @c, @c->words words each. */
static void get_case_alloc(struct __test_metadata *_metadata, struct get_case *c)
{
	c->bitmap = calloc(c->words, 8);
	c->must = calloc(c->words, 8);
	ASSERT_NE(NULL, c->bitmap);
	ASSERT_NE(NULL, c->must);
}

static void get_case_free(struct get_case *c)
{
	free(c->bitmap);
	free(c->must);
}

/*
 * For n = 1, 2, ... the n-th allocation of the GET fails, until it makes
 * fewer than n.  A GET does not fail for want of memory: the tracker
 * cannot mark a pinned page in a chunk without its bitmap, or store one,
 * so it marks the whole chunk (or the whole mapping) instead, and a
 * report changes nothing in it; so every GET succeeds, with at least
 * @must, and the sweep exercises the report that holds more: at least one
 * must, or the sweep did not reach the tracker.  With memory back, the
 * first report clears what fell back to whole chunks; the one after it
 * reports exactly @must.
 */
static void get_sweep(struct __test_metadata *_metadata, struct get_case *c)
{
	int ret;

	c->redirty(_metadata, c->md);
	FAIL_NTH_SWEEP(&c->s, 255) {
		memset(c->bitmap, 0, c->words * 8);	/* and faulted in */
		FAIL_NTH(&c->s, ret = vfio_get_bitmap(c->md->container, c->iova,
						      c->size, c->pgsize,
						      c->bitmap, c->words * 8));
		ASSERT_EQ(0, ret) {
			ksft_print_msg("%s: allocation %d failed\n", c->s.name, c->s.n);
		}
		pin_sweep_report(_metadata, &c->s, c->bitmap, c->must, c->words);
		if (c->s.injected) {
			c->s.absorbed++;
			c->redirty(_metadata, c->md);
		}
	}
	ASSERT_FALSE(c->s.injected);
	EXPECT_GT(c->s.more, 0);
	c->redirty(_metadata, c->md);
	memset(c->bitmap, 0, c->words * 8);
	ASSERT_EQ(0, vfio_get_bitmap(c->md->container, c->iova, c->size,
				     c->pgsize, c->bitmap, c->words * 8));
	EXPECT_EQ(0, memcmp(c->bitmap, c->must, c->words * 8)) {
		ksft_print_msg("%s: not exact after the sweep\n", c->s.name);
		bits_cover(c->must, c->bitmap, c->words);
	}
	fail_nth_sweep_print(_metadata, &c->s);
}

static uint8_t *reserve_map(struct __test_metadata *_metadata, int container,
			    uint64_t iova, uint64_t size)
{
	uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, vfio_map(container, iova, mem, size));
	return mem;
}

#define SP_IOVA		0x100000000ULL
#define SP_SIZE		0x40000000ULL	/* 8 tracker chunks */
#define SP_PAGES	(SP_SIZE / VFIO_MIG_PAGE_4K)
#define SP_CHUNK_PAGES	32768ULL

/*
 * The page of chunk @c of the sparse mapping that is dirty: pinned in
 * chunks 1, 4 and 6 (marking them at a report needs memory: nothing else
 * in those chunks is dirty), written in the others.
 */
static bool sparse_pinned(uint64_t c)
{
	return c == 1 || c == 4 || c == 6;
}

static uint64_t sparse_page(uint64_t c)
{
	return c * SP_CHUNK_PAGES + (sparse_pinned(c) ? 1000 + c : 7 * c + 3);
}

static void sparse_redirty(struct __test_metadata *_metadata, struct migdev *md)
{
	uint64_t c;

	for (c = 0; c < SP_SIZE / (SP_CHUNK_PAGES * VFIO_MIG_PAGE_4K); c++)
		if (!sparse_pinned(c))
			ASSERT_EQ(0, migdev_dma(md, "rw",
						SP_IOVA + sparse_page(c) * VFIO_MIG_PAGE_4K,
						8, c));
}

/*
 * GET_BITMAP of a sparse 1 GiB mapping (one dirty page in each of its 8
 * tracker chunks: written in five, pinned in three) with its n-th
 * allocation failing, for every n in turn.
 */
TEST_F_TIMEOUT(pin, allocation_failures_get_sparse, 300)
{
	struct get_case c = {
		.s.name = "GET_BITMAP sparse", .md = &self->md,
		.iova = SP_IOVA, .size = SP_SIZE, .pgsize = VFIO_MIG_PAGE_4K,
		.words = SP_PAGES / 64, .redirty = sparse_redirty,
	};
	uint8_t *mem;
	uint64_t i;

	if (!fail_nth_ready(_metadata))
		return;
	mem = reserve_map(_metadata, self->md.container, SP_IOVA, SP_SIZE);
	get_case_alloc(_metadata, &c);
	for (i = 0; i < SP_SIZE / (SP_CHUNK_PAGES * VFIO_MIG_PAGE_4K); i++) {
		set_bit64(c.must, sparse_page(i));
		if (sparse_pinned(i))
			ASSERT_EQ(0, migdev_dma(&self->md, "keep",
						SP_IOVA + sparse_page(i) * VFIO_MIG_PAGE_4K, 1, 0));
	}
	get_sweep(_metadata, &c);
	EXPECT_EQ(0, vfio_unmap(self->md.container, SP_IOVA, SP_SIZE));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	get_case_free(&c);
	munmap(mem, SP_SIZE);
}

#define DN_IOVA		0x400000000ULL
#define DN_SIZE		(256ULL << 20)	/* 2 tracker chunks */
#define DN_WRITTEN	1024ULL		/* pages written from page 0 */
#define DN_PINNED	512ULL		/* pages pinned from DN_PIN_PAGE */
#define DN_PIN_PAGE	(SP_CHUNK_PAGES + 4096)

static void dense_redirty(struct __test_metadata *_metadata, struct migdev *md)
{
	ASSERT_EQ(0, migdev_dma(md, "rw", DN_IOVA, DN_WRITTEN * VFIO_MIG_PAGE_4K, 1));
}

/*
 * GET_BITMAP of a dense report: 1024 pages written in one chunk, 512
 * pinned in the next, with its n-th allocation failing, for every n.
 */
TEST_F_TIMEOUT(pin, allocation_failures_get_dense, 300)
{
	struct get_case c = {
		.s.name = "GET_BITMAP dense", .md = &self->md,
		.iova = DN_IOVA, .size = DN_SIZE, .pgsize = VFIO_MIG_PAGE_4K,
		.words = DN_SIZE / VFIO_MIG_PAGE_4K / 64, .redirty = dense_redirty,
	};
	uint8_t *mem;
	uint64_t i;

	if (!fail_nth_ready(_metadata))
		return;
	mem = reserve_map(_metadata, self->md.container, DN_IOVA, DN_SIZE);
	get_case_alloc(_metadata, &c);
	for (i = 0; i < DN_WRITTEN; i++)
		set_bit64(c.must, i);
	ASSERT_EQ(0, migdev_dma(&self->md, "keep", DN_IOVA + DN_PIN_PAGE * VFIO_MIG_PAGE_4K,
				DN_PINNED * VFIO_MIG_PAGE_4K, 0));
	ASSERT_EQ(DN_PINNED, migdev_pinned(&self->md));
	for (i = 0; i < DN_PINNED; i++)
		set_bit64(c.must, DN_PIN_PAGE + i);
	get_sweep(_metadata, &c);
	EXPECT_EQ(0, vfio_unmap(self->md.container, DN_IOVA, DN_SIZE));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	get_case_free(&c);
	munmap(mem, DN_SIZE);
}

/*
 * Three mappings of 64 pages from BI_IOVA: A at page 0, B at 128 (a hole
 * before it), C at 192; the GET covers pages [32, 224): half of A, the
 * hole, B, half of C.
 */
#define BI_IOVA		0x1000000000ULL
#define BI_FIRST	32ULL
#define BI_PAGES	192ULL

/*
 * Pages written (in the range and outside it) and pinned, from BI_IOVA:
 * in B only pinned ones, which a report marks (that needs memory).
 */
static const uint64_t bi_in[] = { 40, 197 };
static const uint64_t bi_out[] = { 10, 252 };
static const uint64_t bi_pinned[] = { 50, 150, 191, 232 };

static void bisect_redirty(struct __test_metadata *_metadata, struct migdev *md)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bi_in); i++)
		ASSERT_EQ(0, migdev_dma(md, "rw", BI_IOVA + bi_in[i] * VFIO_MIG_PAGE_4K + 4, 8, i));
}

/*
 * GET_BITMAP of a range that bisects mappings and spans a hole, with its
 * n-th allocation failing, for every n: the range reports what it must,
 * and the parts of the mappings outside it keep their dirty pages.
 */
TEST_F_TIMEOUT(pin, allocation_failures_get_bisecting, 300)
{
	uint64_t bitmap[BI_PAGES / 64], must[BI_PAGES / 64] = { 0 };
	uint64_t whole[4], whole_must[4] = { 0 };
	struct get_case c = {
		.s.name = "GET_BITMAP bisecting", .md = &self->md,
		.iova = BI_IOVA + BI_FIRST * VFIO_MIG_PAGE_4K, .size = BI_PAGES * VFIO_MIG_PAGE_4K,
		.pgsize = VFIO_MIG_PAGE_4K, .bitmap = bitmap, .must = must,
		.words = BI_PAGES / 64, .redirty = bisect_redirty,
	};
	uint8_t *mem;
	unsigned int i;

	if (!fail_nth_ready(_metadata))
		return;
	mem = mmap(NULL, 256 * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, vfio_map(self->md.container, BI_IOVA, mem, 64 * VFIO_MIG_PAGE_4K));
	ASSERT_EQ(0, vfio_map(self->md.container, BI_IOVA + 128 * VFIO_MIG_PAGE_4K,
			      mem + 128 * VFIO_MIG_PAGE_4K, 64 * VFIO_MIG_PAGE_4K));
	ASSERT_EQ(0, vfio_map(self->md.container, BI_IOVA + 192 * VFIO_MIG_PAGE_4K,
			      mem + 192 * VFIO_MIG_PAGE_4K, 64 * VFIO_MIG_PAGE_4K));
	for (i = 0; i < ARRAY_SIZE(bi_out); i++) {
		ASSERT_EQ(0, migdev_dma(&self->md, "rw", BI_IOVA + bi_out[i] * VFIO_MIG_PAGE_4K,
					8, i));
		set_bit64(whole_must, bi_out[i]);
	}
	for (i = 0; i < ARRAY_SIZE(bi_pinned); i++) {
		ASSERT_EQ(0, migdev_dma(&self->md, "keep",
					BI_IOVA + bi_pinned[i] * VFIO_MIG_PAGE_4K,
					1, 0));
		set_bit64(whole_must, bi_pinned[i]);
		if (bi_pinned[i] >= BI_FIRST && bi_pinned[i] < BI_FIRST + BI_PAGES)
			set_bit64(must, bi_pinned[i] - BI_FIRST);
	}
	for (i = 0; i < ARRAY_SIZE(bi_in); i++)
		set_bit64(must, bi_in[i] - BI_FIRST);
	get_sweep(_metadata, &c);

	/* outside the range: the written pages are still dirty, once */
	memset(whole, 0, sizeof(whole));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, BI_IOVA, 256 * VFIO_MIG_PAGE_4K,
				     VFIO_MIG_PAGE_4K, whole, sizeof(whole)));
	EXPECT_TRUE(bits_cover(whole, whole_must, 4));
	memset(whole, 0, sizeof(whole));
	memset(whole_must, 0, sizeof(whole_must));
	for (i = 0; i < ARRAY_SIZE(bi_pinned); i++)
		set_bit64(whole_must, bi_pinned[i]);
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, BI_IOVA, 256 * VFIO_MIG_PAGE_4K,
				     VFIO_MIG_PAGE_4K, whole, sizeof(whole)));
	EXPECT_EQ(0, memcmp(whole, whole_must, sizeof(whole)));
	EXPECT_EQ(0, vfio_unmap(self->md.container, BI_IOVA, 256 * VFIO_MIG_PAGE_4K));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	munmap(mem, 256 * VFIO_MIG_PAGE_4K);
}

#define CO_IOVA		0x800000000ULL
#define CO_SIZE		(256ULL << 20)	/* 2 tracker chunks */

/* written pages in the first chunk, pinned ones in the second */
static const uint64_t co_written[] = { 3, 600, 3071 };
static const uint64_t co_pinned[] = { SP_CHUNK_PAGES + 2000, 2 * SP_CHUNK_PAGES - 1 };

static void coarse_redirty(struct __test_metadata *_metadata, struct migdev *md)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(co_written); i++)
		ASSERT_EQ(0, migdev_dma(md, "rw", CO_IOVA + co_written[i] * VFIO_MIG_PAGE_4K, 8,
					i));
}

/*
 * GET_BITMAP at coarse page sizes (8 KiB, 64 KiB, 2 MiB: a bit for any
 * dirty byte of its page) with its n-th allocation failing, for every n.
 */
TEST_F_TIMEOUT(pin, allocation_failures_get_coarse, 300)
{
	static const uint64_t pgsizes[] = { 8192, 65536, 2ULL << 20 };
	static const char * const names[] = {
		"GET_BITMAP at 8 KiB", "GET_BITMAP at 64 KiB", "GET_BITMAP at 2 MiB",
	};
	uint64_t words = CO_SIZE / 8192 / 64, *bitmap, *must;
	unsigned int i, p;
	uint8_t *mem;

	if (!fail_nth_ready(_metadata))
		return;
	mem = reserve_map(_metadata, self->md.container, CO_IOVA, CO_SIZE);
	bitmap = calloc(words, 8);
	must = calloc(words, 8);
	ASSERT_NE(NULL, bitmap);
	ASSERT_NE(NULL, must);
	for (i = 0; i < ARRAY_SIZE(co_pinned); i++)
		ASSERT_EQ(0, migdev_dma(&self->md, "keep",
					CO_IOVA + co_pinned[i] * VFIO_MIG_PAGE_4K,
					1, 0));
	for (p = 0; p < ARRAY_SIZE(pgsizes); p++) {
		uint64_t per = pgsizes[p] / VFIO_MIG_PAGE_4K, nbits = CO_SIZE / pgsizes[p];
		struct get_case c = {
			.s.name = names[p], .md = &self->md,
			.iova = CO_IOVA, .size = CO_SIZE, .pgsize = pgsizes[p],
			.bitmap = bitmap, .must = must, .words = (nbits + 63) / 64,
			.redirty = coarse_redirty,
		};

		memset(must, 0, words * 8);
		for (i = 0; i < ARRAY_SIZE(co_written); i++)
			set_bit64(must, co_written[i] / per);
		for (i = 0; i < ARRAY_SIZE(co_pinned); i++)
			set_bit64(must, co_pinned[i] / per);
		get_sweep(_metadata, &c);
	}
	EXPECT_EQ(0, vfio_unmap(self->md.container, CO_IOVA, CO_SIZE));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	free(bitmap);
	free(must);
	munmap(mem, CO_SIZE);
}

/* Pages 30-31 written, page 50 pinned: the fixture mapping's dirty pages. */
static void fixture_dirty(struct __test_metadata *_metadata, struct migdev *md)
{
	ASSERT_EQ(0, migdev_dma(md, "rw", PIN_IOVA + 30 * VFIO_MIG_PAGE_4K + 100, VFIO_MIG_PAGE_4K,
				3));
}

static void fixture_want(uint64_t *want)
{
	memset(want, 0, PIN_WORDS * 8);
	want_pages(want, 30, 2);
	want_pages(want, 50, 1);
}

/*
 * STOP and START allocate nothing (each is made with its first allocation
 * armed to fail, which must not be used), and do their work: after STOP,
 * GET is EINVAL; START restarts from the pinned pages, forgetting what was
 * written before, and tracking is exact again.
 */
TEST_F(pin, start_stop_allocate_nothing)
{
	int fd, ret;

	if (!fail_nth_ready(_metadata))
		return;
	ASSERT_EQ(0, migdev_dma(&self->md, "keep", PIN_IOVA + 50 * VFIO_MIG_PAGE_4K, 1, 0));
	fixture_dirty(_metadata, &self->md);

	fd = fail_nth_none_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	fail_nth_none_check(_metadata, fd, "STOP while tracking, a page pinned");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(-EINVAL, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE,
					   VFIO_MIG_PAGE_4K, self->bitmap,
					   sizeof(self->bitmap)));

	fd = fail_nth_none_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	fail_nth_none_check(_metadata, fd, "START, a page pinned");
	ASSERT_EQ(0, ret);
	/* what was written before START is forgotten, the pin is not */
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 50, 1);
	EXPECT_PIN_REPORT();
	fixture_dirty(_metadata, &self->md);
	fixture_want(self->want);
	EXPECT_PIN_REPORT();
}

#define UM_IOVA		PIN_FAIL_IOVA
#define UM_PAGES	16ULL		/* two mappings of 8 pages */

/* Size of what UNMAP_DMA (no bitmap) of [iova, iova + size) unmapped. */
static int unmap_size(int container, uint64_t iova, uint64_t size,
		      uint64_t *unmapped)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};
	int ret = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) ? -errno : 0;

	*unmapped = unmap.size;
	return ret;
}

/*
 * UNMAP_DMA without a bitmap while tracking, of two mappings whose pages
 * 2 and 9 the device keeps pinned (the driver unpins them when told, which
 * marks them dirty), with its n-th allocation failing, for every n.  What
 * it allocates is the tracker's, for those marks: without memory it marks
 * the whole chunk instead, so the unmap never fails.  What the sweep
 * exercises is that a mark that fell back to a whole chunk goes with its
 * mapping: the range is unmapped whole, and the fixture mapping's dirty
 * pages are exactly what they were, nothing lost and nothing added.
 */
TEST_F(pin, allocation_failures_unmap_no_bitmap)
{
	struct fail_nth_sweep s = { .name = "UNMAP without a bitmap while tracking" };
	uint64_t unmapped;
	int ret;
	uint8_t *mem;

	if (!fail_nth_ready(_metadata))
		return;
	mem = mmap(NULL, UM_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, migdev_dma(&self->md, "keep", PIN_IOVA + 50 * VFIO_MIG_PAGE_4K, 1, 0));
	fixture_dirty(_metadata, &self->md);
	FAIL_NTH_SWEEP(&s, 255) {
		/* both mappings there, pages 2 and 9 pinned */
		if (vfio_map(self->md.container, UM_IOVA, mem, 8 * VFIO_MIG_PAGE_4K) != -EEXIST) {
			ASSERT_EQ(0, vfio_map(self->md.container, UM_IOVA + 8 * VFIO_MIG_PAGE_4K,
					      mem + 8 * VFIO_MIG_PAGE_4K, 8 * VFIO_MIG_PAGE_4K));
		}
		if (migdev_pinned(&self->md) != 3) {
			ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
			ASSERT_EQ(0, migdev_dma(&self->md, "keep", PIN_IOVA + 50 * VFIO_MIG_PAGE_4K,
						1, 0));
			ASSERT_EQ(0, migdev_dma(&self->md, "keep", UM_IOVA + 2 * VFIO_MIG_PAGE_4K,
						1, 0));
			ASSERT_EQ(0, migdev_dma(&self->md, "keep", UM_IOVA + 9 * VFIO_MIG_PAGE_4K,
						1, 0));
		}
		ASSERT_EQ(3, migdev_pinned(&self->md));

		FAIL_NTH(&s, ret = unmap_size(self->md.container, UM_IOVA,
					      UM_PAGES * VFIO_MIG_PAGE_4K,
					      &unmapped));
		s.absorbed += s.injected;
		ASSERT_EQ(0, ret);
		/* whole: nothing is left mapped in the range */
		ASSERT_EQ(UM_PAGES * VFIO_MIG_PAGE_4K, unmapped);
		ASSERT_EQ(0, unmap_size(self->md.container, UM_IOVA,
					UM_PAGES * VFIO_MIG_PAGE_4K, &unmapped));
		ASSERT_EQ(0, unmapped);
		EXPECT_EQ(1, migdev_pinned(&self->md));
		/* the other mapping lost nothing, and got nothing */
		fixture_want(self->want);
		EXPECT_PIN_REPORT();
		fixture_dirty(_metadata, &self->md);
	}
	ASSERT_FALSE(s.injected);
	fail_nth_sweep_print(_metadata, &s);
	munmap(mem, UM_PAGES * VFIO_MIG_PAGE_4K);
}

/* Whether @group is in a container (VFIO_GROUP_GET_STATUS). */
static bool group_in_container(int group)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };

	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status))
		return false;
	return status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET;
}

/*
 * A second migdev-1 (an emulated-IOMMU group, so in pinned-page scope from
 * attach) joins the tracking container and leaves it:
 *  - VFIO_GROUP_SET_CONTAINER, with its n-th allocation failing, for every
 *    n: -ENOMEM and the group is not in it, or in it; either way the
 *    container is in pinned-page scope (a report is exactly the pinned and
 *    written pages, not everything) and no dirty page is lost;
 *  - VFIO_GROUP_UNSET_CONTAINER allocates nothing (the first allocation
 *    armed to fail is not used), and closing the group works with its
 *    first allocation failing, if it makes one: the page the second
 *    device pinned (and unpinned when closed) is reported once, nothing
 *    is lost and nothing is added.
 */
TEST_F_TIMEOUT(pin, allocation_failures_attach_detach, 300)
{
	struct fail_nth_sweep set = { .name = "VFIO_GROUP_SET_CONTAINER while tracking" };
	int fd, ret, id, group, dev, c = self->md.container;
	unsigned int i;
	char uuid[64], path[64];

	if (!fail_nth_ready(_metadata))
		return;
	id = vfio_find_mdev_group(MIGDEV_TYPE, 1, uuid, sizeof(uuid));
	if (id < 0)
		SKIP(return, "migdev: needs two " MIGDEV_TYPE " mdevs");
	snprintf(path, sizeof(path), "/dev/vfio/%d", id);
	ASSERT_EQ(0, migdev_dma(&self->md, "keep", PIN_IOVA + 50 * VFIO_MIG_PAGE_4K, 1, 0));
	fixture_dirty(_metadata, &self->md);

	group = open(path, O_RDWR);
	ASSERT_GE(group, 0);
	FAIL_NTH_SWEEP(&set, 255) {
		FAIL_NTH(&set, ret = ioctl(group, VFIO_GROUP_SET_CONTAINER, &c) ?
			 -errno : 0);
		if (ret) {
			ASSERT_EQ(-ENOMEM, ret);
			ASSERT_TRUE(set.injected);
			ASSERT_FALSE(group_in_container(group));
		} else {
			ASSERT_TRUE(group_in_container(group));
			if (set.injected)
				set.absorbed++;
		}
		fixture_want(self->want);
		EXPECT_PIN_REPORT();
		fixture_dirty(_metadata, &self->md);
		if (!ret && set.injected)
			ASSERT_EQ(0, ioctl(group, VFIO_GROUP_UNSET_CONTAINER));
	}
	ASSERT_FALSE(set.injected);
	fail_nth_sweep_print(_metadata, &set);

	/* in the container: the second device pins page 60 and writes 70 */
	for (i = 0; i < 2; i++) {
		struct migdev md2 = { .fd = -1 };

		snprintf(md2.uuid, sizeof(md2.uuid), "%s", uuid);
		if (i) {
			group = open(path, O_RDWR);
			ASSERT_GE(group, 0);
		}
		if (!group_in_container(group))
			ASSERT_EQ(0, ioctl(group, VFIO_GROUP_SET_CONTAINER, &c));
		dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, uuid);
		ASSERT_GE(dev, 0);
		ASSERT_EQ(0, migdev_dma(&md2, "keep", PIN_IOVA + 60 * VFIO_MIG_PAGE_4K, 1, 0));
		ASSERT_EQ(0, migdev_dma(&md2, "rw", PIN_IOVA + 70 * VFIO_MIG_PAGE_4K, 8, 1));
		fixture_want(self->want);
		want_pages(self->want, 60, 1);
		want_pages(self->want, 70, 1);
		EXPECT_PIN_REPORT();
		fixture_dirty(_metadata, &self->md);
		ASSERT_EQ(0, migdev_dma(&md2, "rw", PIN_IOVA + 70 * VFIO_MIG_PAGE_4K, 8, 2));
		close(dev);	/* unpins page 60 */

		fd = fail_nth_none_arm(_metadata, 0);
		if (i) {
			/*
			 * Closing the group takes it out of the container,
			 * also when its first allocation fails: the test
			 * kernel's close makes none, the debug kernel's one.
			 */
			close(group);
			ksft_print_msg("closing a group while tracking: %s\n",
				       fail_nth_disarm(fd) ? "its first allocation failed" :
				       "allocates nothing");
		} else {
			ret = ioctl(group, VFIO_GROUP_UNSET_CONTAINER) ? -errno : 0;
			fail_nth_none_check(_metadata, fd,
					    "VFIO_GROUP_UNSET_CONTAINER while tracking");
			ASSERT_EQ(0, ret);
			ASSERT_FALSE(group_in_container(group));
			close(group);
		}
		/* page 60 once (unpinned), 70 once (written): nothing more */
		fixture_want(self->want);
		want_pages(self->want, 60, 1);
		want_pages(self->want, 70, 1);
		EXPECT_PIN_REPORT();
		fixture_dirty(_metadata, &self->md);
		/* out of the container: the group opens again, free */
		group = open(path, O_RDWR);
		ASSERT_GE(group, 0);
		EXPECT_FALSE(group_in_container(group));
		close(group);
	}
	/* the container works: the fixture device writes, it is reported */
	fixture_want(self->want);
	EXPECT_PIN_REPORT();
}

/*
 * The device's DMA commands with the n-th allocation of its kernel thread
 * failing (fail-nth armed on that thread, which makes the calls into VFIO:
 * vfio_pin_pages(), vfio_unpin_pages(), vfio_dma_rw() and their dirty
 * marks), for every n in turn until a command makes fewer.  The debugfs
 * write returns the command's errno: -ENOMEM, or success when the failure
 * is absorbed, and then the memory holds what the command wrote.  Either
 * way the working set is what the command left pinned, and a report has
 * at least every page whose memory changed and every page pinned.  A
 * command that allocates nothing ("kept": writes through pages it holds
 * pinned) is made once, armed at 1, and must not use it.
 */
struct dma_case {
	const char *cmd;
	uint64_t page, off, len;	/* from PIN_IOVA */
	bool writes;			/* the pattern, seeded n */
	int pinned;			/* pages pinned after it succeeded */
	bool allocates;			/* else checked to allocate nothing */
};

#define KEPT_PAGE	40	/* the working set of "release" and "kept" */

static const struct dma_case dma_cases[] = {
	{ "pin", 10, 8, 4100, true, 0, true },
	{ "rw", 30, 4093, 6000, true, 0, true },
	{ "keep", 20, 0, 2 * VFIO_MIG_PAGE_4K, false, 2, true },
	{ "release", 0, 0, 0, false, 0, true },
	{ "kept", KEPT_PAGE, 100, VFIO_MIG_PAGE_4K, true, 2, false },
};

TEST_F_TIMEOUT(pin, allocation_failures_dma_commands, 300)
{
	int worker = migdev_worker(&self->md), fd, ret;
	uint64_t page, iova, must[PIN_WORDS];
	unsigned int i;
	long pinned;

	if (!fail_nth_ready(_metadata))
		return;
	if (worker < 0)
		SKIP(return,
		     "migdev: migdev has no DMA thread (debugfs \"worker\")");
	for (i = 0; i < ARRAY_SIZE(dma_cases); i++) {
		const struct dma_case *d = &dma_cases[i];
		char name[64];
		struct fail_nth_sweep s = { .name = name, .tid = worker };
		bool keeps_set = !strcmp(d->cmd, "release") || !strcmp(d->cmd, "kept");

		snprintf(name, sizeof(name), "DMA command \"%s\"", d->cmd);

		FAIL_NTH_SWEEP(&s, 255) {
			/* nothing pinned, nothing written, nothing dirty */
			ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
			memset(self->buf, 0, PIN_SIZE);
			ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE,
						     VFIO_MIG_PAGE_4K, self->bitmap,
						     sizeof(self->bitmap)));
			if (keeps_set)
				ASSERT_EQ(0, migdev_dma(&self->md, "keep",
							PIN_IOVA + KEPT_PAGE * VFIO_MIG_PAGE_4K,
							2 * VFIO_MIG_PAGE_4K, 0));

			iova = PIN_IOVA + d->page * VFIO_MIG_PAGE_4K + d->off;
			if (d->allocates) {
				FAIL_NTH(&s, ret = migdev_dma(&self->md, d->cmd, iova,
							      d->len, s.n));
			} else {
				fd = fail_nth_none_arm(_metadata, worker);
				ret = migdev_dma(&self->md, d->cmd, iova, d->len, ++s.n);
				fail_nth_none_check(_metadata, fd, name);
				s.injected = false;
			}
			pinned = migdev_pinned(&self->md);
			if (ret) {
				ASSERT_EQ(-ENOMEM, ret) {
					ksft_print_msg("%s: allocation %d failed\n",
						       d->cmd, s.n);
				}
				ASSERT_TRUE(s.injected);
				/* pins "keep" made before the failure may stay */
				EXPECT_TRUE(strcmp(d->cmd, "keep") ?
					    pinned == (keeps_set ? 2 : 0) :
					    pinned >= 0 && pinned <= 2) {
					ksft_print_msg("%s: allocation %d failed, %ld pinned\n",
						       d->cmd, s.n, pinned);
				}
			} else {
				if (s.injected)
					s.absorbed++;
				EXPECT_EQ(d->pinned, pinned);
				EXPECT_TRUE(!d->writes ||
					    memory_is(self->buf,
						      d->page * VFIO_MIG_PAGE_4K + d->off,
						      d->len, s.n)) {
					ksft_print_msg("%s: allocation %d failed\n",
						       d->cmd, s.n);
				}
			}

			/* dirty: every page changed, every page pinned now or before */
			memset(must, 0, sizeof(must));
			for (page = 0; page < PIN_PAGES; page++) {
				uint64_t b;

				for (b = 0; b < VFIO_MIG_PAGE_4K; b++) {
					if (self->buf[page * VFIO_MIG_PAGE_4K + b]) {
						set_bit64(must, page);
						break;
					}
				}
			}
			if (!strcmp(d->cmd, "keep"))
				want_pages(must, d->page, pinned);
			if (keeps_set)
				want_pages(must, KEPT_PAGE, 2);
			memset(self->bitmap, 0, sizeof(self->bitmap));
			ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE,
						     VFIO_MIG_PAGE_4K, self->bitmap,
						     sizeof(self->bitmap)));
			EXPECT_TRUE(bits_cover(self->bitmap, must, PIN_WORDS)) {
				ksft_print_msg("%s: allocation %d failed%s\n", d->cmd, s.n,
					       s.injected ? "" : " (none did)");
			}
		}
		ASSERT_FALSE(s.injected);
		if (d->allocates)
			fail_nth_sweep_print(_metadata, &s);
	}
	/* the device works on */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
	memset(self->buf, 0, PIN_SIZE);
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE, VFIO_MIG_PAGE_4K,
				     self->bitmap, sizeof(self->bitmap)));
	ASSERT_EQ(0, migdev_dma(&self->md, "pin", PIN_IOVA + 5 * VFIO_MIG_PAGE_4K, 8, 3));
	EXPECT_TRUE(memory_is(self->buf, 5 * VFIO_MIG_PAGE_4K, 8, 3));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 5, 1);
	EXPECT_PIN_REPORT();
}

TEST_HARNESS_MAIN
