// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pinned-page dirty scope, end to end through the migdev sample driver,
 * whose DMA engine writes guest memory with vfio_pin_pages() + kmap or
 * with vfio_dma_rw(), or keeps pages pinned.  Every report is compared bit
 * for bit, and the written memory byte for byte.
 */
#include "../kselftest_harness.h"
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

struct stopper {
	int container;
	unsigned int delay_us;
};

static void *stop_later(void *arg)
{
	struct stopper *st = arg;

	usleep(st->delay_us);
	return (void *)(long)vfio_dirty(st->container,
					VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
}

/*
 * UNMAP_DMA with GET_DIRTY_BITMAP while another thread stops tracking:
 * the unmap notifies the driver, which unpins (dirtying the pages), with
 * iommu->lock dropped.  A STOP in that window must not make the unmap
 * succeed with fewer bits: it either reports every pinned page or fails
 * with -EINVAL and unmaps nothing.
 */
TEST_F(pin, unmap_bitmap_races_stop)
{
	int i, reported = 0, refused = 0;

	for (i = 0; i < 200; i++) {
		struct stopper st = {
			.container = self->md.container,
			.delay_us = (i * 37) % 1500,
		};
		uint64_t unmapped = 0;
		pthread_t t;
		void *stop_ret;
		int ret;

		ASSERT_EQ(0, vfio_dirty(self->md.container,
					VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
		ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "keep 0x%llx %llu 0",
					(unsigned long long)IOVA,
					(unsigned long long)SIZE));
		memset(self->bitmap, 0, sizeof(self->bitmap));
		ASSERT_EQ(0, pthread_create(&t, NULL, stop_later, &st));
		ret = vfio_unmap_bitmap(self->md.container, IOVA, SIZE, PAGE_4K,
					self->bitmap, sizeof(self->bitmap),
					&unmapped);
		ASSERT_EQ(0, pthread_join(t, &stop_ret));
		ASSERT_EQ(0, (long)stop_ret);
		if (ret == -EINVAL) {
			/* tracking stopped first: nothing unmapped */
			EXPECT_EQ(-EEXIST, vfio_map(self->md.container, IOVA,
						    self->buf, SIZE));
			if (migdev_pinned(&self->md) > 0)
				ASSERT_EQ(0, migdev_ctl(&self->md, "dma",
							"release 0x%llx %llu 0",
							(unsigned long long)IOVA,
							(unsigned long long)SIZE));
			refused++;
			continue;
		}
		ASSERT_EQ(0, ret);
		EXPECT_EQ(SIZE, unmapped);
		EXPECT_EQ(PAGES, bitmap_weight(self->bitmap, PAGES)) {
			ksft_print_msg("round %d: %llu of %llu pinned pages reported\n",
				       i, (unsigned long long)
				       bitmap_weight(self->bitmap, PAGES),
				       (unsigned long long)PAGES);
			break;
		}
		reported++;
		ASSERT_EQ(0, vfio_map(self->md.container, IOVA, self->buf, SIZE));
	}
	ksft_print_msg("%d unmaps reported every page, %d were refused\n",
		       reported, refused);
	ASSERT_EQ(0, vfio_dirty(self->md.container,
				VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
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

/* Read a number from file @name of cgroup directory @cg; -1 on error. */
static long long cg_read(const char *cg, const char *name)
{
	char path[256], buf[64], *end;
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f)) {
		v = strtoll(buf, &end, 10);
		if (end == buf)
			v = -1;
	}
	fclose(f);
	return v;
}

/* Value of @key in the flat-keyed cgroup file @name; -1 on error. */
static long long cg_key(const char *cg, const char *name, const char *key)
{
	char path[256], k[64];
	long long v, ret = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cg, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (!strcmp(k, key))
			ret = v;
	fclose(f);
	return ret;
}

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_TEST		CG_ROOT "/vfio-dirty-test"
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
		if (write_file(CG_ROOT "/cgroup.procs", "0"))
			_exit(2);
		/* the limit only while the device writes */
		snprintf(max, sizeof(max), "%lld", limit);
		if (limit && write_file(CG_TEST "/memory.max", max))
			_exit(3);
		for (c = 0; c < CG_CHUNKS; c++)
			if (migdev_ctl(md, "dma", "rw 0x%llx 8 %llu",
				       (unsigned long long)(iova + c * CG_CHUNK +
							    64 * PAGE_4K),
				       (unsigned long long)c))
				_exit(1);
		if (limit && write_file(CG_TEST "/memory.max", "max"))
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
	uint64_t nbits = span / PAGE_4K, *bitmap;
	long long before, after, oom;
	uint8_t *mem;
	char pid[32];

	if (access(CG_ROOT "/cgroup.controllers", F_OK) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL))
		VFIO_SKIP_OR_FAIL("memcg", return, "no cgroup2 (CONFIG_CGROUPS)");
	if (write_file(CG_ROOT "/cgroup.subtree_control", "+memory"))
		VFIO_SKIP_OR_FAIL("memcg", return, "no memory controller (CONFIG_MEMCG)");
	if (mkdir(CG_TEST, 0755))
		ASSERT_EQ(EEXIST, errno);
	snprintf(pid, sizeof(pid), "%d", getpid());
	ASSERT_EQ(0, write_file(CG_TEST "/cgroup.procs", pid));

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
		mem[c * CG_CHUNK + 64 * PAGE_4K] = 0;

	before = cg_read(CG_TEST, "memory.current");
	ASSERT_EQ(0, dirty_chunks_from_child(&self->md, iova, 0));
	after = cg_read(CG_TEST, "memory.current");
	ksft_print_msg("cgroup usage %lld -> %lld bytes after %llu chunks got dirty\n",
		       before, after, CG_CHUNKS);
	EXPECT_LE(before + (long long)(CG_CHUNKS * PAGE_4K / 2), after);

	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, iova, span, PAGE_4K,
				     bitmap, nbits / 8));
	EXPECT_EQ(CG_CHUNKS, bitmap_weight(bitmap, nbits));

	/* no room for chunk bitmaps: whole chunks, no OOM kill */
	memset(bitmap, 0, nbits / 8);
	ASSERT_EQ(0, dirty_chunks_from_child(&self->md, iova,
					     cg_read(CG_TEST, "memory.current") +
					     128 * 1024));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, iova, span, PAGE_4K,
				     bitmap, nbits / 8));
	for (c = 0; c < CG_CHUNKS; c++) {
		uint64_t bit = (c * CG_CHUNK + 64 * PAGE_4K) / PAGE_4K;

		EXPECT_EQ(1, (bitmap[bit / 64] >> (bit % 64)) & 1) {
			ksft_print_msg("chunk %llu not reported\n",
				       (unsigned long long)c);
			break;
		}
	}
	ksft_print_msg("under the limit: %llu pages reported for %llu written\n",
		       (unsigned long long)bitmap_weight(bitmap, nbits), CG_CHUNKS);
	EXPECT_LT(CG_CHUNKS, bitmap_weight(bitmap, nbits));
	oom = cg_key(CG_TEST, "memory.events", "oom_kill");
	EXPECT_EQ(0, oom);

	ASSERT_EQ(0, vfio_unmap(self->md.container, iova, span));
	ASSERT_EQ(0, write_file(CG_ROOT "/cgroup.procs", "0"));
	rmdir(CG_TEST);
	free(bitmap);
	munmap(mem, span);
}

/*
 * Mappings at the top of the IOVA space: a range that ends at 2^64 must
 * be found by GET_BITMAP, UNMAP_DMA and MAP_DMA, where iova + size wraps
 * to 0.  The mapping is the last GiB; memory behind it is reserved, not
 * committed.
 */
#define TOP_SIZE	0x40000000ULL	/* 1 GiB */
#define TOP_IOVA	(0ULL - TOP_SIZE)
#define TOP_PAGES	(TOP_SIZE / PAGE_4K)

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
		VFIO_SKIP_OR_FAIL("migdev", return, "needs a third " MIGDEV_TYPE " mdev");
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
				(unsigned long long)(0ULL - PAGE_4K + 8)));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, 1ULL << 63, 1ULL << 63,
				     1ULL << 30, bitmap, nbits / 8));
	EXPECT_EQ(1ULL << 63, bitmap[nbits / 64 - 1]);
	munmap(bitmap, nbits / 8);

	/* reported once, then the last 4 KiB page again, bit for bit */
	small = calloc(TOP_PAGES / 64, sizeof(*small));
	ASSERT_NE(NULL, small);
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, TOP_IOVA, TOP_SIZE,
				     PAGE_4K, small, TOP_PAGES / 8));
	EXPECT_EQ(0, bitmap_weight(small, TOP_PAGES));
	ASSERT_EQ(0, migdev_ctl(&self->md, "dma", "rw 0x%llx 16 6",
				(unsigned long long)(0ULL - PAGE_4K)));
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, TOP_IOVA, TOP_SIZE,
				     PAGE_4K, small, TOP_PAGES / 8));
	EXPECT_EQ(1, bitmap_weight(small, TOP_PAGES));
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
				       PAGE_4K, bitmap, TOP_PAGES / 8,
				       &unmapped));
	EXPECT_EQ(TOP_SIZE, unmapped);
	EXPECT_EQ(1, bitmap_weight(bitmap, TOP_PAGES));
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

/* MAP_DMA of a range ending at 2^64 that overlaps the mapping: -EEXIST. */
TEST_F(top, map_overlap_at_top)
{
	uint8_t *more = reserve(2 * TOP_SIZE);

	ASSERT_NE(MAP_FAILED, more);
	EXPECT_EQ(-EEXIST, vfio_map(self->md.container, TOP_IOVA - TOP_SIZE,
				    more, 2 * TOP_SIZE));
	EXPECT_EQ(-EEXIST, vfio_map(self->md.container, 0ULL - PAGE_4K,
				    more, PAGE_4K));
	/* below it, it fits */
	EXPECT_EQ(0, vfio_map(self->md.container, TOP_IOVA - TOP_SIZE, more,
			      TOP_SIZE));
	munmap(more, 2 * TOP_SIZE);
}

TEST_HARNESS_MAIN
