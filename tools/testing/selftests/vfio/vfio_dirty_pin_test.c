// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pinned-page dirty scope, end to end through the migdev sample driver,
 * whose DMA engine writes guest memory with vfio_pin_pages() + kmap or
 * with vfio_dma_rw(), or keeps pages pinned.  Every report is compared bit
 * for bit, and the written memory byte for byte.
 */
#include "../kselftest_harness.h"
#include <pthread.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <vfio_mig_fail_nth.h>
#include <vfio_mig_migdev.h>

#define IOVA		0x100000ULL
#define PAGES		256ULL
#define SIZE		(PAGES * VFIO_MIG_PAGE_4K)
#define WORDS		(PAGES / 64)

/* SIZE bytes of zeroed memory mapped at IOVA in @container, tracked. */
static uint8_t *map_tracked(struct __test_metadata *_metadata, int container)
{
	uint8_t *buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0, SIZE);
	ASSERT_EQ(0, vfio_map(container, IOVA, buf, SIZE));
	ASSERT_EQ(0, vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	return buf;
}

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
		SKIP(return, "migdev: needs a third " MIGDEV_TYPE " mdev");
	ASSERT_EQ(0, ret);
	self->buf = map_tracked(_metadata, self->md.container);
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
				     VFIO_MIG_PAGE_4K, self->bitmap,		\
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
	uint64_t off = 5 * VFIO_MIG_PAGE_4K - 3;

	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 6 17",
				(unsigned long long)(IOVA + off)));
	EXPECT_TRUE(memory_is(self->buf, off, 6, 17));
	want_pages(self->want, 4, 2);
	EXPECT_REPORT();
	EXPECT_REPORT();	/* reported once */

	/* a longer one: 3 pages and a bit, unaligned at both ends */
	off = 40 * VFIO_MIG_PAGE_4K + 100;
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx %llu 7",
				(unsigned long long)(IOVA + off),
				(unsigned long long)(3 * VFIO_MIG_PAGE_4K)));
	EXPECT_TRUE(memory_is(self->buf, off, 3 * VFIO_MIG_PAGE_4K, 7));
	want_pages(self->want, 40, 4);
	EXPECT_REPORT();
}

/* Pin, write, unpin: the page is reported once (unpinned since the last). */
TEST_F(pin, pin_write_unpin)
{
	uint64_t off = 10 * VFIO_MIG_PAGE_4K + 8;

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
				(unsigned long long)(IOVA + 20 * VFIO_MIG_PAGE_4K),
				(unsigned long long)(2 * VFIO_MIG_PAGE_4K)));
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
				(unsigned long long)(IOVA + 100 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 1 1",
				(unsigned long long)(IOVA + 7 * VFIO_MIG_PAGE_4K)));
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
				(unsigned long long)(PAGES * VFIO_MIG_PAGE_4K)));
	/* pages 64..127 only */
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA + 64 * VFIO_MIG_PAGE_4K,
				     64 * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, &bm, 8));
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
				(unsigned long long)(IOVA + 3 * VFIO_MIG_PAGE_4K),
				(unsigned long long)(3 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
				       bitmap, sizeof(bitmap), &unmapped));
	EXPECT_EQ(SIZE, unmapped);
	EXPECT_EQ(0x38ULL, bitmap[0]);
	EXPECT_EQ(0, migdev_pinned(&self->md));
	/* a DMA to the unmapped range fails */
	EXPECT_EQ(-EINVAL, migdev_ctl(&self->md, "dma", "rw 0x%llx 4 0",
				      (unsigned long long)IOVA));
}

/* GET_BITMAP of @n 4 KiB pages from @base into one word. */
static uint64_t many_get(struct __test_metadata *_metadata, int container,
			 uint64_t base, uint64_t n)
{
	uint64_t bm = 0;

	EXPECT_EQ(0, vfio_get_bitmap(container, base, n * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K,
				     &bm, sizeof(bm)));
	return bm;
}

/*
 * Among many small mappings (as QEMU holds behind a vIOMMU), a report
 * finds exactly the ones written or pinned, also after they were found
 * clean once, across STOP and START, and in an unmap's bitmap.
 */
TEST_F(pin, many_mappings_report_what_changed)
{
	const uint64_t base = 1ULL << 32, n = 64;
	uint64_t bm, unmapped = 0, i;
	int c = self->md.container;
	uint8_t *va;

	va = mmap(NULL, n * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, va);
	memset(va, 0, n * VFIO_MIG_PAGE_4K);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, vfio_map(self->md.container, base + i * VFIO_MIG_PAGE_4K,
				      va + i * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K));
	EXPECT_EQ(0, many_get(_metadata, c, base, n));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 8 1",
				(unsigned long long)(base + 10 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx 1 0",
				(unsigned long long)(base + 40 * VFIO_MIG_PAGE_4K)));
	EXPECT_EQ(1ULL << 10 | 1ULL << 40, many_get(_metadata, c, base, n));
	EXPECT_EQ(1ULL << 40, many_get(_metadata, c, base, n));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
	EXPECT_EQ(1ULL << 40, many_get(_metadata, c, base, n));
	EXPECT_EQ(0, many_get(_metadata, c, base, n));

	/* found clean before: written again, reported again */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 8 2",
				(unsigned long long)(base + 10 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "pin 0x%llx 8 3",
				(unsigned long long)(base + 63 * VFIO_MIG_PAGE_4K)));
	EXPECT_EQ(1ULL << 10 | 1ULL << 63, many_get(_metadata, c, base, n));

	/* a pin kept across STOP and START is dirty again at once */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx 1 0",
				(unsigned long long)(base + 50 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 8 4",
				(unsigned long long)(base + 5 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	ASSERT_EQ(0, vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	EXPECT_EQ(1ULL << 50, many_get(_metadata, c, base, n));

	/* unmapping all of them unpins page 50 and reports it */
	bm = 0;
	ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, base, n * VFIO_MIG_PAGE_4K,
				       VFIO_MIG_PAGE_4K, &bm, 8, &unmapped));
	EXPECT_EQ(n * VFIO_MIG_PAGE_4K, unmapped);
	EXPECT_EQ(1ULL << 50, bm);
	EXPECT_EQ(0, migdev_pinned(&self->md));
	munmap(va, n * VFIO_MIG_PAGE_4K);
}

/* The device stopped (not running) does no DMA. */
TEST_F(pin, stopped_device_does_no_dma)
{
	ASSERT_EQ(0, mig_set_state(&self->md, MIGDEV_V1_STOP));
	EXPECT_EQ(-EBUSY, migdev_ctl(&self->md, "dma", "rw 0x%llx 4 0",
				     (unsigned long long)IOVA));
	memset(self->want, 0, sizeof(self->want));
	EXPECT_REPORT();
}

struct stopper {
	struct migdev *md;
	unsigned int delay_us;	/* 0: once the device starts unpinning */
	long pinned;		/* pages it had pinned just before the STOP */
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * STOP tracking after @delay_us, or (@delay_us 0) as soon as the device
 * has fewer than PAGES pages pinned: the unmap is notifying it, with
 * iommu->lock dropped (at most 2 s).
 */
static void *stop_later(void *arg)
{
	struct stopper *st = arg;
	double end = mono_s() + 2;

	if (st->delay_us)
		usleep(st->delay_us);
	else
		while (migdev_pinned(st->md) == PAGES && mono_s() < end)
			;
	st->pinned = migdev_pinned(st->md);
	return (void *)(long)vfio_dirty(st->md->container,
					VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
}

/*
 * UNMAP_DMA with GET_DIRTY_BITMAP while another thread stops tracking:
 * the unmap checks that tracking is on, then notifies the driver, which
 * unpins (dirtying the pages), with iommu->lock dropped, and checks again
 * before it reports and removes anything.  A STOP in that window must not
 * make the unmap succeed with fewer bits: it either reports every pinned
 * page or fails with -EINVAL, unmaps nothing and writes no bit.
 *
 * Where the STOP landed shows in what the unmap returned and in what the
 * device still holds: -EINVAL with the pages still pinned, before the
 * unmap began (it was refused before notifying anyone); -EINVAL with
 * them unpinned, inside the window (the notification ran, so tracking
 * was on at the first check, and off at the second; STOP takes
 * iommu->lock, which the unmap holds from one check to the notification
 * and again from its end); success, after the second check.  Half the
 * rounds stop after a delay, half as soon as the device starts
 * unpinning: those land in the window, and at least one must.
 */
TEST_F(pin, unmap_bitmap_races_stop)
{
	int i, reported = 0, before = 0, inside = 0;

	for (i = 0; i < 200; i++) {
		struct stopper st = {
			.md = &self->md,
			.delay_us = i % 2 ? (i * 37) % 1500 + 1 : 0,
		};
		uint64_t unmapped = 0;
		pthread_t t;
		void *stop_ret;
		long pinned;
		int ret;

		ASSERT_EQ(0, vfio_dirty(self->md.container,
					VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
		ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx %llu 0",
					(unsigned long long)IOVA,
					(unsigned long long)SIZE));
		ASSERT_EQ(PAGES, migdev_pinned(&self->md));
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, pthread_create(&t, NULL, stop_later, &st));
		ret = vfio_unmap_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
					self->bitmap, sizeof(self->bitmap),
					&unmapped);
		ASSERT_EQ(0, pthread_join(t, &stop_ret));
		ASSERT_EQ(0, (long)stop_ret);
		pinned = migdev_pinned(&self->md);
		if (ret == -EINVAL) {
			/* nothing unmapped, no bit written */
			EXPECT_EQ(-EEXIST, vfio_map(self->md.container, IOVA,
						    self->buf, SIZE));
			EXPECT_EQ(0, vfio_mig_bitmap_weight(self->bitmap, PAGES));
			if (pinned == PAGES) {
				before++;
				ASSERT_EQ(0, migdev_ctl(&self->md, "dma",
							"release 0 0 0"));
			} else {
				/* the notification unpinned everything */
				EXPECT_EQ(0, pinned);
				inside++;
			}
			continue;
		}
		ASSERT_EQ(0, ret);
		EXPECT_EQ(SIZE, unmapped);
		EXPECT_EQ(0, pinned);
		EXPECT_EQ(PAGES, vfio_mig_bitmap_weight(self->bitmap, PAGES)) {
			ksft_print_msg("round %d: %llu of %llu pinned pages reported\n",
				       i, (unsigned long long)
				       vfio_mig_bitmap_weight(self->bitmap, PAGES),
				       (unsigned long long)PAGES);
			break;
		}
		reported++;
		ASSERT_EQ(0, vfio_map(self->md.container, IOVA, self->buf, SIZE));
	}
	ksft_print_msg("STOP before the unmap %d times, in its unlocked window %d, after %d\n",
		       before, inside, reported);
	EXPECT_GT(inside, 0);
	ASSERT_EQ(0, vfio_dirty(self->md.container,
				VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
}

/*
 * DMA in every state but running (and pre-copy) is refused with EBUSY:
 * stop-and-copy, stopped, resuming and the error state; and the registers
 * of a device that is not running are frozen (they are migrated): BAR0
 * writes fail with EBUSY and change nothing.
 */
TEST_F(pin, dma_refused_unless_running)
{
	static const uint32_t states[] = {
		MIGDEV_V1_SAVING, MIGDEV_V1_STOP, MIGDEV_V1_RESUMING, MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING,
	};
	uint64_t junk = ~0ULL, size = 8;
	uint32_t count, status;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		ASSERT_EQ(0, ioctl(self->md.fd, VFIO_DEVICE_RESET));
		ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA, 0, 0));
		ASSERT_TRUE(bar0_poll(&self->md, 0, 0));
		status = bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS);
		ASSERT_EQ((uint32_t)-EINVAL, status);
		count = bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT);
		if (states[i] == (MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING)) {
			ASSERT_EQ(0, mig_set_state(&self->md, MIGDEV_V1_RESUMING));
			ASSERT_EQ(0, mig_write(&self->md, 4096, &junk, 8));
			ASSERT_EQ(-EINVAL, mig_write(&self->md, MIGDEV_HDR_DATA_SIZE, &size, 8));
		} else {
			ASSERT_EQ(0, mig_set_state(&self->md, states[i]));
		}
		ASSERT_EQ(states[i], mig_state(&self->md));
		EXPECT_EQ(-EBUSY, migdev_ctl(&self->md, "dma", "rw 0x%llx 4 0",
					     (unsigned long long)IOVA));
		EXPECT_EQ(-EBUSY, migdev_ctl(&self->md, "dma", "pin 0x%llx 4 0",
					     (unsigned long long)IOVA));
		EXPECT_EQ(-EBUSY, migdev_ctl(&self->md, "dma", "keep 0x%llx 4 0",
					     (unsigned long long)IOVA));
		EXPECT_EQ(0, migdev_pinned(&self->md));
		EXPECT_EQ(-EBUSY, bar0_write(&self->md, MIGDEV_REG_DMA_CMD, MIGDEV_CMD_WRITE_RW, 4));
		EXPECT_EQ(-EBUSY, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA + 64, 4, 0));
		EXPECT_EQ(-EBUSY, bar0_write(&self->md, MIGDEV_REG_SCRATCH, 1, 4));
		usleep(100000);
		EXPECT_EQ(status, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS)) {
			ksft_print_msg("state %u\n", states[i]);
		}
		EXPECT_EQ(count, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
		EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_SCRATCH));
		EXPECT_EQ((uint32_t)IOVA, bar0_read32(&self->md, MIGDEV_REG_DMA_ADDR));
		EXPECT_EQ(states[i], mig_state(&self->md));
	}
	ASSERT_EQ(0, ioctl(self->md.fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(0, self->buf[0]);
	memset(self->want, 0, sizeof(self->want));
	EXPECT_REPORT();
}

/*
 * The BAR0 command path as a guest driver uses it: program the registers
 * through the region, write the command register, poll MIGDEV_REG_DMA_COUNT and
 * MIGDEV_REG_DMA_STATUS.  Failed commands show their errno in MIGDEV_REG_DMA_STATUS and
 * are not counted.
 */
TEST_F(pin, bar0_commands)
{
	uint32_t count, status;

	EXPECT_EQ(MIGDEV_ID, bar0_read32(&self->md, MIGDEV_REG_ID));
	count = bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT);
	status = bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS);
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA + 0x3001, 5000, 77));
	ASSERT_TRUE(bar0_poll(&self->md, count, status));
	EXPECT_EQ(count + 1, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_TRUE(memory_is(self->buf, 0x3001, 5000, 77));

	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_PIN, IOVA + 0x20000, 8192, 5));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(count + 1, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_TRUE(memory_is(self->buf, 0x20000, 8192, 5));
	EXPECT_EQ(0, migdev_pinned(&self->md));

	/* a working set through BAR0, then released */
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_PIN, IOVA + 0x40000, 4096, 0));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(1, migdev_pinned(&self->md));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_UNPIN, 0, 0, 0));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	count++;

	/* failures: zero length, too long, unknown command, unmapped IOVA */
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA, 0, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_EQ(count, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
	ASSERT_EQ(0, bar0_write(&self->md, MIGDEV_REG_DMA_STATUS, 0, 4));	/* ro */
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));

	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, (uint32_t)-EINVAL));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA, (4 << 20) + 1, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));

	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, (uint32_t)-EINVAL));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, 99, IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));

	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, (uint32_t)-EINVAL));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_PIN, IOVA + SIZE, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_EQ(count, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
	/* read-only registers stay */
	ASSERT_EQ(0, bar0_write(&self->md, MIGDEV_REG_ID, 0, 4));
	ASSERT_EQ(0, bar0_write(&self->md, MIGDEV_REG_DMA_COUNT, 0, 4));
	EXPECT_EQ(MIGDEV_ID, bar0_read32(&self->md, MIGDEV_REG_ID));
	EXPECT_EQ(count, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
}

/*
 * A command started through BAR0 right before the device leaves running:
 * the device quiesces first, so when the state write returns the command
 * is done (counted, status 0, memory written), whichever the new state.
 */
TEST_F(pin, bar0_command_finishes_before_state_change)
{
	static const struct { uint32_t from, to; } t[] = {
		{ MIGDEV_V1_RUNNING, MIGDEV_V1_STOP },
		{ MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING },
		{ MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING },
		{ MIGDEV_V1_RUNNING, MIGDEV_V1_RESUMING },
	};
	unsigned int i, round;
	uint32_t count;

	for (round = 0; round < 8; round++) {
		for (i = 0; i < ARRAY_SIZE(t); i++) {
			uint32_t seed = round * 16 + i + 1;

			if (t[i].from != MIGDEV_V1_RUNNING)
				ASSERT_EQ(0, mig_set_state(&self->md, t[i].from));
			memset(self->buf, 0, 65536 + 8);
			count = bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT);
			ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_PIN, IOVA, 65536, seed));
			ASSERT_EQ(0, mig_set_state(&self->md, t[i].to));
			EXPECT_EQ(count + 1, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT)) {
				ksft_print_msg("%u -> %u, round %u\n", t[i].from,
					       t[i].to, round);
			}
			EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
			EXPECT_TRUE(memory_is(self->buf, 0, 65536, seed));
			ASSERT_EQ(0, mig_set_state(&self->md, MIGDEV_V1_RUNNING));
		}
	}
}

struct race {
	struct migdev *md;
	uint64_t iova, size;
	bool stop;
	unsigned int done, refused, bad;
	int bad_errno;
};

/* DMA into the range, by pinning, in a loop: writes and a working set. */
static void *race_dma(void *arg)
{
	struct race *r = arg;
	unsigned int n;
	int ret;

	for (n = 0; !__atomic_load_n(&r->stop, __ATOMIC_RELAXED); n++) {
		if (n % 4 == 3)
			ret = migdev_ctl(r->md, "dma", "keep 0x%llx %llu 0",
					 (unsigned long long)r->iova,
					 (unsigned long long)r->size);
		else
			ret = migdev_ctl(r->md, "dma", "pin 0x%llx %llu %u",
					 (unsigned long long)r->iova,
					 (unsigned long long)r->size, n);
		if (n % 4 == 3)
			migdev_ctl(r->md, "dma", "release 0 0 0");
		if (!ret) {
			__atomic_fetch_add(&r->done, 1, __ATOMIC_RELAXED);
		} else if (ret == -EINVAL || ret == -EFAULT) {
			r->refused++;	/* unmapped, or unmapped under it */
		} else {
			r->bad++;
			r->bad_errno = ret;
		}
	}
	return NULL;
}

/*
 * Unmapping a range while the device pins pages in it, 4 MiB at a time,
 * for writes and for its working set: the driver lets go of every page it
 * has pinned there when told to, so every UNMAP succeeds (and no WARN).
 * A DMA command may fail only because its memory went away.
 */
TEST_F(pin, pinning_races_unmap)
{
	struct race r = {
		.md = &self->md, .iova = 1ULL << 30, .size = 4ULL << 20,
	};
	unsigned int i, unmaps = 0;
	pthread_t thread;
	uint8_t *mem;

	mem = mmap(NULL, r.size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, vfio_map(self->md.container, r.iova, mem, r.size));
	ASSERT_EQ(0, pthread_create(&thread, NULL, race_dma, &r));
	for (i = 0; i < 40; i++) {
		usleep(20000 + (i % 5) * 17000);
		EXPECT_EQ(0, vfio_unmap(self->md.container, r.iova, r.size)) {
			ksft_print_msg("unmap %u: %s\n", i, strerror(errno));
		}
		unmaps++;
		usleep(i % 3 * 5000);
		ASSERT_EQ(0, vfio_map(self->md.container, r.iova, mem, r.size));
	}
	/* mapped again: the next whole command goes through */
	for (i = 0; i < 1000 && !__atomic_load_n(&r.done, __ATOMIC_RELAXED); i++)
		usleep(10000);
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	ksft_print_msg("%u unmaps; DMA: %u done, %u failed for want of memory\n",
		       unmaps, r.done, r.refused);
	EXPECT_EQ(0, r.bad) {
		ksft_print_msg("DMA failed with %d\n", r.bad_errno);
	}
	EXPECT_GT(r.done, 0);
	EXPECT_EQ(0, vfio_unmap(self->md.container, r.iova, r.size));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	munmap(mem, r.size);
}

/*
 * Allocation failures: the n-th slab allocation of a GET_BITMAP fails, for
 * every n in turn (fail-nth).  Marking pinned pages needs memory; without
 * it the tracker records more (the whole chunk), so every GET succeeds and
 * reports at least the pinned pages, and more after some failures.
 */
TEST_F(pin, allocation_failures_report_more)
{
	int fd, n, injected = 0, more = 0;

	if (!fail_nth_ready(_metadata))
		return;
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx 8192 0",
				(unsigned long long)(IOVA + 20 * VFIO_MIG_PAGE_4K)));
	for (n = 1; n < 32; n++) {
		/* each report starts clean: marking the pinned pages allocates */
		memset(self->bitmap, 0, sizeof(self->bitmap));
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		EXPECT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		if (!fail_nth_disarm(fd))	/* fewer than n allocations: all tried */
			break;
		EXPECT_EQ(3ULL << 20, self->bitmap[0] & (3ULL << 20));
		more += vfio_mig_bitmap_weight(self->bitmap, PAGES) > 2;
		injected++;
	}
	EXPECT_GT(injected, 0);
	EXPECT_GT(more, 0);
	ksft_print_msg("%d allocations of a GET_BITMAP failed in turn, %d reported more\n",
		       injected, more);
	/*
	 * With memory back, one report clears what fell back to whole
	 * chunks; after it, reports are exact again.
	 */
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
				     self->bitmap, sizeof(self->bitmap)));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 20, 2);
	EXPECT_REPORT();
}

/*
 * The fail-nth sweeps below count, per operation, the injection points
 * (the n for which the n-th allocation failed) and, of them, those the
 * call absorbed: it succeeded although an allocation failed.  A sweep of
 * an operation that allocates must have points, or it tested nothing; an
 * operation that allocates nothing is checked to be so (no_alloc_arm(),
 * no_alloc_check()) rather than swept.
 */
struct sweep {
	const char *name;
	int points;
	int absorbed;
	int more;		/* of those, reported more than they must */
};

static void sweep_print(struct __test_metadata *_metadata,
			const struct sweep *s)
{
	static bool explained;

	EXPECT_GT(s->points, 0) {
		ksft_print_msg("%s: no allocation failed: the sweep tested nothing\n",
			       s->name);
	}
	if (s->more)
		ksft_print_msg("%s: %d allocations failed in turn (%d absorbed, %d report more)\n",
			       s->name, s->points, s->absorbed, s->more);
	else
		ksft_print_msg("%s: %d allocations failed in turn (%d absorbed)\n",
			       s->name, s->points, s->absorbed);
	if (explained)
		return;
	explained = true;
	ksft_print_msg("absorbed: the call succeeded although an allocation failed:\n");
	ksft_print_msg("  the tracker recorded more, or the allocation was kmemleak's\n");
	ksft_print_msg("  own object tracking (CONFIG_DEBUG_KMEMLEAK), which it tolerates\n");
}

/* Arm fail-nth at 1 for @tid (0: this thread) before a call... */
static int no_alloc_arm(struct __test_metadata *_metadata, int tid)
{
	int fd = fail_nth_arm(tid, 1);

	ASSERT_GE(fd, 0);
	return fd;
}

/* ...that allocates nothing: its first allocation was not made. */
static void no_alloc_check(struct __test_metadata *_metadata, int fd,
			   const char *what)
{
	bool injected = fail_nth_disarm(fd);

	EXPECT_FALSE(injected) {
		ksft_print_msg("%s allocates\n", what);
	}
	if (!injected)
		ksft_print_msg("%s: allocates nothing (fail-nth=1 not consumed)\n",
			       what);
}

#define FAIL_IOVA	(IOVA + SIZE + (1ULL << 20))
#define FAIL_SIZE	(16 * VFIO_MIG_PAGE_4K)

/* Pages 4 and 5 of the FAIL_IOVA mapping pinned by the device. */
static void fail_keep(struct __test_metadata *_metadata, struct migdev *md)
{
	ASSERT_EQ(0, migdev_ctl(md, "dma", "keep 0x%llx 8192 0",
				(unsigned long long)(FAIL_IOVA + 4 * VFIO_MIG_PAGE_4K)));
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
	struct sweep map = { .name = "MAP while tracking" };
	struct sweep unmap = { .name = "UNMAP with a bitmap of pinned pages" };
	uint64_t bm[1], unmapped;
	int fd, n, ret;
	void *mem;

	if (!fail_nth_ready(_metadata))
		return;
	mem = mmap(NULL, FAIL_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);

	for (n = 1; n < 64; n++) {
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		ret = vfio_map(self->md.container, FAIL_IOVA, mem, FAIL_SIZE);
		if (!fail_nth_disarm(fd))
			break;
		map.points++;
		if (!ret) {
			map.absorbed++;
			ASSERT_EQ(0, vfio_unmap(self->md.container, FAIL_IOVA, FAIL_SIZE));
			continue;
		}
		ASSERT_EQ(-ENOMEM, ret);
		/* nothing mapped: an unmap of the range finds nothing */
		unmapped = 1;
		ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, FAIL_IOVA, FAIL_SIZE,
					       VFIO_MIG_PAGE_4K, bm, sizeof(bm), &unmapped));
		ASSERT_EQ(0, unmapped);
	}
	ASSERT_EQ(0, ret);
	sweep_print(_metadata, &map);

	/* the device pins pages 4 and 5 of it */
	fail_keep(_metadata, &self->md);
	for (n = 1; n < 64; n++) {
		bm[0] = 0;
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		ret = vfio_unmap_bitmap(self->md.container, FAIL_IOVA, FAIL_SIZE,
					VFIO_MIG_PAGE_4K, bm, sizeof(bm), &unmapped);
		if (!fail_nth_disarm(fd))
			break;
		unmap.points++;
		unmap.absorbed++;
		/* unmapped, the bits reported (or more): map, pin again */
		ASSERT_EQ(0, ret);
		ASSERT_EQ(FAIL_SIZE, unmapped);
		ASSERT_EQ(0x30ULL, bm[0] & 0x30);
		unmap.more += bm[0] != 0x30;
		ASSERT_EQ(0, vfio_map(self->md.container, FAIL_IOVA, mem, FAIL_SIZE));
		fail_keep(_metadata, &self->md);
	}
	/* no allocation failed: exact */
	ASSERT_EQ(0, ret);
	EXPECT_EQ(FAIL_SIZE, unmapped);
	EXPECT_EQ(0x30ULL, bm[0]);
	EXPECT_GT(unmap.more, 0);
	sweep_print(_metadata, &unmap);

	fd = no_alloc_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	no_alloc_check(_metadata, fd, "STOP");
	ASSERT_EQ(0, ret);
	/* tracking off */
	ASSERT_EQ(-EINVAL, vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
					   self->bitmap, sizeof(self->bitmap)));
	fd = no_alloc_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	no_alloc_check(_metadata, fd, "START");
	ASSERT_EQ(0, ret);
	/* tracking on again: a write is reported */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 8 9",
				(unsigned long long)(IOVA + 30 * VFIO_MIG_PAGE_4K)));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 30, 1);
	EXPECT_REPORT();
	munmap(mem, FAIL_SIZE);
}

/*
 * Opening the device (VFIO_GROUP_GET_DEVICE_FD: the VFIO core, migdev's
 * open_device, type1's device list) with its n-th allocation failing, for
 * every n in turn: -ENOMEM and nothing half-open, or a working device.
 * Leaks would show in the kmemleak scan after the suite.
 */
TEST_F(pin, allocation_failures_device_open)
{
	struct sweep s = { .name = "device open (VFIO_GROUP_GET_DEVICE_FD)" };
	int fd, dev, n;

	if (!fail_nth_ready(_metadata))
		return;
	close(self->md.fd);
	self->md.fd = -1;
	for (n = 1; n < 256; n++) {
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		dev = ioctl(self->md.group, VFIO_GROUP_GET_DEVICE_FD, self->md.uuid);
		if (dev < 0)
			dev = -errno;
		if (!fail_nth_disarm(fd))
			break;
		s.points++;
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
				(unsigned long long)(IOVA + 40 * VFIO_MIG_PAGE_4K)));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 40, 1);
	EXPECT_REPORT();
	sweep_print(_metadata, &s);
}

/* Every bit of @must is set in @bitmap (@words u64 words). */
static bool bits_cover(const uint64_t *bitmap, const uint64_t *must,
		       uint64_t words)
{
	uint64_t i;

	for (i = 0; i < words; i++) {
		if ((bitmap[i] & must[i]) == must[i])
			continue;
		ksft_print_msg("word %llu is 0x%016llx: lacks 0x%016llx\n",
			       (unsigned long long)i, (unsigned long long)bitmap[i],
			       (unsigned long long)(must[i] & ~bitmap[i]));
		return false;
	}
	return true;
}

static void set_bit64(uint64_t *bitmap, uint64_t bit)
{
	bitmap[bit / 64] |= 1ULL << (bit % 64);
}

/*
 * A call of sweep @s with allocation @n armed returned @ret; @injected:
 * the allocation failed.  Its report (@bitmap, @words u64 words) must
 * cover @must; one that holds more after an absorbed failure is counted.
 */
static void sweep_report(struct __test_metadata *_metadata, struct sweep *s,
			 int n, bool injected, const uint64_t *bitmap,
			 const uint64_t *must, uint64_t words)
{
	ASSERT_TRUE(bits_cover(bitmap, must, words)) {
		ksft_print_msg("%s: allocation %d failed%s\n", s->name, n,
			       injected ? "" : " (none did)");
	}
	if (injected && memcmp(bitmap, must, words * 8))
		s->more++;
}

/*
 * A GET_BITMAP under fail-nth: [iova, iova + size) at @pgsize into
 * @bitmap (@words u64 words).  It must report at least @must: the pages
 * pinned now (kept pinned throughout) and those @redirty writes.  A
 * report restarts the range from the pinned pages, so @redirty makes the
 * written ones dirty again after each one that succeeded.
 */
struct get_case {
	struct sweep s;
	struct migdev *md;
	uint64_t iova, size, pgsize;
	uint64_t *bitmap, *must;
	uint64_t words;
	void (*redirty)(struct __test_metadata *_metadata, struct migdev *md);
};

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
	bool injected = true;
	int fd, n, ret;

	c->redirty(_metadata, c->md);
	for (n = 1; n < 256 && injected; n++) {
		memset(c->bitmap, 0, c->words * 8);	/* and faulted in */
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		ret = vfio_get_bitmap(c->md->container, c->iova, c->size,
				      c->pgsize, c->bitmap, c->words * 8);
		injected = fail_nth_disarm(fd);
		if (injected)
			c->s.points++;
		ASSERT_EQ(0, ret) {
			ksft_print_msg("%s: allocation %d failed\n", c->s.name, n);
		}
		sweep_report(_metadata, &c->s, n, injected, c->bitmap, c->must,
			     c->words);
		if (injected) {
			c->s.absorbed++;
			c->redirty(_metadata, c->md);
		}
	}
	ASSERT_FALSE(injected);
	EXPECT_GT(c->s.more, 0);
	c->redirty(_metadata, c->md);
	memset(c->bitmap, 0, c->words * 8);
	ASSERT_EQ(0, vfio_get_bitmap(c->md->container, c->iova, c->size,
				     c->pgsize, c->bitmap, c->words * 8));
	EXPECT_EQ(0, memcmp(c->bitmap, c->must, c->words * 8)) {
		ksft_print_msg("%s: not exact after the sweep\n", c->s.name);
		bits_cover(c->must, c->bitmap, c->words);
	}
	sweep_print(_metadata, &c->s);
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
			ASSERT_EQ(0, migdev_dma(md, "rw", SP_IOVA + sparse_page(c) * VFIO_MIG_PAGE_4K,
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
	c.bitmap = calloc(c.words, 8);
	c.must = calloc(c.words, 8);
	ASSERT_NE(NULL, c.bitmap);
	ASSERT_NE(NULL, c.must);
	for (i = 0; i < SP_SIZE / (SP_CHUNK_PAGES * VFIO_MIG_PAGE_4K); i++) {
		set_bit64(c.must, sparse_page(i));
		if (sparse_pinned(i))
			ASSERT_EQ(0, migdev_dma(&self->md, "keep",
					    SP_IOVA + sparse_page(i) * VFIO_MIG_PAGE_4K, 1, 0));
	}
	get_sweep(_metadata, &c);
	EXPECT_EQ(0, vfio_unmap(self->md.container, SP_IOVA, SP_SIZE));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	free(c.bitmap);
	free(c.must);
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
	c.bitmap = calloc(c.words, 8);
	c.must = calloc(c.words, 8);
	ASSERT_NE(NULL, c.bitmap);
	ASSERT_NE(NULL, c.must);
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
	free(c.bitmap);
	free(c.must);
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
		ASSERT_EQ(0, migdev_dma(&self->md, "keep", BI_IOVA + bi_pinned[i] * VFIO_MIG_PAGE_4K,
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
		ASSERT_EQ(0, migdev_dma(md, "rw", CO_IOVA + co_written[i] * VFIO_MIG_PAGE_4K, 8, i));
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
		ASSERT_EQ(0, migdev_dma(&self->md, "keep", CO_IOVA + co_pinned[i] * VFIO_MIG_PAGE_4K,
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
	ASSERT_EQ(0, migdev_dma(md, "rw", IOVA + 30 * VFIO_MIG_PAGE_4K + 100, VFIO_MIG_PAGE_4K, 3));
}

static void fixture_want(uint64_t *want)
{
	memset(want, 0, WORDS * 8);
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
	ASSERT_EQ(0, migdev_dma(&self->md, "keep", IOVA + 50 * VFIO_MIG_PAGE_4K, 1, 0));
	fixture_dirty(_metadata, &self->md);

	fd = no_alloc_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	no_alloc_check(_metadata, fd, "STOP while tracking, a page pinned");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(-EINVAL, vfio_get_bitmap(self->md.container, IOVA, SIZE,
					   VFIO_MIG_PAGE_4K, self->bitmap,
					   sizeof(self->bitmap)));

	fd = no_alloc_arm(_metadata, 0);
	ret = vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	no_alloc_check(_metadata, fd, "START, a page pinned");
	ASSERT_EQ(0, ret);
	/* what was written before START is forgotten, the pin is not */
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 50, 1);
	EXPECT_REPORT();
	fixture_dirty(_metadata, &self->md);
	fixture_want(self->want);
	EXPECT_REPORT();
}

#define UM_IOVA		FAIL_IOVA
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
	struct sweep s = { .name = "UNMAP without a bitmap while tracking" };
	uint64_t unmapped;
	bool injected = true;
	int fd, n, ret;
	uint8_t *mem;

	if (!fail_nth_ready(_metadata))
		return;
	mem = mmap(NULL, UM_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, migdev_dma(&self->md, "keep", IOVA + 50 * VFIO_MIG_PAGE_4K, 1, 0));
	fixture_dirty(_metadata, &self->md);
	for (n = 1; n < 256 && injected; n++) {
		/* both mappings there, pages 2 and 9 pinned */
		if (vfio_map(self->md.container, UM_IOVA, mem, 8 * VFIO_MIG_PAGE_4K) != -EEXIST) {
			ASSERT_EQ(0, vfio_map(self->md.container, UM_IOVA + 8 * VFIO_MIG_PAGE_4K,
					      mem + 8 * VFIO_MIG_PAGE_4K, 8 * VFIO_MIG_PAGE_4K));
		}
		if (migdev_pinned(&self->md) != 3) {
			ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
			ASSERT_EQ(0, migdev_dma(&self->md, "keep", IOVA + 50 * VFIO_MIG_PAGE_4K, 1, 0));
			ASSERT_EQ(0, migdev_dma(&self->md, "keep", UM_IOVA + 2 * VFIO_MIG_PAGE_4K, 1, 0));
			ASSERT_EQ(0, migdev_dma(&self->md, "keep", UM_IOVA + 9 * VFIO_MIG_PAGE_4K, 1, 0));
		}
		ASSERT_EQ(3, migdev_pinned(&self->md));

		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		ret = unmap_size(self->md.container, UM_IOVA, UM_PAGES * VFIO_MIG_PAGE_4K,
				 &unmapped);
		injected = fail_nth_disarm(fd);
		if (injected) {
			s.points++;
			s.absorbed++;
		}
		ASSERT_EQ(0, ret);
		/* whole: nothing is left mapped in the range */
		ASSERT_EQ(UM_PAGES * VFIO_MIG_PAGE_4K, unmapped);
		ASSERT_EQ(0, unmap_size(self->md.container, UM_IOVA,
					UM_PAGES * VFIO_MIG_PAGE_4K, &unmapped));
		ASSERT_EQ(0, unmapped);
		EXPECT_EQ(1, migdev_pinned(&self->md));
		/* the other mapping lost nothing, and got nothing */
		fixture_want(self->want);
		EXPECT_REPORT();
		fixture_dirty(_metadata, &self->md);
	}
	ASSERT_FALSE(injected);
	sweep_print(_metadata, &s);
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
	struct sweep set = { .name = "VFIO_GROUP_SET_CONTAINER while tracking" };
	int fd, n, ret, id, group, dev, c = self->md.container;
	unsigned int i;
	bool injected = true;
	char uuid[64], path[64];

	if (!fail_nth_ready(_metadata))
		return;
	id = vfio_find_mdev_group(MIGDEV_TYPE, 1, uuid, sizeof(uuid));
	if (id < 0)
		SKIP(return, "migdev: needs two " MIGDEV_TYPE " mdevs");
	snprintf(path, sizeof(path), "/dev/vfio/%d", id);
	ASSERT_EQ(0, migdev_dma(&self->md, "keep", IOVA + 50 * VFIO_MIG_PAGE_4K, 1, 0));
	fixture_dirty(_metadata, &self->md);

	group = open(path, O_RDWR);
	ASSERT_GE(group, 0);
	for (n = 1; n < 256 && injected; n++) {
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		ret = ioctl(group, VFIO_GROUP_SET_CONTAINER, &c) ? -errno : 0;
		injected = fail_nth_disarm(fd);
		if (injected)
			set.points++;
		if (ret) {
			ASSERT_EQ(-ENOMEM, ret);
			ASSERT_TRUE(injected);
			ASSERT_FALSE(group_in_container(group));
		} else {
			ASSERT_TRUE(group_in_container(group));
			if (injected)
				set.absorbed++;
		}
		fixture_want(self->want);
		EXPECT_REPORT();
		fixture_dirty(_metadata, &self->md);
		if (!ret && injected)
			ASSERT_EQ(0, ioctl(group, VFIO_GROUP_UNSET_CONTAINER));
	}
	ASSERT_FALSE(injected);
	sweep_print(_metadata, &set);

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
		ASSERT_EQ(0, migdev_dma(&md2, "keep", IOVA + 60 * VFIO_MIG_PAGE_4K, 1, 0));
		ASSERT_EQ(0, migdev_dma(&md2, "rw", IOVA + 70 * VFIO_MIG_PAGE_4K, 8, 1));
		fixture_want(self->want);
		want_pages(self->want, 60, 1);
		want_pages(self->want, 70, 1);
		EXPECT_REPORT();
		fixture_dirty(_metadata, &self->md);
		ASSERT_EQ(0, migdev_dma(&md2, "rw", IOVA + 70 * VFIO_MIG_PAGE_4K, 8, 2));
		close(dev);	/* unpins page 60 */

		fd = no_alloc_arm(_metadata, 0);
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
			no_alloc_check(_metadata, fd,
				       "VFIO_GROUP_UNSET_CONTAINER while tracking");
			ASSERT_EQ(0, ret);
			ASSERT_FALSE(group_in_container(group));
			close(group);
		}
		/* page 60 once (unpinned), 70 once (written): nothing more */
		fixture_want(self->want);
		want_pages(self->want, 60, 1);
		want_pages(self->want, 70, 1);
		EXPECT_REPORT();
		fixture_dirty(_metadata, &self->md);
		/* out of the container: the group opens again, free */
		group = open(path, O_RDWR);
		ASSERT_GE(group, 0);
		EXPECT_FALSE(group_in_container(group));
		close(group);
	}
	/* the container works: the fixture device writes, it is reported */
	fixture_want(self->want);
	EXPECT_REPORT();
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
	uint64_t page, off, len;	/* from IOVA */
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
	int worker = migdev_worker(&self->md), fd, n, ret;
	uint64_t page, must[WORDS];
	unsigned int i;
	bool injected;
	long pinned;

	if (!fail_nth_ready(_metadata))
		return;
	if (worker < 0)
		SKIP(return,
		     "migdev: migdev has no DMA thread (debugfs \"worker\")");
	for (i = 0; i < ARRAY_SIZE(dma_cases); i++) {
		const struct dma_case *d = &dma_cases[i];
		char name[64];
		struct sweep s = { .name = name };
		bool keeps_set = !strcmp(d->cmd, "release") || !strcmp(d->cmd, "kept");

		snprintf(name, sizeof(name), "DMA command \"%s\"", d->cmd);

		for (n = 1, injected = true; n < 256 && injected; n++) {
			/* nothing pinned, nothing written, nothing dirty */
			ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
			memset(self->buf, 0, SIZE);
			ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE,
						     VFIO_MIG_PAGE_4K, self->bitmap,
						     sizeof(self->bitmap)));
			if (keeps_set)
				ASSERT_EQ(0, migdev_dma(&self->md, "keep",
						    IOVA + KEPT_PAGE * VFIO_MIG_PAGE_4K,
						    2 * VFIO_MIG_PAGE_4K, 0));

			fd = fail_nth_arm(worker, n);
			ASSERT_GE(fd, 0);
			ret = migdev_dma(&self->md, d->cmd,
				     IOVA + d->page * VFIO_MIG_PAGE_4K + d->off, d->len, n);
			if (d->allocates) {
				injected = fail_nth_disarm(fd);
			} else {
				no_alloc_check(_metadata, fd, name);
				injected = false;
			}
			if (injected)
				s.points++;
			pinned = migdev_pinned(&self->md);
			if (ret) {
				ASSERT_EQ(-ENOMEM, ret) {
					ksft_print_msg("%s: allocation %d failed\n",
						       d->cmd, n);
				}
				ASSERT_TRUE(injected);
				/* pins "keep" made before the failure may stay */
				EXPECT_TRUE(strcmp(d->cmd, "keep") ?
					    pinned == (keeps_set ? 2 : 0) :
					    pinned >= 0 && pinned <= 2) {
					ksft_print_msg("%s: allocation %d failed, %ld pinned\n",
						       d->cmd, n, pinned);
				}
			} else {
				if (injected)
					s.absorbed++;
				EXPECT_EQ(d->pinned, pinned);
				EXPECT_TRUE(!d->writes ||
					    memory_is(self->buf, d->page * VFIO_MIG_PAGE_4K + d->off,
						      d->len, n)) {
					ksft_print_msg("%s: allocation %d failed\n",
						       d->cmd, n);
				}
			}

			/* dirty: every page changed, every page pinned now or before */
			memset(must, 0, sizeof(must));
			for (page = 0; page < PAGES; page++) {
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
			ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE,
						     VFIO_MIG_PAGE_4K, self->bitmap,
						     sizeof(self->bitmap)));
			EXPECT_TRUE(bits_cover(self->bitmap, must, WORDS)) {
				ksft_print_msg("%s: allocation %d failed%s\n", d->cmd, n,
					       injected ? "" : " (none did)");
			}
		}
		ASSERT_FALSE(injected);
		if (d->allocates)
			sweep_print(_metadata, &s);
	}
	/* the device works on */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
	memset(self->buf, 0, SIZE);
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
				     self->bitmap, sizeof(self->bitmap)));
	ASSERT_EQ(0, migdev_dma(&self->md, "pin", IOVA + 5 * VFIO_MIG_PAGE_4K, 8, 3));
	EXPECT_TRUE(memory_is(self->buf, 5 * VFIO_MIG_PAGE_4K, 8, 3));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 5, 1);
	EXPECT_REPORT();
}

#define CG_TEST		VFIO_MIG_CG_ROOT "/vfio-dirty-test"
#define CG_CHUNK	(128ULL << 20)	/* one tracker chunk: 32768 pages */
#define CG_CHUNKS	256ULL

/*
 * The device writes one page in each chunk of [iova, iova + span), driven
 * by a child process in the root cgroup: only the tracker's allocations
 * (made in migdev's work item) can reach the test's cgroup.
 */
static int dirty_chunks_from_child(struct migdev *md, uint64_t iova,
				   long long limit)
{
	pid_t child = fork();
	char max[32];
	int status;
	uint64_t c;

	if (child < 0)
		return -errno;
	if (!child) {
		if (sysfs_write(VFIO_MIG_CG_ROOT "/cgroup.procs", "0"))
			_exit(2);
		/* the limit only while the device writes */
		snprintf(max, sizeof(max), "%lld", limit);
		if (limit && sysfs_write(CG_TEST "/memory.max", max))
			_exit(3);
		for (c = 0; c < CG_CHUNKS; c++)
			if (migdev_ctl(md, "dma", "rw 0x%llx 8 %llu",
				       (unsigned long long)(iova + c * CG_CHUNK +
							    64 * VFIO_MIG_PAGE_4K),
				       (unsigned long long)c))
				_exit(1);
		if (limit && sysfs_write(CG_TEST "/memory.max", "max"))
			_exit(3);
		_exit(0);
	}
	if (waitpid(child, &status, 0) != child)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -EINTR;
}

/*
 * Tracking memory is charged to the memory cgroup of the mapping's owner,
 * also when the device makes pages dirty from a kernel thread (migdev's
 * DMA runs in a work item).  Dirtying one page in each of 256 chunks
 * allocates 256 chunk bitmaps (1 MiB): the cgroup's usage grows by about
 * that.  Under a limit the tracker reports more (whole chunks), never
 * less, and nothing is OOM-killed.
 */
TEST_F(pin, tracking_memory_charged_to_owner)
{
	uint64_t span = CG_CHUNKS * CG_CHUNK, iova = 1ULL << 40, c;
	uint64_t nbits = span / VFIO_MIG_PAGE_4K, *bitmap;
	long long before, after, oom;
	uint8_t *mem;
	char pid[32];

	if (access(VFIO_MIG_CG_ROOT "/cgroup.controllers", F_OK) &&
	    mount("none", VFIO_MIG_CG_ROOT, "cgroup2", 0, NULL))
		SKIP(return, "memcg: no cgroup2 (CONFIG_CGROUPS)");
	if (sysfs_write(VFIO_MIG_CG_ROOT "/cgroup.subtree_control", "+memory"))
		SKIP(return, "memcg: no memory controller (CONFIG_MEMCG)");
	if (mkdir(CG_TEST, 0755))
		ASSERT_EQ(EEXIST, errno);
	snprintf(pid, sizeof(pid), "%d", getpid());
	ASSERT_EQ(0, sysfs_write(CG_TEST "/cgroup.procs", pid));

	mem = mmap(NULL, span, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	/* one small page per chunk, not a huge page, and not in the child */
	ASSERT_EQ(0, madvise(mem, span, MADV_NOHUGEPAGE));
	ASSERT_EQ(0, madvise(mem, span, MADV_DONTFORK));
	bitmap = calloc(nbits / 64, sizeof(*bitmap));
	ASSERT_NE(NULL, bitmap);
	ASSERT_EQ(0, vfio_map(self->md.container, iova, mem, span));
	/* the user pages the device writes are charged now, not below */
	for (c = 0; c < CG_CHUNKS; c++)
		mem[c * CG_CHUNK + 64 * VFIO_MIG_PAGE_4K] = 0;

	before = cg_read(CG_TEST, "memory.current");
	ASSERT_EQ(0, dirty_chunks_from_child(&self->md, iova, 0));
	after = cg_read(CG_TEST, "memory.current");
	ksft_print_msg("cgroup usage %lld -> %lld bytes after %llu chunks got dirty\n",
		       before, after, CG_CHUNKS);
	EXPECT_LE(before + (long long)(CG_CHUNKS * VFIO_MIG_PAGE_4K / 2), after);

	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, iova, span, VFIO_MIG_PAGE_4K,
				     bitmap, nbits / 8));
	EXPECT_EQ(CG_CHUNKS, vfio_mig_bitmap_weight(bitmap, nbits));

	/* no room for chunk bitmaps: whole chunks, no OOM kill */
	memset(bitmap, 0, nbits / 8);
	ASSERT_EQ(0, dirty_chunks_from_child(&self->md, iova,
					     cg_read(CG_TEST, "memory.current") +
					     128 * 1024));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, iova, span, VFIO_MIG_PAGE_4K,
				     bitmap, nbits / 8));
	for (c = 0; c < CG_CHUNKS; c++) {
		uint64_t bit = (c * CG_CHUNK + 64 * VFIO_MIG_PAGE_4K) / VFIO_MIG_PAGE_4K;

		EXPECT_EQ(1, (bitmap[bit / 64] >> (bit % 64)) & 1) {
			ksft_print_msg("chunk %llu not reported\n",
				       (unsigned long long)c);
			break;
		}
	}
	ksft_print_msg("under the limit: %llu pages reported for %llu written\n",
		       (unsigned long long)vfio_mig_bitmap_weight(bitmap, nbits), CG_CHUNKS);
	EXPECT_LT(CG_CHUNKS, vfio_mig_bitmap_weight(bitmap, nbits));
	oom = cg_key(CG_TEST, "memory.events", "oom_kill");
	EXPECT_EQ(0, oom);

	ASSERT_EQ(0, vfio_unmap(self->md.container, iova, span));
	ASSERT_EQ(0, sysfs_write(VFIO_MIG_CG_ROOT "/cgroup.procs", "0"));
	rmdir(CG_TEST);
	free(bitmap);
	munmap(mem, span);
}

/*
 * A device of migdev-precise (it reports what it writes) and one of
 * migdev-1 (it does not) in one container, over the pin fixture's
 * mapping: pages the precise device pins are dirty only when it wrote
 * them, pages the other one pins are dirty at every report.
 */
FIXTURE(precise) {
	struct migdev md;	/* migdev-precise */
	struct migdev plain;	/* migdev-1 */
	uint8_t *buf;
	uint64_t bitmap[WORDS];
	uint64_t want[WORDS];
};

FIXTURE_SETUP(precise)
{
	int ret = migdev_open_type(&self->md, MIGDEV_PRECISE_TYPE, 2, -1);

	self->plain.fd = -1;
	self->plain.group = -1;
	self->plain.container = -1;
	self->buf = MAP_FAILED;
	if (ret == -ENODEV)
		SKIP(return,
		     "migdev: needs a third " MIGDEV_PRECISE_TYPE " mdev");
	ASSERT_EQ(0, ret);
	ret = migdev_open_type(&self->plain, MIGDEV_TYPE, 2, self->md.container);
	if (ret == -ENODEV)
		SKIP(return, "migdev: needs a third " MIGDEV_TYPE " mdev");
	ASSERT_EQ(0, ret);
	memset(self->want, 0, sizeof(self->want));
	self->buf = map_tracked(_metadata, self->md.container);
}

FIXTURE_TEARDOWN(precise)
{
	migdev_close(&self->plain);
	migdev_close(&self->md);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, SIZE);
}

static int dma(struct migdev *md, const char *cmd, uint64_t page, uint64_t off,
	       uint64_t len, uint32_t seed)
{
	return migdev_dma(md, cmd, IOVA + page * VFIO_MIG_PAGE_4K + off, len,
			  seed);
}

/*
 * The precise device keeps 8 pages pinned: none is reported until the
 * device writes one.  Its write into pages 22-23 waits in the driver's
 * log; GET_BITMAP asks the driver first, so the very next report has
 * exactly those two pages, and the one after it nothing.
 */
TEST_F(precise, kept_write_reported_once)
{
	ASSERT_EQ(0, dma(&self->md, "keep", 20, 0, 8 * VFIO_MIG_PAGE_4K, 0));
	EXPECT_EQ(8, migdev_pinned(&self->md));
	EXPECT_REPORT();
	EXPECT_REPORT();

	ASSERT_EQ(0, dma(&self->md, "kept", 22, 100, VFIO_MIG_PAGE_4K, 5));
	EXPECT_TRUE(memory_is(self->buf, 22 * VFIO_MIG_PAGE_4K + 100, VFIO_MIG_PAGE_4K, 5));
	EXPECT_EQ(1, migdev_read(&self->md, "logged"));
	want_pages(self->want, 22, 2);
	EXPECT_REPORT();
	EXPECT_EQ(0, migdev_read(&self->md, "logged"));
	EXPECT_REPORT();
	EXPECT_EQ(8, migdev_pinned(&self->md));

	/* a write that reaches past the working set: refused, nothing written */
	EXPECT_EQ(-EFAULT, dma(&self->md, "kept", 27, 8, VFIO_MIG_PAGE_4K, 6));
	EXPECT_EQ(0, self->buf[27 * VFIO_MIG_PAGE_4K + 8]);
	EXPECT_REPORT();

	/* released: nothing more to report, the writes were */
	ASSERT_EQ(0, dma(&self->md, "release", 0, 0, 0, 0));
	EXPECT_REPORT();
}

/*
 * Seventeen writes: the log holds sixteen, so the driver reports them from
 * its work item, without being asked, and the last one when asked.
 */
TEST_F(precise, full_log_reports_by_itself)
{
	int i;

	ASSERT_EQ(0, dma(&self->md, "keep", 100, 0, 17 * VFIO_MIG_PAGE_4K, 0));
	for (i = 0; i < 17; i++)
		ASSERT_EQ(0, dma(&self->md, "kept", 100 + i, 8 * i, 8, i));
	EXPECT_EQ(1, migdev_read(&self->md, "logged"));
	want_pages(self->want, 100, 17);
	EXPECT_REPORT();
	EXPECT_REPORT();
}

/* Pin, write, unpin and vfio_dma_rw(): reported once, as on migdev-1. */
TEST_F(precise, transient_writes_reported_once)
{
	ASSERT_EQ(0, dma(&self->md, "pin", 10, 8, 4100, 34));
	EXPECT_TRUE(memory_is(self->buf, 10 * VFIO_MIG_PAGE_4K + 8, 4100, 34));
	ASSERT_EQ(0, dma(&self->md, "rw", 30, VFIO_MIG_PAGE_4K - 3, 6, 17));
	EXPECT_TRUE(memory_is(self->buf, 31 * VFIO_MIG_PAGE_4K - 3, 6, 17));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	want_pages(self->want, 10, 2);
	want_pages(self->want, 30, 2);
	EXPECT_REPORT();
	EXPECT_REPORT();
}

/*
 * Both rules in one container, pin by pin: the plain device's pages are
 * dirty at every report, the precise device's only when written.  A page
 * both keep pinned stays dirty until the plain device lets it go, is
 * reported once more for that unpin, and is clean after.
 */
TEST_F(precise, mixed_container_keeps_both_rules)
{
	ASSERT_EQ(0, dma(&self->md, "keep", 20, 0, 8 * VFIO_MIG_PAGE_4K, 0));
	ASSERT_EQ(0, dma(&self->plain, "keep", 40, 0, 2 * VFIO_MIG_PAGE_4K, 0));
	ASSERT_EQ(0, dma(&self->md, "keep", 60, 0, VFIO_MIG_PAGE_4K, 0));
	ASSERT_EQ(0, dma(&self->plain, "keep", 60, 0, VFIO_MIG_PAGE_4K, 0));
	want_pages(self->want, 40, 2);
	want_pages(self->want, 60, 1);
	EXPECT_REPORT();
	want_pages(self->want, 40, 2);
	want_pages(self->want, 60, 1);
	EXPECT_REPORT();

	ASSERT_EQ(0, dma(&self->md, "kept", 25, 0, 16, 9));
	ASSERT_EQ(0, dma(&self->plain, "kept", 41, 0, 16, 10));
	EXPECT_TRUE(memory_is(self->buf, 25 * VFIO_MIG_PAGE_4K, 16, 9));
	EXPECT_TRUE(memory_is(self->buf, 41 * VFIO_MIG_PAGE_4K, 16, 10));
	want_pages(self->want, 25, 1);
	want_pages(self->want, 40, 2);
	want_pages(self->want, 60, 1);
	EXPECT_REPORT();

	ASSERT_EQ(0, dma(&self->plain, "release", 0, 0, 0, 0));
	want_pages(self->want, 40, 2);
	want_pages(self->want, 60, 1);
	EXPECT_REPORT();
	EXPECT_REPORT();
	EXPECT_EQ(9, migdev_pinned(&self->md));
	ASSERT_EQ(0, dma(&self->md, "kept", 60, 4, 4, 11));
	want_pages(self->want, 60, 1);
	EXPECT_REPORT();
}

/*
 * The guest's path: a BAR0 command writes into the working set, and an
 * UNMAP_DMA of the mapping with a dirty bitmap carries what it wrote and
 * nothing else (the driver reports its log when asked and before it
 * unpins).
 */
TEST_F(precise, unmap_bitmap_carries_logged_write)
{
	uint32_t count;

	ASSERT_EQ(0, dma(&self->md, "keep", 192, 0, 4 * VFIO_MIG_PAGE_4K, 0));
	count = bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT);
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_KEPT,
			      IOVA + 193 * VFIO_MIG_PAGE_4K + 4000, 200, 21));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_TRUE(memory_is(self->buf, 193 * VFIO_MIG_PAGE_4K + 4000, 200, 21));
	EXPECT_EQ(1, migdev_read(&self->md, "logged"));

	memset(self->bitmap, 0, sizeof(self->bitmap));
	ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
				       self->bitmap, sizeof(self->bitmap), NULL));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	want_pages(self->want, 193, 2);
	EXPECT_EQ(0, memcmp(self->want, self->bitmap, sizeof(self->want)));
}

/* Nothing written, pinned or dirty in the mapping of @buf at IOVA. */
static void precise_clean(struct __test_metadata *_metadata, struct migdev *md,
			  uint8_t *buf)
{
	uint64_t bitmap[WORDS];

	ASSERT_EQ(0, migdev_ctl(md, "dma", "release 0 0 0"));
	memset(buf, 0, SIZE);
	ASSERT_EQ(0, vfio_get_bitmap(md->container, IOVA, SIZE, VFIO_MIG_PAGE_4K, bitmap,
				     sizeof(bitmap)));
}

/* The pages of the fixture mapping whose memory is not 0. */
static void changed_pages(const uint8_t *buf, uint64_t *must)
{
	uint64_t page, b;

	memset(must, 0, WORDS * 8);
	for (page = 0; page < PAGES; page++) {
		for (b = 0; b < VFIO_MIG_PAGE_4K; b++) {
			if (buf[page * VFIO_MIG_PAGE_4K + b]) {
				set_bit64(must, page);
				break;
			}
		}
	}
}

#define PR_SET		100	/* the working set of the log sweeps */
#define PR_LOGGED	16	/* writes migdev-precise's log holds */

/*
 * The writes of migdev-precise under allocation failures: the n-th slab
 * allocation fails, for every n in turn, in
 *  - its DMA thread, for a pin-write-unpin command (vfio_pin_pages(), and
 *    vfio_mark_dirty() of each page before it is unpinned), for a write
 *    into the working set that finds the log full (vfio_mark_dirty() of
 *    the writes it holds) and for a release (the log read out, then
 *    unpins, which mark nothing);
 *  - the caller of GET_BITMAP, which asks the driver first (sync(): the
 *    log read out with vfio_mark_dirty()), and of UNMAP_DMA with a bitmap
 *    (sync(), then dma_unmap(): the driver reads its log out and unpins).
 * vfio_mark_dirty() does not fail for want of memory: the tracker records
 * more (the whole chunk, here the whole mapping).  So only a pin can fail
 * with -ENOMEM, after the command wrote and reported the pages before it,
 * and the calls that report succeed.  The next report (or the call's own)
 * has every page whose memory changed; after an absorbed failure it has
 * more, which each sweep must show.  With memory back, once a report has
 * cleared what fell back to whole chunks, reports are exact again: pages
 * the device keeps pinned are not in them.
 */
TEST_F_TIMEOUT(precise, allocation_failures_report_writes, 300)
{
	struct sweep pin = { .name = "migdev-precise pin-write-unpin" };
	struct sweep full = { .name = "migdev-precise write into a full log" };
	struct sweep rel = { .name = "migdev-precise release of a logged write" };
	struct sweep get = { .name = "GET_BITMAP, a logged write (sync)" };
	struct sweep unmap = { .name = "UNMAP with a bitmap, a logged write" };
	int worker = migdev_worker(&self->md), fd, n, ret, i;
	uint64_t must[WORDS], bm[1], unmapped;
	bool injected;
	void *mem;

	if (!fail_nth_ready(_metadata))
		return;
	if (worker < 0)
		SKIP(return,
		     "migdev: migdev has no DMA thread (debugfs \"worker\")");

	for (n = 1, injected = true; n < 256 && injected; n++) {
		precise_clean(_metadata, &self->md, self->buf);
		fd = fail_nth_arm(worker, n);
		ASSERT_GE(fd, 0);
		ret = dma(&self->md, "pin", 10, 8, 4100, n);
		injected = fail_nth_disarm(fd);
		pin.points += injected;
		if (ret) {
			/* a page it could not pin: those before it are written */
			ASSERT_EQ(-ENOMEM, ret);
			ASSERT_TRUE(injected);
		} else {
			EXPECT_TRUE(memory_is(self->buf, 10 * VFIO_MIG_PAGE_4K + 8, 4100, n));
			pin.absorbed += injected;
		}
		EXPECT_EQ(0, migdev_pinned(&self->md));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		sweep_report(_metadata, &pin, n, injected, self->bitmap, must, WORDS);
	}
	ASSERT_FALSE(injected);
	EXPECT_GT(pin.more, 0);
	sweep_print(_metadata, &pin);

	/*
	 * The log holds PR_LOGGED writes into PR_LOGGED + 4 pinned pages; the
	 * next write reads it out first.
	 */
	for (n = 1, injected = true; n < 256 && injected; n++) {
		precise_clean(_metadata, &self->md, self->buf);
		ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0,
				 (PR_LOGGED + 4) * VFIO_MIG_PAGE_4K, 0));
		for (i = 0; i < PR_LOGGED; i++)
			ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + i, 8 * i, 8,
					 i + 1));
		ASSERT_EQ(PR_LOGGED, migdev_read(&self->md, "logged"));
		fd = fail_nth_arm(worker, n);
		ASSERT_GE(fd, 0);
		ret = dma(&self->md, "kept", PR_SET + PR_LOGGED, 100, 8, n);
		injected = fail_nth_disarm(fd);
		full.points += injected;
		full.absorbed += injected;
		ASSERT_EQ(0, ret);
		EXPECT_EQ(1, migdev_read(&self->md, "logged"));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		sweep_report(_metadata, &full, n, injected, self->bitmap, must, WORDS);
	}
	ASSERT_FALSE(injected);
	EXPECT_GT(full.more, 0);
	sweep_print(_metadata, &full);

	/* a logged write into two pinned pages, read out by the release */
	for (n = 1, injected = true; n < 256 && injected; n++) {
		precise_clean(_metadata, &self->md, self->buf);
		ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0, 2 * VFIO_MIG_PAGE_4K, 0));
		ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + 1, 4, 8, 3));
		fd = fail_nth_arm(worker, n);
		ASSERT_GE(fd, 0);
		ret = dma(&self->md, "release", 0, 0, 0, 0);
		injected = fail_nth_disarm(fd);
		rel.points += injected;
		rel.absorbed += injected;
		ASSERT_EQ(0, ret);
		EXPECT_EQ(0, migdev_pinned(&self->md));
		EXPECT_EQ(0, migdev_read(&self->md, "logged"));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		sweep_report(_metadata, &rel, n, injected, self->bitmap, must, WORDS);
	}
	ASSERT_FALSE(injected);
	EXPECT_GT(rel.more, 0);
	sweep_print(_metadata, &rel);

	/* the same, read out by the driver's sync() for a GET_BITMAP */
	for (n = 1, injected = true; n < 256 && injected; n++) {
		precise_clean(_metadata, &self->md, self->buf);
		ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0, 2 * VFIO_MIG_PAGE_4K, 0));
		ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + 1, 4, 8, 3));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		ret = vfio_get_bitmap(self->md.container, IOVA, SIZE, VFIO_MIG_PAGE_4K,
				      self->bitmap, sizeof(self->bitmap));
		injected = fail_nth_disarm(fd);
		get.points += injected;
		get.absorbed += injected;
		ASSERT_EQ(0, ret);
		EXPECT_EQ(0, migdev_read(&self->md, "logged"));
		sweep_report(_metadata, &get, n, injected, self->bitmap, must, WORDS);
	}
	ASSERT_FALSE(injected);
	EXPECT_GT(get.more, 0);
	sweep_print(_metadata, &get);

	/*
	 * A second mapping: the device keeps its pages 4 and 5 pinned and
	 * has written page 4; the unmap reads the log out (sync) and the
	 * driver unpins both (dma_unmap).  Page 5 is not dirty.
	 */
	precise_clean(_metadata, &self->md, self->buf);
	mem = mmap(NULL, FAIL_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	for (n = 1, injected = true; n < 256 && injected; n++) {
		ASSERT_EQ(0, vfio_map(self->md.container, FAIL_IOVA, mem, FAIL_SIZE));
		ASSERT_EQ(0, migdev_dma(&self->md, "keep", FAIL_IOVA + 4 * VFIO_MIG_PAGE_4K,
				    2 * VFIO_MIG_PAGE_4K, 0));
		ASSERT_EQ(0, migdev_dma(&self->md, "kept", FAIL_IOVA + 4 * VFIO_MIG_PAGE_4K + 64,
				    8, n));
		bm[0] = 0;
		must[0] = 0x10;
		fd = fail_nth_arm(0, n);
		ASSERT_GE(fd, 0);
		ret = vfio_unmap_bitmap(self->md.container, FAIL_IOVA, FAIL_SIZE,
					VFIO_MIG_PAGE_4K, bm, sizeof(bm), &unmapped);
		injected = fail_nth_disarm(fd);
		unmap.points += injected;
		unmap.absorbed += injected;
		ASSERT_EQ(0, ret);
		ASSERT_EQ(FAIL_SIZE, unmapped);
		EXPECT_EQ(0, migdev_pinned(&self->md));
		sweep_report(_metadata, &unmap, n, injected, bm, must, 1);
	}
	ASSERT_FALSE(injected);
	EXPECT_EQ(0x10ULL, bm[0]);
	EXPECT_GT(unmap.more, 0);
	sweep_print(_metadata, &unmap);
	munmap(mem, FAIL_SIZE);

	/* memory back, one report later: exact, the pinned pages clean */
	precise_clean(_metadata, &self->md, self->buf);
	ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0, 8 * VFIO_MIG_PAGE_4K, 0));
	EXPECT_REPORT();
	ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + 2, 0, 8, 1));
	ASSERT_EQ(0, dma(&self->md, "pin", 10, 8, 8, 2));
	want_pages(self->want, PR_SET + 2, 1);
	want_pages(self->want, 10, 1);
	EXPECT_REPORT();
	EXPECT_REPORT();
}

/*
 * Mappings at the top of the IOVA space: a range that ends at 2^64 must
 * be found by GET_BITMAP, UNMAP_DMA and MAP_DMA, where iova + size wraps
 * to 0.  The mapping is the last GiB; memory behind it is reserved, not
 * committed.
 */
#define TOP_SIZE	0x40000000ULL	/* 1 GiB */
#define TOP_IOVA	(0ULL - TOP_SIZE)
#define TOP_PAGES	(TOP_SIZE / VFIO_MIG_PAGE_4K)

FIXTURE(top) {
	struct migdev md;
	uint8_t *buf;
};

static void *reserve(uint64_t size)
{
	return mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

FIXTURE_SETUP(top)
{
	int ret = migdev_open(&self->md, 2);

	self->buf = MAP_FAILED;
	if (ret == -ENODEV)
		SKIP(return, "migdev: needs a third " MIGDEV_TYPE " mdev");
	ASSERT_EQ(0, ret);
	self->buf = reserve(TOP_SIZE);
	ASSERT_NE(MAP_FAILED, self->buf);
	ASSERT_EQ(0, vfio_map(self->md.container, TOP_IOVA, self->buf, TOP_SIZE));
	ASSERT_EQ(0, vfio_dirty(self->md.container,
				VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
}

FIXTURE_TEARDOWN(top)
{
	migdev_close(&self->md);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, TOP_SIZE);
}

/* GET_BITMAP over ranges that end at 2^64, at 1 GiB and at 4 KiB. */
TEST_F(top, get_bitmap_at_top)
{
	uint64_t nbits = 1ULL << 33, *bitmap, *small;

	/* the report's trigger: [2^63, 2^64) at 1 GiB, a 1 GiB bitmap */
	bitmap = reserve(nbits / 8);
	ASSERT_NE(MAP_FAILED, bitmap);
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 16 5",
				(unsigned long long)(0ULL - VFIO_MIG_PAGE_4K + 8)));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, 1ULL << 63, 1ULL << 63,
				     1ULL << 30, bitmap, nbits / 8));
	EXPECT_EQ(1ULL << 63, bitmap[nbits / 64 - 1]);
	munmap(bitmap, nbits / 8);

	/* reported once, then the last 4 KiB page again, bit for bit */
	small = calloc(TOP_PAGES / 64, sizeof(*small));
	ASSERT_NE(NULL, small);
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, TOP_IOVA, TOP_SIZE,
				     VFIO_MIG_PAGE_4K, small, TOP_PAGES / 8));
	EXPECT_EQ(0, vfio_mig_bitmap_weight(small, TOP_PAGES));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 16 6",
				(unsigned long long)(0ULL - VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, TOP_IOVA, TOP_SIZE,
				     VFIO_MIG_PAGE_4K, small, TOP_PAGES / 8));
	EXPECT_EQ(1, vfio_mig_bitmap_weight(small, TOP_PAGES));
	EXPECT_EQ(1ULL << 63, small[TOP_PAGES / 64 - 1]);
	free(small);
}

/* UNMAP_DMA of [TOP_IOVA, 2^64) with its bitmap, then without. */
TEST_F(top, unmap_at_top)
{
	uint64_t *bitmap = calloc(TOP_PAGES / 64, sizeof(*bitmap)), unmapped = 0;
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = TOP_IOVA,
		.size = TOP_SIZE,
	};

	ASSERT_NE(NULL, bitmap);
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 8 7",
				(unsigned long long)TOP_IOVA));
	ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, TOP_IOVA, TOP_SIZE,
				       VFIO_MIG_PAGE_4K, bitmap, TOP_PAGES / 8,
				       &unmapped));
	EXPECT_EQ(TOP_SIZE, unmapped);
	EXPECT_EQ(1, vfio_mig_bitmap_weight(bitmap, TOP_PAGES));
	EXPECT_EQ(1ULL, bitmap[0]);
	/* gone: the same unmap finds nothing, a new map fits */
	ASSERT_EQ(0, ioctl(self->md.container, VFIO_IOMMU_UNMAP_DMA, &unmap));
	EXPECT_EQ(0, unmap.size);
	ASSERT_EQ(0, vfio_map(self->md.container, TOP_IOVA, self->buf, TOP_SIZE));
	unmap.size = TOP_SIZE;
	ASSERT_EQ(0, ioctl(self->md.container, VFIO_IOMMU_UNMAP_DMA, &unmap));
	EXPECT_EQ(TOP_SIZE, unmap.size);
	free(bitmap);
}

/*
 * A device access that would run past 2^64 is refused whole: it must not
 * wrap to the mapping at IOVA 0.
 */
TEST_F(top, dma_does_not_wrap)
{
	uint8_t *low = reserve(VFIO_MIG_PAGE_4K);
	int i;

	ASSERT_NE(MAP_FAILED, low);
	memset(low, 0, VFIO_MIG_PAGE_4K);
	ASSERT_EQ(0, vfio_map(self->md.container, 0, low, VFIO_MIG_PAGE_4K));
	EXPECT_EQ(-EINVAL, migdev_ctl(&self->md, "dma", "rw 0x%llx 16 9",
				      (unsigned long long)(0ULL - 8)));
	EXPECT_EQ(-EINVAL, migdev_ctl(&self->md, "dma", "pin 0x%llx 16 9",
				      (unsigned long long)(0ULL - 8)));
	for (i = 0; i < 16; i++) {
		EXPECT_EQ(0, low[i]);
		EXPECT_EQ(0, self->buf[TOP_SIZE - 8 + (i % 8)]);
	}
	ASSERT_EQ(0, vfio_unmap(self->md.container, 0, VFIO_MIG_PAGE_4K));
	munmap(low, VFIO_MIG_PAGE_4K);
}

/* MAP_DMA of a range ending at 2^64 that overlaps the mapping: -EEXIST. */
TEST_F(top, map_overlap_at_top)
{
	uint8_t *more = reserve(2 * TOP_SIZE);

	ASSERT_NE(MAP_FAILED, more);
	EXPECT_EQ(-EEXIST, vfio_map(self->md.container, TOP_IOVA - TOP_SIZE,
				    more, 2 * TOP_SIZE));
	EXPECT_EQ(-EEXIST, vfio_map(self->md.container, 0ULL - VFIO_MIG_PAGE_4K,
				    more, VFIO_MIG_PAGE_4K));
	/* below it, it fits */
	EXPECT_EQ(0, vfio_map(self->md.container, TOP_IOVA - TOP_SIZE, more,
			      TOP_SIZE));
	munmap(more, 2 * TOP_SIZE);
}

TEST_HARNESS_MAIN
