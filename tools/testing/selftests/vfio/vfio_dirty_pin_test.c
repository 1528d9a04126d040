// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pinned-page dirty scope, end to end through the migdev sample driver,
 * whose DMA engine writes guest memory with vfio_pin_pages() + kmap or
 * with vfio_dma_rw(), or keeps pages pinned.  Every report is compared bit
 * for bit, and the written memory byte for byte.
 */
#include <pthread.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vfio_dirty_pin.h"

/* An mdev that has not written anything: nothing dirty. */
TEST_F(pin, clean)
{
	memset(self->want, 0, sizeof(self->want));
	EXPECT_PIN_REPORT();
}

/* vfio_dma_rw() straddling a page boundary dirties both pages, once. */
TEST_F(pin, dma_rw_straddling_write)
{
	uint64_t off = 5 * VFIO_MIG_PAGE_4K - 3;

	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 6 17",
				(unsigned long long)(PIN_IOVA + off)));
	EXPECT_TRUE(memory_is(self->buf, off, 6, 17));
	want_pages(self->want, 4, 2);
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();	/* reported once */

	/* a longer one: 3 pages and a bit, unaligned at both ends */
	off = 40 * VFIO_MIG_PAGE_4K + 100;
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx %llu 7",
				(unsigned long long)(PIN_IOVA + off),
				(unsigned long long)(3 * VFIO_MIG_PAGE_4K)));
	EXPECT_TRUE(memory_is(self->buf, off, 3 * VFIO_MIG_PAGE_4K, 7));
	want_pages(self->want, 40, 4);
	EXPECT_PIN_REPORT();
}

/*
 * debugfs "stride": write k lands @stride bytes after write k - 1, holds
 * bytes 8k to 8k + 7 of the transfer and dirties its page.  A command the
 * device refuses writes nothing; one that runs off the mapping fails with
 * the first write that failed, and the writes before it stay.
 */
TEST_F(pin, stride_writes)
{
	const uint64_t stride = 3 * VFIO_MIG_PAGE_4K + 40, n = 20;
	uint64_t k, j, off;

	/* no write, writes that overlap, too many, a span that wraps */
	EXPECT_EQ(-EINVAL, migdev_stride(&self->md, PIN_IOVA, 0, 8, 1));
	EXPECT_EQ(-EINVAL, migdev_stride(&self->md, PIN_IOVA, 2, 7, 1));
	EXPECT_EQ(-EINVAL, migdev_stride(&self->md, PIN_IOVA, MIGDEV_STRIDE_MAX + 1,
					 8, 1));
	EXPECT_EQ(-EINVAL, migdev_stride(&self->md, PIN_IOVA, 3, 1ULL << 63, 1));
	EXPECT_EQ(-EINVAL, migdev_stride(&self->md, PIN_IOVA, 2, -PIN_IOVA - 4, 1));
	for (off = 0; off < PIN_SIZE; off++)
		ASSERT_EQ(0, self->buf[off]);
	memset(self->want, 0, sizeof(self->want));
	EXPECT_PIN_REPORT();

	ASSERT_EQ(0, migdev_stride(&self->md, PIN_IOVA + 8, n, stride, 5));
	for (k = 0; k < n; k++) {
		off = 8 + k * stride;
		for (j = 0; j < MIGDEV_STRIDE_BYTES; j++)
			ASSERT_EQ(migdev_pattern(k * MIGDEV_STRIDE_BYTES + j, 5),
				  self->buf[off + j]);
		ASSERT_EQ(0, self->buf[off - 1]);
		ASSERT_EQ(0, self->buf[off + MIGDEV_STRIDE_BYTES]);
		want_pages(self->want, off / VFIO_MIG_PAGE_4K, 1);
	}
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();	/* reported once */

	/* the last two pages of the mapping, then past its end */
	off = PIN_SIZE - 2 * VFIO_MIG_PAGE_4K;
	EXPECT_EQ(-EINVAL, migdev_stride(&self->md, PIN_IOVA + off, 4,
					 VFIO_MIG_PAGE_4K, 9));
	for (k = 0; k < 2; k++)
		for (j = 0; j < MIGDEV_STRIDE_BYTES; j++)
			ASSERT_EQ(migdev_pattern(k * MIGDEV_STRIDE_BYTES + j, 9),
				  self->buf[off + k * VFIO_MIG_PAGE_4K + j]);
	want_pages(self->want, PIN_PAGES - 2, 2);
	EXPECT_PIN_REPORT();
}

/* Pin, write, unpin: the page is reported once (unpinned since the last). */
TEST_F(pin, pin_write_unpin)
{
	uint64_t off = 10 * VFIO_MIG_PAGE_4K + 8;

	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "pin 0x%llx 4100 34",
				(unsigned long long)(PIN_IOVA + off)));
	EXPECT_TRUE(memory_is(self->buf, off, 4100, 34));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	want_pages(self->want, 10, 2);
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();
}

/* A pinned working set is dirty in every report until it is unpinned. */
TEST_F(pin, pinned_stays_dirty_until_unpinned)
{
	memset(self->want, 0, sizeof(self->want));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx %llu 0",
				(unsigned long long)(PIN_IOVA + 20 * VFIO_MIG_PAGE_4K),
				(unsigned long long)(2 * VFIO_MIG_PAGE_4K)));
	EXPECT_EQ(2, migdev_pinned(&self->md));
	want_pages(self->want, 20, 2);
	EXPECT_PIN_REPORT();
	want_pages(self->want, 20, 2);
	EXPECT_PIN_REPORT();
	/* unpinned since the last report: once more, then clean */
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "release 0 0 0"));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	want_pages(self->want, 20, 2);
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();
}

/* Pages pinned before START are dirty from START on. */
TEST_F(pin, pinned_before_start)
{
	ASSERT_EQ(0, vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx 1 0",
				(unsigned long long)(PIN_IOVA + 100 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 1 1",
				(unsigned long long)(PIN_IOVA + 7 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, vfio_dirty(self->md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 100, 1);	/* not page 7: written before START */
	EXPECT_PIN_REPORT();
}

/* A report of part of the mapping resets only that part. */
TEST_F(pin, partial_report_resets_only_its_part)
{
	uint64_t bm = 0;

	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx %llu 3",
				(unsigned long long)PIN_IOVA,
				(unsigned long long)(PIN_PAGES * VFIO_MIG_PAGE_4K)));
	/* pages 64..127 only */
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA + 64 * VFIO_MIG_PAGE_4K,
				     64 * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, &bm, 8));
	EXPECT_EQ(~0ULL, bm);
	memset(self->want, 0, sizeof(self->want));
	want_pages(self->want, 0, 64);
	want_pages(self->want, 128, 128);
	EXPECT_PIN_REPORT();
}

/*
 * Unmapping pinned pages: the driver is told to unpin them, and the
 * unmap's bitmap carries them.
 */
TEST_F(pin, unmap_pinned_with_bitmap)
{
	uint64_t bitmap[PIN_WORDS] = { 0 }, unmapped = 0;

	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx %llu 0",
				(unsigned long long)(PIN_IOVA + 3 * VFIO_MIG_PAGE_4K),
				(unsigned long long)(3 * VFIO_MIG_PAGE_4K)));
	ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, PIN_IOVA, PIN_SIZE, VFIO_MIG_PAGE_4K,
				       bitmap, sizeof(bitmap), &unmapped));
	EXPECT_EQ(PIN_SIZE, unmapped);
	EXPECT_EQ(0x38ULL, bitmap[0]);
	EXPECT_EQ(0, migdev_pinned(&self->md));
	/* a DMA to the unmapped range fails */
	EXPECT_EQ(-EINVAL, migdev_ctl(&self->md, "dma", "rw 0x%llx 4 0",
				      (unsigned long long)PIN_IOVA));
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
				     (unsigned long long)PIN_IOVA));
	memset(self->want, 0, sizeof(self->want));
	EXPECT_PIN_REPORT();
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
 * has fewer than PIN_PAGES pages pinned: the unmap is notifying it, with
 * iommu->lock dropped (at most 2 s).
 */
static void *stop_later(void *arg)
{
	struct stopper *st = arg;
	double end = mono_s() + 2;

	if (st->delay_us)
		usleep(st->delay_us);
	else
		while (migdev_pinned(st->md) == PIN_PAGES && mono_s() < end)
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
					(unsigned long long)PIN_IOVA,
					(unsigned long long)PIN_SIZE));
		ASSERT_EQ(PIN_PAGES, migdev_pinned(&self->md));
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, pthread_create(&t, NULL, stop_later, &st));
		ret = vfio_unmap_bitmap(self->md.container, PIN_IOVA, PIN_SIZE, VFIO_MIG_PAGE_4K,
					self->bitmap, sizeof(self->bitmap),
					&unmapped);
		ASSERT_EQ(0, pthread_join(t, &stop_ret));
		ASSERT_EQ(0, (long)stop_ret);
		pinned = migdev_pinned(&self->md);
		if (ret == -EINVAL) {
			/* nothing unmapped, no bit written */
			EXPECT_EQ(-EEXIST, vfio_map(self->md.container, PIN_IOVA,
						    self->buf, PIN_SIZE));
			EXPECT_EQ(0, vfio_mig_bitmap_weight(self->bitmap, PIN_PAGES));
			if (pinned == PIN_PAGES) {
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
		EXPECT_EQ(PIN_SIZE, unmapped);
		EXPECT_EQ(0, pinned);
		EXPECT_EQ(PIN_PAGES, vfio_mig_bitmap_weight(self->bitmap, PIN_PAGES)) {
			ksft_print_msg("round %d: %llu of %llu pinned pages reported\n",
				       i, (unsigned long long)
				       vfio_mig_bitmap_weight(self->bitmap, PIN_PAGES),
				       (unsigned long long)PIN_PAGES);
			break;
		}
		reported++;
		ASSERT_EQ(0, vfio_map(self->md.container, PIN_IOVA, self->buf, PIN_SIZE));
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
		MIGDEV_V1_SAVING, MIGDEV_V1_STOP, MIGDEV_V1_RESUMING,
		MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING,
	};
	uint64_t junk = ~0ULL, size = 8;
	uint32_t count, status;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		ASSERT_EQ(0, ioctl(self->md.fd, VFIO_DEVICE_RESET));
		ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA, 0, 0));
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
					     (unsigned long long)PIN_IOVA));
		EXPECT_EQ(-EBUSY, migdev_ctl(&self->md, "dma", "pin 0x%llx 4 0",
					     (unsigned long long)PIN_IOVA));
		EXPECT_EQ(-EBUSY, migdev_ctl(&self->md, "dma", "keep 0x%llx 4 0",
					     (unsigned long long)PIN_IOVA));
		EXPECT_EQ(-EBUSY, migdev_stride(&self->md, PIN_IOVA, 2, 4096, 0));
		EXPECT_EQ(0, migdev_pinned(&self->md));
		EXPECT_EQ(-EBUSY, bar0_write(&self->md, MIGDEV_REG_DMA_CMD, MIGDEV_CMD_WRITE_RW,
					     4));
		EXPECT_EQ(-EBUSY, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA + 64, 4, 0));
		EXPECT_EQ(-EBUSY, bar0_write(&self->md, MIGDEV_REG_SCRATCH, 1, 4));
		usleep(100000);
		EXPECT_EQ(status, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS)) {
			ksft_print_msg("state %u\n", states[i]);
		}
		EXPECT_EQ(count, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
		EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_SCRATCH));
		EXPECT_EQ((uint32_t)PIN_IOVA, bar0_read32(&self->md, MIGDEV_REG_DMA_ADDR));
		EXPECT_EQ(states[i], mig_state(&self->md));
	}
	ASSERT_EQ(0, ioctl(self->md.fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(0, self->buf[0]);
	memset(self->want, 0, sizeof(self->want));
	EXPECT_PIN_REPORT();
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
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA + 0x3001, 5000, 77));
	ASSERT_TRUE(bar0_poll(&self->md, count, status));
	EXPECT_EQ(count + 1, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_TRUE(memory_is(self->buf, 0x3001, 5000, 77));

	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_PIN, PIN_IOVA + 0x20000, 8192, 5));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(count + 1, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_TRUE(memory_is(self->buf, 0x20000, 8192, 5));
	EXPECT_EQ(0, migdev_pinned(&self->md));

	/* a working set through BAR0, then released */
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_PIN, PIN_IOVA + 0x40000, 4096, 0));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(1, migdev_pinned(&self->md));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_UNPIN, 0, 0, 0));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	count++;

	/* failures: zero length, too long, unknown command, unmapped IOVA */
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA, 0, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_EQ(count, bar0_read32(&self->md, MIGDEV_REG_DMA_COUNT));
	ASSERT_EQ(0, bar0_write(&self->md, MIGDEV_REG_DMA_STATUS, 0, 4));	/* ro */
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));

	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, (uint32_t)-EINVAL));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA, (4 << 20) + 1, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));

	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, (uint32_t)-EINVAL));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, 99, PIN_IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ((uint32_t)-EINVAL, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));

	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_RW, PIN_IOVA, 4, 1));
	ASSERT_TRUE(bar0_poll(&self->md, count, (uint32_t)-EINVAL));
	count++;
	ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_PIN, PIN_IOVA + PIN_SIZE, 4, 1));
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
			ASSERT_EQ(0, bar0_dma(&self->md, MIGDEV_CMD_WRITE_PIN, PIN_IOVA, 65536,
					      seed));
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

#define CG_TEST		VFIO_MIG_CG_ROOT "/vfio-dirty-test"
#define CG_CHUNK	(128ULL << 20)	/* one tracker chunk: 32768 pages */
#define CG_CHUNKS	256ULL
/* pages the device writes in each chunk: more than a list holds (126) */
#define CG_PAGES	127ULL
#define CG_FIRST	64ULL	/* the first of them */

/*
 * The device writes CG_PAGES pages in each chunk of [iova, iova + span), driven
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
			if (migdev_ctl(md, "dma", "rw 0x%llx 0x%llx %llu",
				       (unsigned long long)(iova + c * CG_CHUNK +
							    CG_FIRST * VFIO_MIG_PAGE_4K),
				       CG_PAGES * VFIO_MIG_PAGE_4K,
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
 * DMA runs in a work item).  Dirtying 127 pages (more than a list of
 * offsets holds) in each of 256 chunks allocates 256 chunk bitmaps (1 MiB):
 * the cgroup's usage grows by about that.  Under a limit the tracker
 * reports more (whole chunks), never less, and nothing is OOM-killed.
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
		memset(mem + c * CG_CHUNK + CG_FIRST * VFIO_MIG_PAGE_4K, 0,
		       CG_PAGES * VFIO_MIG_PAGE_4K);

	before = cg_read(CG_TEST, "memory.current");
	ASSERT_EQ(0, dirty_chunks_from_child(&self->md, iova, 0));
	after = cg_read(CG_TEST, "memory.current");
	ksft_print_msg("cgroup usage %lld -> %lld bytes after %llu chunks got dirty\n",
		       before, after, CG_CHUNKS);
	EXPECT_LE(before + (long long)(CG_CHUNKS * VFIO_MIG_PAGE_4K / 2), after);

	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, iova, span, VFIO_MIG_PAGE_4K,
				     bitmap, nbits / 8));
	EXPECT_EQ(CG_CHUNKS * CG_PAGES, vfio_mig_bitmap_weight(bitmap, nbits));

	/* no room for chunk bitmaps: whole chunks, no OOM kill */
	memset(bitmap, 0, nbits / 8);
	ASSERT_EQ(0, dirty_chunks_from_child(&self->md, iova,
					     cg_read(CG_TEST, "memory.current") +
					     128 * 1024));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, iova, span, VFIO_MIG_PAGE_4K,
				     bitmap, nbits / 8));
	for (c = 0; c < CG_CHUNKS * CG_PAGES; c++) {
		uint64_t bit = (c / CG_PAGES) * (CG_CHUNK / VFIO_MIG_PAGE_4K) +
			       CG_FIRST + c % CG_PAGES;

		EXPECT_EQ(1, (bitmap[bit / 64] >> (bit % 64)) & 1) {
			ksft_print_msg("page %llu of chunk %llu not reported\n",
				       (unsigned long long)(c % CG_PAGES),
				       (unsigned long long)(c / CG_PAGES));
			break;
		}
	}
	ksft_print_msg("under the limit: %llu pages reported for %llu written\n",
		       (unsigned long long)vfio_mig_bitmap_weight(bitmap, nbits),
		       CG_CHUNKS * CG_PAGES);
	EXPECT_LT(CG_CHUNKS * CG_PAGES, vfio_mig_bitmap_weight(bitmap, nbits));
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
	uint64_t bitmap[PIN_WORDS];
	uint64_t want[PIN_WORDS];
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
		munmap(self->buf, PIN_SIZE);
}

static int dma(struct migdev *md, const char *cmd, uint64_t page, uint64_t off,
	       uint64_t len, uint32_t seed)
{
	return migdev_dma(md, cmd, PIN_IOVA + page * VFIO_MIG_PAGE_4K + off, len,
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
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();

	ASSERT_EQ(0, dma(&self->md, "kept", 22, 100, VFIO_MIG_PAGE_4K, 5));
	EXPECT_TRUE(memory_is(self->buf, 22 * VFIO_MIG_PAGE_4K + 100, VFIO_MIG_PAGE_4K, 5));
	EXPECT_EQ(1, migdev_read(&self->md, "logged"));
	want_pages(self->want, 22, 2);
	EXPECT_PIN_REPORT();
	EXPECT_EQ(0, migdev_read(&self->md, "logged"));
	EXPECT_PIN_REPORT();
	EXPECT_EQ(8, migdev_pinned(&self->md));

	/* a write that reaches past the working set: refused, nothing written */
	EXPECT_EQ(-EFAULT, dma(&self->md, "kept", 27, 8, VFIO_MIG_PAGE_4K, 6));
	EXPECT_EQ(0, self->buf[27 * VFIO_MIG_PAGE_4K + 8]);
	EXPECT_PIN_REPORT();

	/* released: nothing more to report, the writes were */
	ASSERT_EQ(0, dma(&self->md, "release", 0, 0, 0, 0));
	EXPECT_PIN_REPORT();
}

#define FRESH_UUID	"6a0a2a3e-0000-4000-8000-00000000d0ff"

/*
 * A migdev-precise instance created for the test: no pin was ever counted
 * on it, so what the container counts is all there is.
 */
FIXTURE(fresh) {
	struct migdev md;
	uint8_t *buf;
	uint64_t bitmap[PIN_WORDS];
	uint64_t want[PIN_WORDS];
	bool created;
};

FIXTURE_SETUP(fresh)
{
	char uuid[64];
	int nth, ret;

	self->md.fd = -1;
	self->md.group = -1;
	self->md.container = -1;
	self->buf = MAP_FAILED;
	ret = sysfs_write("/sys/class/mdev_bus/migdev/mdev_supported_types/"
			  MIGDEV_PRECISE_TYPE "/create", FRESH_UUID);
	if (ret == -ENOENT)
		SKIP(return, "migdev: no " MIGDEV_PRECISE_TYPE " type");
	ASSERT_EQ(0, ret);
	self->created = true;
	uuid[0] = 0;
	for (nth = 0; vfio_find_mdev_group(MIGDEV_PRECISE_TYPE, nth, uuid,
					   sizeof(uuid)) >= 0; nth++)
		if (!strcmp(uuid, FRESH_UUID))
			break;
	ASSERT_EQ(0, strcmp(uuid, FRESH_UUID));
	ASSERT_EQ(0, migdev_open_type(&self->md, MIGDEV_PRECISE_TYPE, nth, -1));
	memset(self->want, 0, sizeof(self->want));
	self->buf = map_tracked(_metadata, self->md.container);
}

FIXTURE_TEARDOWN(fresh)
{
	migdev_close(&self->md);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, PIN_SIZE);
	if (self->created)
		sysfs_write("/sys/bus/mdev/devices/" FRESH_UUID "/remove", "1");
}

/*
 * The device's first pins ever: the container counts them, so GET_BITMAP
 * asks the driver, and the write waiting in its log is in the very next
 * report.
 */
TEST_F(fresh, first_pins_are_counted)
{
	ASSERT_EQ(0, dma(&self->md, "keep", 20, 0, 4 * VFIO_MIG_PAGE_4K, 0));
	ASSERT_EQ(0, dma(&self->md, "kept", 21, 8, 16, 3));
	EXPECT_EQ(1, migdev_read(&self->md, "logged"));
	want_pages(self->want, 21, 1);
	EXPECT_PIN_REPORT();
	EXPECT_EQ(0, migdev_read(&self->md, "logged"));
	ASSERT_EQ(0, dma(&self->md, "release", 0, 0, 0, 0));
	EXPECT_PIN_REPORT();
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
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();
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
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();
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
	EXPECT_PIN_REPORT();
	want_pages(self->want, 40, 2);
	want_pages(self->want, 60, 1);
	EXPECT_PIN_REPORT();

	ASSERT_EQ(0, dma(&self->md, "kept", 25, 0, 16, 9));
	ASSERT_EQ(0, dma(&self->plain, "kept", 41, 0, 16, 10));
	EXPECT_TRUE(memory_is(self->buf, 25 * VFIO_MIG_PAGE_4K, 16, 9));
	EXPECT_TRUE(memory_is(self->buf, 41 * VFIO_MIG_PAGE_4K, 16, 10));
	want_pages(self->want, 25, 1);
	want_pages(self->want, 40, 2);
	want_pages(self->want, 60, 1);
	EXPECT_PIN_REPORT();

	ASSERT_EQ(0, dma(&self->plain, "release", 0, 0, 0, 0));
	want_pages(self->want, 40, 2);
	want_pages(self->want, 60, 1);
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();
	EXPECT_EQ(9, migdev_pinned(&self->md));
	ASSERT_EQ(0, dma(&self->md, "kept", 60, 4, 4, 11));
	want_pages(self->want, 60, 1);
	EXPECT_PIN_REPORT();
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
			      PIN_IOVA + 193 * VFIO_MIG_PAGE_4K + 4000, 200, 21));
	ASSERT_TRUE(bar0_poll(&self->md, count, 0));
	EXPECT_EQ(0, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS));
	EXPECT_TRUE(memory_is(self->buf, 193 * VFIO_MIG_PAGE_4K + 4000, 200, 21));
	EXPECT_EQ(1, migdev_read(&self->md, "logged"));

	memset(self->bitmap, 0, sizeof(self->bitmap));
	ASSERT_EQ(0, vfio_unmap_bitmap(self->md.container, PIN_IOVA, PIN_SIZE, VFIO_MIG_PAGE_4K,
				       self->bitmap, sizeof(self->bitmap), NULL));
	EXPECT_EQ(0, migdev_pinned(&self->md));
	want_pages(self->want, 193, 2);
	EXPECT_EQ(0, memcmp(self->want, self->bitmap, sizeof(self->want)));
}

/* Nothing written, pinned or dirty in the mapping of @buf at PIN_IOVA. */
/*
 * The precise device reports that it wrote the whole of a 16 TiB mapping
 * (a mark far larger than the tracker ever splits into per-chunk entries);
 * the user reads the mapping in 1 TiB windows, as a VMM reads a huge RAM
 * block, the first one in the middle.  Each window is reported whole once
 * and is clean in the next round.
 */
TEST_F(precise, huge_mark_read_in_windows)
{
	const uint64_t tib = 1ULL << 40, size = 16 * tib, iova = 1ULL << 45;
	const uint64_t pgsize = 2ULL << 20, nbits = tib / pgsize;
	uint64_t *bitmap = mmap(NULL, nbits / 8, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *va = mmap(NULL, size, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t off;
	int round, w;

	ASSERT_NE(MAP_FAILED, bitmap);
	ASSERT_NE(MAP_FAILED, va);
	ASSERT_EQ(0, vfio_map(self->md.container, iova, va, size));
	ASSERT_EQ(0, migdev_ctl(&self->md, "report", "0x%llx 0x%llx",
				(unsigned long long)iova,
				(unsigned long long)size));
	for (round = 0; round < 2; round++) {
		for (w = 0; w < 16; w++) {
			off = (uint64_t)((w + 8) % 16) * tib;
			memset(bitmap, 0, nbits / 8);
			ASSERT_EQ(0, vfio_get_bitmap(self->md.container, iova + off,
						     tib, pgsize, bitmap, nbits / 8));
			EXPECT_EQ(round ? 0 : nbits, vfio_mig_bitmap_weight(bitmap, nbits))
				TH_LOG("round %d, the window at %llu TiB", round,
				       (unsigned long long)(off / tib));
		}
	}
	ASSERT_EQ(0, vfio_unmap(self->md.container, iova, size));
	munmap(va, size);
	munmap(bitmap, nbits / 8);
}

static void precise_clean(struct __test_metadata *_metadata, struct migdev *md,
			  uint8_t *buf)
{
	uint64_t bitmap[PIN_WORDS];

	ASSERT_EQ(0, migdev_ctl(md, "dma", "release 0 0 0"));
	memset(buf, 0, PIN_SIZE);
	ASSERT_EQ(0, vfio_get_bitmap(md->container, PIN_IOVA, PIN_SIZE, VFIO_MIG_PAGE_4K, bitmap,
				     sizeof(bitmap)));
}

/* The pages of the fixture mapping whose memory is not 0. */
static void changed_pages(const uint8_t *buf, uint64_t *must)
{
	uint64_t page, b;

	memset(must, 0, PIN_WORDS * 8);
	for (page = 0; page < PIN_PAGES; page++) {
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
	struct fail_nth_sweep pin = { .name = "migdev-precise pin-write-unpin" };
	struct fail_nth_sweep full = { .name = "migdev-precise write into a full log" };
	struct fail_nth_sweep rel = { .name = "migdev-precise release of a logged write" };
	struct fail_nth_sweep get = { .name = "GET_BITMAP, a logged write (sync)" };
	struct fail_nth_sweep unmap = { .name = "UNMAP with a bitmap, a logged write" };
	int worker = migdev_worker(&self->md), ret, i;
	uint64_t must[PIN_WORDS], bm[1], unmapped;
	void *mem;

	if (!fail_nth_ready(_metadata))
		return;
	if (worker < 0)
		SKIP(return,
		     "migdev: migdev has no DMA thread (debugfs \"worker\")");
	pin.tid = worker;
	full.tid = worker;
	rel.tid = worker;

	FAIL_NTH_SWEEP(&pin, 255) {
		precise_clean(_metadata, &self->md, self->buf);
		FAIL_NTH(&pin, ret = dma(&self->md, "pin", 10, 8, 4100, pin.n));
		if (ret) {
			/* a page it could not pin: those before it are written */
			ASSERT_EQ(-ENOMEM, ret);
			ASSERT_TRUE(pin.injected);
		} else {
			EXPECT_TRUE(memory_is(self->buf, 10 * VFIO_MIG_PAGE_4K + 8, 4100,
					      pin.n));
			pin.absorbed += pin.injected;
		}
		EXPECT_EQ(0, migdev_pinned(&self->md));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE,
					     VFIO_MIG_PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		pin_sweep_report(_metadata, &pin, self->bitmap, must, PIN_WORDS);
	}
	ASSERT_FALSE(pin.injected);
	EXPECT_GT(pin.more, 0);
	fail_nth_sweep_print(_metadata, &pin);

	/*
	 * The log holds PR_LOGGED writes into PR_LOGGED + 4 pinned pages; the
	 * next write reads it out first.
	 */
	FAIL_NTH_SWEEP(&full, 255) {
		precise_clean(_metadata, &self->md, self->buf);
		ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0,
				 (PR_LOGGED + 4) * VFIO_MIG_PAGE_4K, 0));
		for (i = 0; i < PR_LOGGED; i++)
			ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + i, 8 * i, 8,
					 i + 1));
		ASSERT_EQ(PR_LOGGED, migdev_read(&self->md, "logged"));
		FAIL_NTH(&full, ret = dma(&self->md, "kept", PR_SET + PR_LOGGED,
					  100, 8, full.n));
		full.absorbed += full.injected;
		ASSERT_EQ(0, ret);
		EXPECT_EQ(1, migdev_read(&self->md, "logged"));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE,
					     VFIO_MIG_PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		pin_sweep_report(_metadata, &full, self->bitmap, must, PIN_WORDS);
	}
	ASSERT_FALSE(full.injected);
	EXPECT_GT(full.more, 0);
	fail_nth_sweep_print(_metadata, &full);

	/* a logged write into two pinned pages, read out by the release */
	FAIL_NTH_SWEEP(&rel, 255) {
		precise_clean(_metadata, &self->md, self->buf);
		ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0, 2 * VFIO_MIG_PAGE_4K, 0));
		ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + 1, 4, 8, 3));
		FAIL_NTH(&rel, ret = dma(&self->md, "release", 0, 0, 0, 0));
		rel.absorbed += rel.injected;
		ASSERT_EQ(0, ret);
		EXPECT_EQ(0, migdev_pinned(&self->md));
		EXPECT_EQ(0, migdev_read(&self->md, "logged"));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE,
					     VFIO_MIG_PAGE_4K,
					     self->bitmap, sizeof(self->bitmap)));
		pin_sweep_report(_metadata, &rel, self->bitmap, must, PIN_WORDS);
	}
	ASSERT_FALSE(rel.injected);
	EXPECT_GT(rel.more, 0);
	fail_nth_sweep_print(_metadata, &rel);

	/* the same, read out by the driver's sync() for a GET_BITMAP */
	FAIL_NTH_SWEEP(&get, 255) {
		precise_clean(_metadata, &self->md, self->buf);
		ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0, 2 * VFIO_MIG_PAGE_4K, 0));
		ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + 1, 4, 8, 3));
		changed_pages(self->buf, must);
		memset(self->bitmap, 0, sizeof(self->bitmap));
		FAIL_NTH(&get, ret = vfio_get_bitmap(self->md.container, PIN_IOVA,
						     PIN_SIZE, VFIO_MIG_PAGE_4K,
						     self->bitmap,
						     sizeof(self->bitmap)));
		get.absorbed += get.injected;
		ASSERT_EQ(0, ret);
		EXPECT_EQ(0, migdev_read(&self->md, "logged"));
		pin_sweep_report(_metadata, &get, self->bitmap, must, PIN_WORDS);
	}
	ASSERT_FALSE(get.injected);
	EXPECT_GT(get.more, 0);
	fail_nth_sweep_print(_metadata, &get);

	/*
	 * A second mapping: the device keeps its pages 4 and 5 pinned and
	 * has written page 4; the unmap reads the log out (sync) and the
	 * driver unpins both (dma_unmap).  Page 5 is not dirty.
	 */
	precise_clean(_metadata, &self->md, self->buf);
	mem = mmap(NULL, PIN_FAIL_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	FAIL_NTH_SWEEP(&unmap, 255) {
		ASSERT_EQ(0, vfio_map(self->md.container, PIN_FAIL_IOVA, mem, PIN_FAIL_SIZE));
		ASSERT_EQ(0, migdev_dma(&self->md, "keep", PIN_FAIL_IOVA + 4 * VFIO_MIG_PAGE_4K,
					2 * VFIO_MIG_PAGE_4K, 0));
		ASSERT_EQ(0, migdev_dma(&self->md, "kept",
					PIN_FAIL_IOVA + 4 * VFIO_MIG_PAGE_4K + 64,
					8, unmap.n));
		bm[0] = 0;
		must[0] = 0x10;
		FAIL_NTH(&unmap, ret = vfio_unmap_bitmap(self->md.container,
							 PIN_FAIL_IOVA,
							 PIN_FAIL_SIZE,
							 VFIO_MIG_PAGE_4K, bm,
							 sizeof(bm), &unmapped));
		unmap.absorbed += unmap.injected;
		ASSERT_EQ(0, ret);
		ASSERT_EQ(PIN_FAIL_SIZE, unmapped);
		EXPECT_EQ(0, migdev_pinned(&self->md));
		pin_sweep_report(_metadata, &unmap, bm, must, 1);
	}
	ASSERT_FALSE(unmap.injected);
	EXPECT_EQ(0x10ULL, bm[0]);
	EXPECT_GT(unmap.more, 0);
	fail_nth_sweep_print(_metadata, &unmap);
	munmap(mem, PIN_FAIL_SIZE);

	/* memory back, one report later: exact, the pinned pages clean */
	precise_clean(_metadata, &self->md, self->buf);
	ASSERT_EQ(0, dma(&self->md, "keep", PR_SET, 0, 8 * VFIO_MIG_PAGE_4K, 0));
	EXPECT_PIN_REPORT();
	ASSERT_EQ(0, dma(&self->md, "kept", PR_SET + 2, 0, 8, 1));
	ASSERT_EQ(0, dma(&self->md, "pin", 10, 8, 8, 2));
	want_pages(self->want, PR_SET + 2, 1);
	want_pages(self->want, 10, 1);
	EXPECT_PIN_REPORT();
	EXPECT_PIN_REPORT();
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
