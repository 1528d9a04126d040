// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pinned-page dirty scope, end to end through the migdev sample driver,
 * whose DMA engine writes guest memory with vfio_pin_pages() + kmap or
 * with vfio_dma_rw(), or keeps pages pinned.  Every report is compared bit
 * for bit, and the written memory byte for byte.
 */
#include "../kselftest_harness.h"
#include "migdev.h"

#define IOVA		0x100000ULL
#define PAGES		256ULL
#define SIZE		(PAGES * PAGE_4K)
#define WORDS		(PAGES / 64)

FIXTURE(pin) {
	struct migdev md;
	uint8_t *buf;
	uint64_t bitmap[WORDS];
	uint64_t want[WORDS];
};

FIXTURE_SETUP(pin)
{
	int ret = migdev_open(&self->md, 2);

	self->buf = MAP_FAILED;
	if (ret == -ENODEV)
		VFIO_SKIP_OR_FAIL("migdev", return, "needs a third " MIGDEV_TYPE " mdev");
	ASSERT_EQ(0, ret);
	self->buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0, SIZE);
	ASSERT_EQ(0, vfio_map(self->md.container, IOVA, self->buf, SIZE));
	ASSERT_EQ(0, vfio_dirty(self->md.container,
				VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
}

FIXTURE_TEARDOWN(pin)
{
	migdev_close(&self->md);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, SIZE);
}

static void want_pages(uint64_t *want, uint64_t first, uint64_t n)
{
	uint64_t i;

	for (i = first; i < first + n; i++)
		want[i / 64] |= 1ULL << (i % 64);
}

/* GET_BITMAP of the whole mapping equals @want; @want is cleared. */
#define EXPECT_REPORT() do {						\
	unsigned int w;							\
	memset(self->bitmap, 0, sizeof(self->bitmap));			\
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE,	\
				     PAGE_4K, self->bitmap,		\
				     sizeof(self->bitmap)));		\
	for (w = 0; w < WORDS; w++) {					\
		EXPECT_EQ(self->want[w], self->bitmap[w]) {		\
			ksft_print_msg("word %u\n", w);			\
		}							\
	}								\
	memset(self->want, 0, sizeof(self->want));			\
} while (0)

/* The written bytes hold the pattern, and the bytes around them are 0. */
static bool memory_is(uint8_t *buf, uint64_t off, uint64_t len, uint32_t seed)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		if (buf[off + i] != migdev_pattern(i, seed))
			return false;
	return (!off || !buf[off - 1]) && (off + len == SIZE || !buf[off + len]);
}

/* An mdev that has not written anything: nothing dirty. */
TEST_F(pin, clean)
{
	memset(self->want, 0, sizeof(self->want));
	EXPECT_REPORT();
}

/* vfio_dma_rw() straddling a page boundary dirties both pages, once. */
TEST_F(pin, dma_rw_straddling_write)
{
	uint64_t off = 5 * PAGE_4K - 3;

	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 6 17",
				(unsigned long long)(IOVA + off)));
	EXPECT_TRUE(memory_is(self->buf, off, 6, 17));
	want_pages(self->want, 4, 2);
	EXPECT_REPORT();
	EXPECT_REPORT();	/* reported once */

	/* a longer one: 3 pages and a bit, unaligned at both ends */
	off = 40 * PAGE_4K + 100;
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx %llu 7",
				(unsigned long long)(IOVA + off),
				(unsigned long long)(3 * PAGE_4K)));
	EXPECT_TRUE(memory_is(self->buf, off, 3 * PAGE_4K, 7));
	want_pages(self->want, 40, 4);
	EXPECT_REPORT();
}

/* Pin, write, unpin: the page is reported once (unpinned since the last). */
TEST_F(pin, pin_write_unpin)
{
	uint64_t off = 10 * PAGE_4K + 8;

	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "pin 0x%llx 4100 34",
				(unsigned long long)(IOVA + off)));
	EXPECT_TRUE(memory_is(self->buf, off, 4100, 34));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	want_pages(self->want, 10, 2);
	EXPECT_REPORT();
	EXPECT_REPORT();
}

/* A pinned working set is dirty in every report until it is unpinned. */
TEST_F(pin, pinned_stays_dirty_until_unpinned)
{
	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx %llu 0",
				(unsigned long long)(IOVA + 20 * PAGE_4K),
				(unsigned long long)(2 * PAGE_4K)));
	EXPECT_EQ(2, migdev_pinned(&self->md));
	want_pages(self->want, 20, 2);
	EXPECT_REPORT();
	want_pages(self->want, 20, 2);
	EXPECT_REPORT();
	/* unpinned since the last report: once more, then clean */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	want_pages(self->want, 20, 2);
	EXPECT_REPORT();
	EXPECT_REPORT();
}

/* Pages pinned before START are dirty from START on. */
TEST_F(pin, pinned_before_start)
{
	ASSERT_EQ(0, vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx 1 0",
				(unsigned long long)(IOVA + 100 * PAGE_4K)));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 1 1",
				(unsigned long long)(IOVA + 7 * PAGE_4K)));
	ASSERT_EQ(0, vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 100, 1);	/* not page 7: written before START */
	EXPECT_REPORT();
}

/* A report of part of the mapping resets only that part. */
TEST_F(pin, partial_report_resets_only_its_part)
{
	uint64_t bm = 0;

	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx %llu 3",
				(unsigned long long)IOVA,
				(unsigned long long)(PAGES * PAGE_4K)));
	/* pages 64..127 only */
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA + 64 * PAGE_4K,
				     64 * PAGE_4K, PAGE_4K, &bm, 8));
	EXPECT_EQ(~0ULL, bm);
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 0, 64);
	want_pages(self->want, 128, 128);
	EXPECT_REPORT();
}

/*
 * Unmapping pinned pages: the driver is told to unpin them, and the
 * unmap's bitmap carries them.
 */
TEST_F(pin, unmap_pinned_with_bitmap)
{
	uint64_t bitmap[WORDS] = { 0 }, unmapped = 0;

	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx %llu 0",
				(unsigned long long)(IOVA + 3 * PAGE_4K),
				(unsigned long long)(3 * PAGE_4K)));
	ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, IOVA, SIZE, PAGE_4K,
				       bitmap, sizeof(bitmap), &unmapped));
	EXPECT_EQ(SIZE, unmapped);
	EXPECT_EQ(0x38ULL, bitmap[0]);
	EXPECT_EQ(0, migdev_pinned(&self->md));
	/* a DMA to the unmapped range fails */
	EXPECT_EQ(-EINVAL, migdev_ctl(&self->md, "dma", "rw 0x%llx 4 0",
				      (unsigned long long)IOVA));
}

/* The device stopped (not running) does no DMA. */
TEST_F(pin, stopped_device_does_no_dma)
{
	ASSERT_EQ(0, mig_set_state(&self->md, V1_STOP));
	EXPECT_EQ(-EBUSY, migdev_ctl(&self->md, "dma", "rw 0x%llx 4 0",
				     (unsigned long long)IOVA));
	memset(self->want, 0, sizeof(self->want));
	EXPECT_REPORT();
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret;

	if (fd < 0)
		return -errno;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
	close(fd);
	return ret;
}

/*
 * Allocation failures: the n-th slab allocation of a GET_BITMAP fails, for
 * every n in turn (fail-nth).  Marking pinned pages needs memory; without
 * it the tracker records more (the whole chunk), so every GET succeeds and
 * reports at least the pinned pages.
 */
TEST_F(pin, allocation_failures_report_more)
{
	char path[64], val[16];
	int fd, n, injected = 0;

	if (write_file("/sys/kernel/debug/failslab/ignore-gfp-wait", "N") ||
	    write_file("/sys/kernel/debug/failslab/verbose", "0"))
		VFIO_SKIP_OR_FAIL("failslab", return,
				  "no failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", (int)gettid());
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx 8192 0",
				(unsigned long long)(IOVA + 20 * PAGE_4K)));
	for (n = 1; n < 32; n++) {
		/* each report starts clean: marking the pinned pages allocates */
		memset(self->bitmap, 0, sizeof(self->bitmap));
		fd = open(path, O_RDWR);
		ASSERT_GE(fd, 0);
		snprintf(val, sizeof(val), "%d", n);
		ASSERT_EQ((ssize_t)strlen(val), write(fd, val, strlen(val)));
		EXPECT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		memset(val, 0, sizeof(val));
		ASSERT_LT(0, pread(fd, val, sizeof(val) - 1, 0));
		ASSERT_EQ(1, write(fd, "0", 1));
		close(fd);
		EXPECT_EQ(3ULL << 20, self->bitmap[0] & (3ULL << 20));
		if (atoi(val))		/* fewer than n allocations: all tried */
			break;
		injected++;
	}
	EXPECT_GT(injected, 0);
	ksft_print_msg("%d allocations of a GET_BITMAP failed in turn\n", injected);
	/*
	 * With memory back, one report clears what fell back to whole
	 * chunks; after it, reports are exact again.
	 */
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, PAGE_4K,
				     self->bitmap, sizeof(self->bitmap)));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 20, 2);
	EXPECT_REPORT();
}

TEST_HARNESS_MAIN
