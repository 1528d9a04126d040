// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the VFIO type1 dirty page tracker.
 *
 * Reports are written into real user memory (kunit_vm_mmap()) and read back
 * whole, so every test checks each bit of the user's bitmap, not only the
 * ones it expects to be set.  Allocation failures are injected with static
 * stubs on the tracker's two allocating helpers.
 *
 * A loop of checks (over bits, words, pages or placements) ends in a single
 * expectation that gives the number of wrong checks and the first one, so a
 * broken tracker fails with a few lines per test, as fast as a good one
 * passes, instead of printing an EXPECTATION FAILED for every bit.
 */

#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/bitops.h>
#include <linux/mman.h>
#include <linux/prandom.h>
#include <linux/sizes.h>
#include <linux/uaccess.h>

#include "vfio_dirty.h"

#define UBITS	1024			/* bits in the user bitmaps of most tests */
#define CANARY	0x5a5a5a5a5a5a5a5aULL	/* a word the report must not write */

struct ubitmap {
	u64 __user *user;
	u64 *got;		/* what the user memory holds after the test */
	unsigned long *want;	/* what it should hold */
	size_t words;
};

/*
 * The failures of a loop of checks: how many, and the first one described.
 * The loop ends with one expect_no_misses().
 */
struct misses {
	unsigned long count;
	char first[128];
};

static __printf(2, 3) void miss(struct misses *m, const char *fmt, ...)
{
	va_list args;

	if (m->count++)
		return;
	va_start(args, fmt);
	vsnprintf(m->first, sizeof(m->first), fmt, args);
	va_end(args);
}

/* The one expectation of a loop: no check of @what went wrong. */
static void expect_no_misses(struct kunit *test, struct misses *m,
			     const char *what)
{
	KUNIT_EXPECT_EQ_MSG(test, m->count, 0, "%lu %s wrong; the first: %s",
			    m->count, what, m->first);
}

/* A user bitmap of @nbits bits, zero until written. */
static u64 __user *ubitmap_map(struct kunit *test, u64 nbits, unsigned long prot)
{
	unsigned long addr;

	addr = kunit_vm_mmap(test, NULL, 0, DIV_ROUND_UP(nbits, 64) * sizeof(u64),
			     prot, MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_NE_MSG(test, addr, 0, "no user memory for the bitmap");
	return (u64 __user *)addr;
}

/* A user bitmap small enough to compare whole with a kernel copy. */
static void ubitmap_init(struct kunit *test, struct ubitmap *ub, size_t nbits,
			 unsigned long prot)
{
	ub->words = DIV_ROUND_UP(nbits, 64);
	ub->user = ubitmap_map(test, nbits, prot);
	ub->got = kunit_kcalloc(test, ub->words, sizeof(u64), GFP_KERNEL);
	ub->want = kunit_kcalloc(test, BITS_TO_LONGS(ub->words * 64),
				 sizeof(unsigned long), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ub->got);
	KUNIT_ASSERT_NOT_NULL(test, ub->want);
}

static void ubitmap_fill(struct kunit *test, struct ubitmap *ub, u64 val)
{
	size_t i;

	for (i = 0; i < ub->words; i++)
		KUNIT_ASSERT_EQ(test, put_user(val, ub->user + i), 0);
}

/* How the user's bitmap differs from @want: wrong bits, the first wrong word. */
struct bitdiff {
	unsigned long wrong;
	size_t word;
	u64 got;
	u64 want;
};

#define BITDIFF_FMT	"%lu bits wrong, the first in u64 word %zu: %#llx, want %#llx"

/* Compare every word of the user's bitmap with @want (user layout). */
static unsigned long ubitmap_diff(struct kunit *test, struct ubitmap *ub,
				  struct bitdiff *d)
{
	u64 want;
	size_t i;

	memset(d, 0, sizeof(*d));
	KUNIT_ASSERT_EQ(test, copy_from_user(ub->got, ub->user,
					     ub->words * sizeof(u64)), 0);
	for (i = 0; i < ub->words; i++) {
		bitmap_to_arr64(&want, ub->want + i * (64 / BITS_PER_LONG), 64);
		if (ub->got[i] == want)
			continue;
		if (!d->wrong) {
			d->word = i;
			d->got = ub->got[i];
			d->want = want;
		}
		d->wrong += hweight64(ub->got[i] ^ want);
	}
	return d->wrong;
}

/* The user's bitmap equals @want: one expectation, however large. */
static void ubitmap_expect(struct kunit *test, struct ubitmap *ub)
{
	struct bitdiff d;

	KUNIT_EXPECT_EQ_MSG(test, ubitmap_diff(test, ub, &d), 0, BITDIFF_FMT,
			    d.wrong, d.word, d.got, d.want);
}

/*
 * A report lives on its caller's stack: start each on garbage, as the
 * report window is not zeroed as a whole but word by word as it is used.
 */
static void report_start(struct kunit *test, struct vfio_dirty_report *rep,
			 struct ubitmap *ub, u64 iova, u64 size,
			 unsigned int pgshift)
{
	memset(rep, 0xa5, sizeof(*rep));
	vfio_dirty_report_init(rep, ub->user, iova, size, pgshift);
}

static void report_end(struct kunit *test, struct vfio_dirty_report *rep)
{
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_finish(rep), 0);
}

static const unsigned int pgshifts[] = { 12, 13, 16, 21, 30 };

static void pgshift_desc(const unsigned int *shift, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "pgsize 2^%u", *shift);
}

KUNIT_ARRAY_PARAM(pgshift, pgshifts, pgshift_desc);

/* One dirty page at every bit offset 0..127 lands on exactly its bit. */
static void report_bit_placement(struct kunit *test)
{
	unsigned int shift = *(const unsigned int *)test->param_value;
	u64 pgsize = 1ULL << shift, base = 7ULL * SZ_1G * 1024;
	struct vfio_dirty_report rep;
	struct misses m = {};
	struct bitdiff d;
	struct ubitmap ub;
	unsigned int bit;
	int ret;

	ubitmap_init(test, &ub, 128, PROT_READ | PROT_WRITE);
	for (bit = 0; bit < 128; bit++) {
		ubitmap_fill(test, &ub, 0);
		bitmap_zero(ub.want, 128);
		report_start(test, &rep, &ub, base, 128 * pgsize, shift);
		/* one byte in the middle of the page, and the page itself */
		ret = vfio_dirty_report_add(&rep, base + bit * pgsize + pgsize / 2, 1);
		ret = ret ?: vfio_dirty_report_add(&rep, base + bit * pgsize, pgsize);
		ret = ret ?: vfio_dirty_report_finish(&rep);
		__set_bit(bit, ub.want);
		if (ret)
			miss(&m, "bit %u: report failed with %d", bit, ret);
		else if (ubitmap_diff(test, &ub, &d))
			miss(&m, "bit %u: " BITDIFF_FMT, bit, d.wrong, d.word,
			     d.got, d.want);
	}
	expect_no_misses(test, &m, "of 128 placements");
}

/* Runs of every start 0..127 and several lengths set exactly their bits. */
static void report_run_placement(struct kunit *test)
{
	static const unsigned int lens[] = { 1, 2, 31, 63, 64, 65, 127, 128, 700 };
	unsigned int shift = *(const unsigned int *)test->param_value;
	u64 pgsize = 1ULL << shift;
	struct vfio_dirty_report rep;
	unsigned int start, i;
	struct misses m = {};
	struct bitdiff d;
	struct ubitmap ub;
	int ret;

	ubitmap_init(test, &ub, UBITS, PROT_READ | PROT_WRITE);
	for (start = 0; start < 128; start++) {
		for (i = 0; i < ARRAY_SIZE(lens); i++) {
			ubitmap_fill(test, &ub, 0);
			bitmap_zero(ub.want, UBITS);
			report_start(test, &rep, &ub, 0, UBITS * pgsize, shift);
			ret = vfio_dirty_report_add(&rep, start * pgsize,
						    lens[i] * pgsize);
			ret = ret ?: vfio_dirty_report_finish(&rep);
			bitmap_set(ub.want, start, lens[i]);
			if (ret)
				miss(&m, "run %u+%u: report failed with %d",
				     start, lens[i], ret);
			else if (ubitmap_diff(test, &ub, &d))
				miss(&m, "run %u+%u: " BITDIFF_FMT, start,
				     lens[i], d.wrong, d.word, d.got, d.want);
		}
	}
	expect_no_misses(test, &m, "of 1152 runs");
}

/* Parts of a range outside the report are dropped, at both ends. */
static void report_clipping(struct kunit *test)
{
	u64 iova = SZ_1M, size = 100 * SZ_4K;
	struct vfio_dirty_report rep;
	struct ubitmap ub;

	ubitmap_init(test, &ub, 128, PROT_READ | PROT_WRITE);
	ubitmap_fill(test, &ub, 0);
	report_start(test, &rep, &ub, iova, size, 12);
	/* entirely before, entirely after, empty */
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 0, iova), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, iova + size, SZ_1G), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, iova + SZ_4K, 0), 0);
	/* straddling the start and the end */
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, iova - SZ_8K, 3 * SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, iova + size - SZ_4K, SZ_1M), 0);
	report_end(test, &rep);
	bitmap_zero(ub.want, 128);
	__set_bit(0, ub.want);
	__set_bit(99, ub.want);
	ubitmap_expect(test, &ub);
}

/* A report size that is not a multiple of the page size covers its tail. */
static void report_partial_last_page(struct kunit *test)
{
	struct vfio_dirty_report rep;
	struct ubitmap ub;

	ubitmap_init(test, &ub, 64, PROT_READ | PROT_WRITE);
	ubitmap_fill(test, &ub, 0);
	report_start(test, &rep, &ub, 0, SZ_2M * 3 + SZ_4K, 21);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, SZ_2M * 3 + 100, 1), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, SZ_2M * 4, SZ_4K), 0);
	report_end(test, &rep);
	bitmap_zero(ub.want, 64);
	__set_bit(3, ub.want);
	ubitmap_expect(test, &ub);
}

/* Coarse pages: a bit is set when any byte of its page is dirty. */
static void report_folding(struct kunit *test)
{
	struct vfio_dirty_report rep;
	struct ubitmap ub;

	ubitmap_init(test, &ub, 256, PROT_READ | PROT_WRITE);
	ubitmap_fill(test, &ub, 0);
	report_start(test, &rep, &ub, 0, 256ULL * SZ_2M, 21);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 5 * SZ_2M + SZ_4K * 511, SZ_4K), 0);
	/* one 4 KiB page straddling bits 9 and 10 */
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 10 * SZ_2M - SZ_2K, SZ_4K), 0);
	/* last byte of bit 70, first byte of bit 200 */
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 71ULL * SZ_2M - 1, 1), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 200ULL * SZ_2M, 1), 0);
	report_end(test, &rep);
	bitmap_zero(ub.want, 256);
	__set_bit(5, ub.want);
	__set_bit(9, ub.want);
	__set_bit(10, ub.want);
	__set_bit(70, ub.want);
	__set_bit(200, ub.want);
	ubitmap_expect(test, &ub);
}

/*
 * Sparse: words without set bits are not written (the canary survives in
 * the gap between two windows), and windows visited out of order are merged.
 */
static void report_sparse_and_unordered(struct kunit *test)
{
	unsigned int wbits = VFIO_DIRTY_WIN_BYTES * BITS_PER_BYTE, nbits = 4 * wbits;
	struct vfio_dirty_report rep;
	struct ubitmap ub;
	u64 word;

	ubitmap_init(test, &ub, nbits, PROT_READ | PROT_WRITE);
	ubitmap_fill(test, &ub, CANARY);
	KUNIT_ASSERT_EQ(test, put_user(0ULL, ub.user + 0), 0);
	KUNIT_ASSERT_EQ(test, put_user(0ULL, ub.user + 3 * wbits / 64 + 1), 0);
	report_start(test, &rep, &ub, 0, (u64)nbits << 12, 12);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 3ULL * SZ_4K, SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, (3ULL * wbits + 65) << 12,
						    SZ_4K), 0);
	/* back into the first window, after it was copied out */
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 9ULL * SZ_4K, SZ_4K), 0);
	report_end(test, &rep);

	KUNIT_ASSERT_EQ(test, get_user(word, ub.user + 0), 0);
	KUNIT_EXPECT_EQ(test, word, BIT_ULL(3) | BIT_ULL(9));
	KUNIT_ASSERT_EQ(test, get_user(word, ub.user + 3 * wbits / 64 + 1), 0);
	KUNIT_EXPECT_EQ(test, word, BIT_ULL(1));
	KUNIT_ASSERT_EQ(test, get_user(word, ub.user + 1), 0);
	KUNIT_EXPECT_EQ(test, word, CANARY);
	KUNIT_ASSERT_EQ(test, get_user(word, ub.user + wbits / 64), 0);
	KUNIT_EXPECT_EQ(test, word, CANARY);
	KUNIT_ASSERT_EQ(test, get_user(word, ub.user + 3 * wbits / 64), 0);
	KUNIT_EXPECT_EQ(test, word, CANARY);
}

/* Long runs across many windows, at every bit offset within a word. */
static void report_long_runs(struct kunit *test)
{
	unsigned int wbits = VFIO_DIRTY_WIN_BYTES * BITS_PER_BYTE;
	unsigned int nbits = 5 * wbits, start;
	struct vfio_dirty_report rep;
	struct misses m = {};
	struct bitdiff d;
	struct ubitmap ub;
	int ret;

	ubitmap_init(test, &ub, nbits, PROT_READ | PROT_WRITE);
	for (start = wbits - 64; start < wbits + 64; start += 7) {
		ubitmap_fill(test, &ub, 0);
		bitmap_zero(ub.want, nbits);
		report_start(test, &rep, &ub, 0, (u64)nbits << 12, 12);
		ret = vfio_dirty_report_add(&rep, (u64)start << 12,
					    (u64)(3 * wbits + 5) << 12);
		ret = ret ?: vfio_dirty_report_finish(&rep);
		bitmap_set(ub.want, start, 3 * wbits + 5);
		if (ret)
			miss(&m, "run from %u: report failed with %d", start, ret);
		else if (ubitmap_diff(test, &ub, &d))
			miss(&m, "run from %u: " BITDIFF_FMT, start, d.wrong,
			     d.word, d.got, d.want);
	}
	expect_no_misses(test, &m, "long runs");
}

/* The top of the 64-bit IOVA space: nothing wraps. */
static void report_top_of_iova_space(struct kunit *test)
{
	u64 size = SZ_1G * 1024ULL, iova = 0 - size;	/* last TiB */
	u64 nbits = size >> 12, word;
	u64 __user *user = ubitmap_map(test, nbits, PROT_READ | PROT_WRITE);
	struct vfio_dirty_report rep;

	vfio_dirty_report_init(&rep, user, iova, size, 12);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, U64_MAX - 10, 11), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, iova - SZ_4K, SZ_8K), 0);
	report_end(test, &rep);
	KUNIT_ASSERT_EQ(test, get_user(word, user + nbits / 64 - 1), 0);
	KUNIT_EXPECT_EQ(test, word, BIT_ULL(63));
	KUNIT_ASSERT_EQ(test, get_user(word, user + nbits / 64 - 2), 0);
	KUNIT_EXPECT_EQ(test, word, 0);
	KUNIT_ASSERT_EQ(test, get_user(word, user), 0);
	KUNIT_EXPECT_EQ(test, word, BIT_ULL(0));
}

/* A bitmap the user cannot write gives -EFAULT. */
static void report_read_only_bitmap(struct kunit *test)
{
	struct vfio_dirty_report rep;
	struct ubitmap ub;

	ubitmap_init(test, &ub, 64, PROT_READ);
	report_start(test, &rep, &ub, 0, 64 * SZ_4K, 12);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 0, SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_finish(&rep), -EFAULT);
}

/*
 * A report counts each bit it set once: runs stored as whole words that
 * overlap, a bit set twice in the window, a window merged into words a
 * run already filled.
 */
static void report_counts_bits(struct kunit *test)
{
	struct vfio_dirty_report rep;
	struct ubitmap ub;

	ubitmap_init(test, &ub, 1024, PROT_READ | PROT_WRITE);
	report_start(test, &rep, &ub, 0, 1024ULL << 12, 12);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 0, 256ULL << 12), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 64ULL << 12,
						    256ULL << 12), 0);
	KUNIT_EXPECT_EQ(test, rep.nset, 320);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 700ULL << 12, SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 700ULL << 12, SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 5ULL << 12, SZ_4K), 0);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_add(&rep, 701ULL << 12, SZ_4K), 0);
	report_end(test, &rep);
	KUNIT_EXPECT_EQ(test, rep.nset, 322);
	bitmap_set(ub.want, 0, 320);
	bitmap_set(ub.want, 700, 2);
	ubitmap_expect(test, &ub);
}

/*
 * The tracker: mark, report, clear.  A mapping of TRK_PAGES pages (four
 * chunks and a half) reported whole at 4 KiB into a user bitmap.
 */
#define CHUNK		(PAGE_SIZE * BITS_PER_BYTE)
#define TRK_PAGES	(4 * CHUNK + CHUNK / 2)
#define TRK_IOVA	(3ULL << 40)

struct trk {
	struct vfio_dirty d;
	struct ubitmap ub;
};

static void trk_init(struct kunit *test, struct trk *t)
{
	vfio_dirty_init(&t->d, (u64)TRK_PAGES << PAGE_SHIFT);
	ubitmap_init(test, &t->ub, TRK_PAGES, PROT_READ | PROT_WRITE);
	bitmap_zero(t->ub.want, TRK_PAGES);
}

static void trk_mark(struct trk *t, u64 page, u64 npages)
{
	vfio_dirty_mark(&t->d, page << PAGE_SHIFT, npages << PAGE_SHIFT);
	bitmap_set(t->ub.want, page, npages);
}

static void trk_clear(struct trk *t, u64 page, u64 npages)
{
	vfio_dirty_clear(&t->d, page << PAGE_SHIFT, npages << PAGE_SHIFT);
	bitmap_clear(t->ub.want, page, npages);
}

/* Report [page, page + npages) and expect exactly @t->ub.want there. */
static void trk_expect_range(struct kunit *test, struct trk *t, u64 page,
			     u64 npages)
{
	struct vfio_dirty_report rep;
	unsigned long *want = t->ub.want;
	struct misses m = {};
	u64 i, nwant = 0;

	ubitmap_fill(test, &t->ub, 0);
	memset(&rep, 0xa5, sizeof(rep));	/* as report_start() */
	vfio_dirty_report_init(&rep, t->ub.user, TRK_IOVA + (page << PAGE_SHIFT),
			       npages << PAGE_SHIFT, PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_map(&rep, &t->d, TRK_IOVA,
						    page << PAGE_SHIFT,
						    npages << PAGE_SHIFT), 0);
	report_end(test, &rep);
	KUNIT_ASSERT_EQ(test, copy_from_user(t->ub.got, t->ub.user,
					     t->ub.words * sizeof(u64)), 0);
	for (i = 0; i < npages; i++) {
		bool got = t->ub.got[i / 64] & BIT_ULL(i % 64);

		nwant += test_bit(page + i, want);
		if (got != test_bit(page + i, want))
			miss(&m, "page %llu is %s, want %s", page + i,
			     got ? "dirty" : "clean", got ? "clean" : "dirty");
	}
	expect_no_misses(test, &m, "pages");
	KUNIT_EXPECT_EQ(test, rep.nset, nwant);
}

static void trk_expect(struct kunit *test, struct trk *t)
{
	trk_expect_range(test, t, 0, TRK_PAGES);
}

static void trk_destroy(struct trk *t)
{
	vfio_dirty_destroy(&t->d);
}

/* The dirty run of @d is [@start, @end), and no chunk has an entry. */
static void expect_only_run(struct kunit *test, struct vfio_dirty *d,
			    u64 start, u64 end)
{
	KUNIT_EXPECT_EQ(test, d->run_start, start);
	KUNIT_EXPECT_EQ(test, d->run_end, end);
	KUNIT_EXPECT_TRUE(test, xa_empty(&d->chunks));
}

/* Chunk entries of @d. */
static unsigned long count_entries(struct vfio_dirty *d)
{
	unsigned long c, n = 0;
	void *entry;

	xa_for_each(&d->chunks, c, entry)
		n++;
	return n;
}

/*
 * A mark of the whole mapping, or of more chunks than a split may make,
 * is the dirty run: no entry per chunk, and on a 2^62-byte mapping (2^35
 * chunks) it returns at once.  A mark that touches the run extends it.
 */
static void tracker_mark_whole(struct kunit *test)
{
	const u64 huge = 1ULL << (62 - PAGE_SHIFT);	/* pages */
	struct vfio_dirty d;
	struct trk t;

	trk_init(test, &t);
	trk_mark(&t, 0, TRK_PAGES);
	expect_only_run(test, &t.d, 0, TRK_PAGES);
	trk_expect(test, &t);
	trk_destroy(&t);

	vfio_dirty_init(&d, 1ULL << 62);
	vfio_dirty_mark(&d, PAGE_SIZE, (1ULL << 62) - 3 * PAGE_SIZE);
	expect_only_run(test, &d, 1, huge - 2);
	/* touching either end: the run grows, exactly */
	vfio_dirty_mark(&d, (huge - 2) << PAGE_SHIFT, 1);
	expect_only_run(test, &d, 1, huge - 1);
	vfio_dirty_mark(&d, 0, PAGE_SIZE);
	expect_only_run(test, &d, 0, huge - 1);
	/* inside it: nothing to store */
	KUNIT_EXPECT_TRUE(test, vfio_dirty_mark_present(&d, SZ_1T, PAGE_SIZE));
	vfio_dirty_mark(&d, SZ_1T, SZ_1G);
	expect_only_run(test, &d, 0, huge - 1);
	vfio_dirty_destroy(&d);
	KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&d));

	/*
	 * A huge mark apart from the run, after it or before it: the run
	 * spans both and what lies between (more reported, never less).
	 */
	vfio_dirty_init(&d, 1ULL << 62);
	vfio_dirty_mark(&d, 16 * SZ_1T, 16 * SZ_1T);
	expect_only_run(test, &d, (16 * SZ_1T) >> PAGE_SHIFT, (32 * SZ_1T) >> PAGE_SHIFT);
	vfio_dirty_mark(&d, 64 * SZ_1T, 16 * SZ_1T);
	expect_only_run(test, &d, (16 * SZ_1T) >> PAGE_SHIFT, (80 * SZ_1T) >> PAGE_SHIFT);
	vfio_dirty_mark(&d, 2 * SZ_1T, 12 * SZ_1T);
	expect_only_run(test, &d, (2 * SZ_1T) >> PAGE_SHIFT, (80 * SZ_1T) >> PAGE_SHIFT);
	vfio_dirty_destroy(&d);
}

/*
 * A run that grows over chunk entries frees the entries of the chunks it
 * covers whole, and keeps those it covers in part.
 */
static void tracker_run_takes_entries(struct kunit *test)
{
	const u64 npages = (u64)(VFIO_DIRTY_SPLIT_MAX + 8) * CHUNK;
	struct vfio_dirty d;

	vfio_dirty_init(&d, npages << PAGE_SHIFT);
	vfio_dirty_mark(&d, (2 * CHUNK + 5) << PAGE_SHIFT, PAGE_SIZE);
	vfio_dirty_mark(&d, (3 * CHUNK + 5) << PAGE_SHIFT, PAGE_SIZE);
	vfio_dirty_mark(&d, (npages - 1) << PAGE_SHIFT, PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, count_entries(&d), 3);
	/* more than VFIO_DIRTY_SPLIT_MAX chunks: the run */
	vfio_dirty_mark(&d, (3 * CHUNK) << PAGE_SHIFT,
			(npages - 3 * CHUNK - 1) << PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, d.run_start, 3 * CHUNK);
	KUNIT_EXPECT_EQ(test, d.run_end, npages - 1);
	/* chunk 3 is covered whole, the last chunk in part */
	KUNIT_EXPECT_EQ(test, count_entries(&d), 2);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&d.chunks, 2));
	KUNIT_EXPECT_NULL(test, xa_load(&d.chunks, 3));
	/* touching the run from below: it takes chunk 2 in part, keeps it */
	vfio_dirty_mark(&d, (2 * CHUNK + 6) << PAGE_SHIFT,
			(CHUNK - 6) << PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, d.run_start, 2 * CHUNK + 6);
	KUNIT_EXPECT_EQ(test, count_entries(&d), 2);
	/* and the rest of it: chunk 2 is covered whole, its entry goes */
	vfio_dirty_mark(&d, (2 * CHUNK) << PAGE_SHIFT, 6 << PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, d.run_start, 2 * CHUNK);
	KUNIT_EXPECT_EQ(test, count_entries(&d), 1);
	vfio_dirty_destroy(&d);
}

/*
 * Windows of a 16 TiB whole-mapping mark, read in order: each window is
 * reported once and is clean the next round; the run shrinks, no entry is
 * stored.  A window in the middle stores the smaller side, at most
 * VFIO_DIRTY_SPLIT_MAX entries; past that the run stays whole.
 */
static void tracker_windows_converge(struct kunit *test)
{
	const u64 size = 16 * SZ_1T, win = SZ_1T, pages = size >> PAGE_SHIFT;
	u64 __user *ub = ubitmap_map(test, win >> 21, PROT_READ | PROT_WRITE);
	struct vfio_dirty_report rep;
	struct vfio_dirty d;
	u64 off;
	int round;

	vfio_dirty_init(&d, size);
	vfio_dirty_mark_all(&d);
	for (round = 0; round < 2; round++) {
		for (off = 0; off < size; off += win) {
			KUNIT_ASSERT_EQ(test, clear_user(ub, (win >> 21) / 8), 0);
			vfio_dirty_report_init(&rep, ub, off, win, 21);
			KUNIT_ASSERT_EQ(test, vfio_dirty_report_map(&rep, &d, 0, off, win), 0);
			KUNIT_ASSERT_EQ(test, vfio_dirty_report_finish(&rep), 0);
			KUNIT_EXPECT_EQ_MSG(test, rep.nset, round ? 0 : win >> 21,
					    "round %d, window at %llu TiB", round,
					    off / SZ_1T);
			vfio_dirty_clear(&d, off, win);
			KUNIT_EXPECT_TRUE(test, xa_empty(&d.chunks));
		}
	}
	KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&d));

	/* the middle first: the 7 TiB below go to (whole-chunk) entries */
	vfio_dirty_mark_all(&d);
	vfio_dirty_clear(&d, 7 * SZ_1T, SZ_1T);
	KUNIT_EXPECT_EQ(test, d.run_start, 8 * SZ_1T >> PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, d.run_end, pages);
	KUNIT_EXPECT_EQ(test, count_entries(&d), 7 * SZ_1T / (CHUNK * PAGE_SIZE));
	KUNIT_EXPECT_PTR_EQ(test, xa_load(&d.chunks, 0), VFIO_DIRTY_FULL);
	vfio_dirty_destroy(&d);

	/* 2^62 bytes, a window in the middle: both sides too large, all stays */
	vfio_dirty_init(&d, 1ULL << 62);
	vfio_dirty_mark_all(&d);
	vfio_dirty_clear(&d, 1ULL << 61, SZ_1G);
	expect_only_run(test, &d, 0, 1ULL << (62 - PAGE_SHIFT));
	/* a prefix and a suffix still shrink it exactly */
	vfio_dirty_clear(&d, 0, SZ_1G);
	vfio_dirty_clear(&d, (1ULL << 62) - SZ_1G, SZ_1G);
	expect_only_run(test, &d, SZ_1G >> PAGE_SHIFT,
			((1ULL << 62) - SZ_1G) >> PAGE_SHIFT);
	vfio_dirty_destroy(&d);
}

/* Single pages, runs across chunk boundaries, the last page; byte ranges. */
static void tracker_mark_report(struct kunit *test)
{
	struct trk t;

	trk_init(test, &t);
	KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&t.d));
	trk_expect(test, &t);
	trk_mark(&t, 0, 1);
	trk_mark(&t, 63, 2);
	trk_mark(&t, CHUNK - 3, 7);
	trk_mark(&t, 3 * CHUNK + 100, 1);
	trk_mark(&t, TRK_PAGES - 1, 1);
	KUNIT_EXPECT_FALSE(test, vfio_dirty_empty(&t.d));
	trk_expect(test, &t);
	/* a report changes nothing: the same again */
	trk_expect(test, &t);

	/* a 2-byte write straddling pages 200 and 201 dirties both */
	vfio_dirty_mark(&t.d, (201ULL << PAGE_SHIFT) - 1, 2);
	bitmap_set(t.ub.want, 200, 2);
	trk_expect(test, &t);
	trk_destroy(&t);
	KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&t.d));
}

/* Clearing a part keeps the rest; clearing everything frees everything. */
static void tracker_clear(struct kunit *test)
{
	struct trk t;

	trk_init(test, &t);
	trk_mark(&t, 10, 3 * CHUNK);
	trk_mark(&t, TRK_PAGES - 5, 5);
	trk_clear(&t, 11, 1);
	trk_clear(&t, CHUNK, CHUNK);		/* a whole chunk */
	trk_clear(&t, 3 * CHUNK, 20);
	trk_expect(test, &t);
	/* reporting a part shows only that part */
	trk_expect_range(test, &t, CHUNK - 64, 128);
	trk_clear(&t, 0, TRK_PAGES - 5);
	trk_expect(test, &t);
	trk_clear(&t, TRK_PAGES - 5, 5);
	trk_expect(test, &t);
	KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&t.d));
	trk_destroy(&t);
}

/* Whole chunks and whole mappings are split precisely when cleared. */
static void tracker_split_marks(struct kunit *test)
{
	struct trk t;

	trk_init(test, &t);
	trk_mark(&t, 2 * CHUNK, CHUNK);		/* whole chunk: a marker */
	trk_clear(&t, 2 * CHUNK + 7, 3);
	trk_expect(test, &t);

	vfio_dirty_mark_all(&t.d);
	bitmap_set(t.ub.want, 0, TRK_PAGES);
	trk_expect(test, &t);
	trk_clear(&t, CHUNK / 2, 2 * CHUNK);
	trk_clear(&t, TRK_PAGES - 1, 1);
	trk_expect(test, &t);
	trk_destroy(&t);
}

/*
 * The fast path marks only where a chunk's entry takes the range as it is
 * (a bitmap, a list with room, a wholly dirty chunk) or the run holds it,
 * never across chunks, and changes nothing when it refuses.
 */
static bool mark_present(struct trk *t, u64 page, u64 npages)
{
	return vfio_dirty_mark_present(&t->d, page << PAGE_SHIFT,
				       npages << PAGE_SHIFT);
}

static void tracker_mark_present(struct kunit *test)
{
	struct trk t;

	trk_init(test, &t);
	KUNIT_EXPECT_FALSE(test, mark_present(&t, 5, 1));
	trk_expect(test, &t);
	trk_mark(&t, 5, 2);			/* a list of two, full */
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 5, 2));
	KUNIT_EXPECT_FALSE(test, mark_present(&t, 9, 1));
	trk_expect(test, &t);
	trk_mark(&t, 9, 2);			/* grown: room for six */
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 11, 1));
	__set_bit(11, t.ub.want);
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 7, 1));	/* in the middle */
	__set_bit(7, t.ub.want);
	/* full: a page it holds needs no room, another is refused */
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 9, 1));
	KUNIT_EXPECT_FALSE(test, mark_present(&t, CHUNK - 1, 1));
	KUNIT_EXPECT_FALSE(test, mark_present(&t, 20, 2));
	trk_expect(test, &t);
	/* a bitmap takes anything inside its chunk */
	trk_mark(&t, 1000, VFIO_DIRTY_LIST_MAX);
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 20, 300));
	bitmap_set(t.ub.want, 20, 300);
	/* across a chunk boundary, into a chunk without entry: refused */
	KUNIT_EXPECT_FALSE(test, mark_present(&t, CHUNK - 1, 2));
	KUNIT_EXPECT_FALSE(test, mark_present(&t, 3 * CHUNK, 1));
	trk_expect(test, &t);
	/* a wholly dirty chunk, then a wholly dirty mapping */
	trk_mark(&t, 2 * CHUNK, CHUNK);
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 2 * CHUNK + 7, 1));
	trk_expect(test, &t);
	vfio_dirty_mark_all(&t.d);
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 3 * CHUNK, 1));
	bitmap_set(t.ub.want, 0, TRK_PAGES);
	trk_expect(test, &t);
	trk_destroy(&t);
}

/*
 * The fast path keeps the entry it found; every call that may replace or
 * free that entry makes it look again, so it marks the entry there is now.
 */
static void tracker_mark_present_hint(struct kunit *test)
{
	struct trk t;

	trk_init(test, &t);
	trk_mark(&t, 5, 1);
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 5, 1));
	trk_clear(&t, 5, 1);			/* the list is freed */
	KUNIT_EXPECT_FALSE(test, mark_present(&t, 6, 1));
	trk_expect(test, &t);
	trk_mark(&t, 5, 1);
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 5, 1));
	trk_mark(&t, 9, 2);			/* replaced by a larger list */
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 12, 1));
	__set_bit(12, t.ub.want);
	trk_expect(test, &t);
	trk_mark(&t, 1000, VFIO_DIRTY_LIST_MAX);	/* by a bitmap */
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 14, 1));
	__set_bit(14, t.ub.want);
	trk_expect(test, &t);
	trk_clear(&t, 0, CHUNK);		/* the bitmap is freed */
	KUNIT_EXPECT_FALSE(test, mark_present(&t, 16, 1));
	trk_mark(&t, 0, CHUNK);			/* a whole chunk */
	trk_clear(&t, 3, 1);			/* split into a bitmap */
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 7, 1));
	trk_clear(&t, 7, 1);
	KUNIT_EXPECT_TRUE(test, mark_present(&t, 7, 1));
	__set_bit(7, t.ub.want);
	trk_expect(test, &t);
	vfio_dirty_mark_all(&t.d);		/* the run: entries freed */
	trk_clear(&t, 0, TRK_PAGES - 1);
	KUNIT_EXPECT_FALSE(test, mark_present(&t, 7, 1));
	bitmap_set(t.ub.want, TRK_PAGES - 1, 1);
	trk_expect(test, &t);
	trk_destroy(&t);
}

static unsigned long *alloc_bits_fails(void)
{
	return NULL;
}

static struct vfio_dirty_list *alloc_list_fails(unsigned int n)
{
	return NULL;
}

static int store_fails(struct vfio_dirty *d, unsigned long index, void *entry)
{
	return -ENOMEM;
}

/*
 * No memory for a chunk's list or bits: the whole chunk is dirty, never
 * less.
 */
static void tracker_no_memory_for_bits(struct kunit *test)
{
	struct trk t;

	trk_init(test, &t);
	trk_mark(&t, CHUNK + 5, 1);
	kunit_activate_static_stub(test, vfio_dirty_alloc_bits, alloc_bits_fails);
	kunit_activate_static_stub(test, vfio_dirty_alloc_list, alloc_list_fails);
	vfio_dirty_mark(&t.d, (3ULL * CHUNK + 9) << PAGE_SHIFT, PAGE_SIZE);
	bitmap_set(t.ub.want, 3 * CHUNK, CHUNK);
	trk_mark(&t, CHUNK + 6, 1);		/* room in the list: no memory */
	trk_expect(test, &t);
	/* a list that must grow, a list that must become bits */
	vfio_dirty_mark(&t.d, (CHUNK + 100ULL) << PAGE_SHIFT, 10 << PAGE_SHIFT);
	vfio_dirty_mark(&t.d, 7 << PAGE_SHIFT, 200 << PAGE_SHIFT);
	bitmap_set(t.ub.want, 0, 2 * CHUNK);
	trk_expect(test, &t);
	KUNIT_EXPECT_PTR_EQ(test, xa_load(&t.d.chunks, 0), VFIO_DIRTY_FULL);
	KUNIT_EXPECT_PTR_EQ(test, xa_load(&t.d.chunks, 1), VFIO_DIRTY_FULL);

	/* splitting the marker needs memory too: the chunk stays dirty */
	vfio_dirty_clear(&t.d, (3ULL * CHUNK) << PAGE_SHIFT, PAGE_SIZE);
	vfio_dirty_clear(&t.d, (3ULL * CHUNK) << PAGE_SHIFT, (CHUNK - 1) << PAGE_SHIFT);
	trk_expect(test, &t);
	kunit_deactivate_static_stub(test, vfio_dirty_alloc_bits);
	kunit_deactivate_static_stub(test, vfio_dirty_alloc_list);
	trk_clear(&t, 0, 2 * CHUNK);

	/* with memory back, the split is exact */
	trk_clear(&t, 3 * CHUNK, CHUNK / 2);
	trk_expect(test, &t);
	trk_destroy(&t);
}

/* No memory for the index: the whole mapping is dirty, never less. */
static void tracker_no_memory_for_index(struct kunit *test)
{
	struct trk t;

	trk_init(test, &t);
	trk_mark(&t, 7, 1);
	kunit_activate_static_stub(test, vfio_dirty_store, store_fails);
	vfio_dirty_mark(&t.d, (2ULL * CHUNK) << PAGE_SHIFT, PAGE_SIZE);
	bitmap_set(t.ub.want, 0, TRK_PAGES);
	trk_expect(test, &t);
	/* splitting the run in the middle needs the index: all stays dirty */
	vfio_dirty_clear(&t.d, (2ULL * CHUNK) << PAGE_SHIFT, PAGE_SIZE);
	trk_expect(test, &t);
	/* a prefix of the run needs nothing: exact */
	trk_clear(&t, 0, 3);
	trk_expect(test, &t);
	kunit_deactivate_static_stub(test, vfio_dirty_store);
	trk_clear(&t, 0, TRK_PAGES / 2);
	trk_expect(test, &t);
	trk_destroy(&t);
}

/* A report that cannot be written leaves every bit for the next one. */
static void tracker_failed_report_keeps_bits(struct kunit *test)
{
	u64 __user *ro = ubitmap_map(test, TRK_PAGES, PROT_READ);
	struct vfio_dirty_report rep;
	struct trk t;

	trk_init(test, &t);
	trk_mark(&t, 1, 1);
	trk_mark(&t, 3 * CHUNK, CHUNK);
	vfio_dirty_report_init(&rep, ro, TRK_IOVA, (u64)TRK_PAGES << PAGE_SHIFT,
			       PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, vfio_dirty_report_map(&rep, &t.d, TRK_IOVA, 0,
						    (u64)TRK_PAGES << PAGE_SHIFT),
			-EFAULT);
	trk_expect(test, &t);
	trk_destroy(&t);
}

/* The entry of chunk @c of @t is a list: return it, or NULL (a failure). */
static struct vfio_dirty_list *expect_list(struct kunit *test, struct trk *t,
					   unsigned long c)
{
	void *entry = xa_load(&t->d.chunks, c);

	KUNIT_EXPECT_EQ_MSG(test, xa_pointer_tag(entry), VFIO_DIRTY_LIST_TAG,
			    "chunk %lu is not a list", c);
	return xa_pointer_tag(entry) == VFIO_DIRTY_LIST_TAG ?
	       xa_untag_pointer(entry) : NULL;
}

/* The entry of chunk @c of @t is a bitmap. */
static void expect_bits(struct kunit *test, struct trk *t, unsigned long c)
{
	void *entry = xa_load(&t->d.chunks, c);

	KUNIT_EXPECT_NOT_NULL_MSG(test, entry, "chunk %lu", c);
	KUNIT_EXPECT_EQ_MSG(test, xa_pointer_tag(entry), 0,
			    "chunk %lu is not a bitmap", c);
}

/*
 * A report that fails part-way through a chunk, a list or a bitmap, when
 * its window moves on to the chunk's next run, or that fails writing the
 * whole words of a run straight to the user: -EFAULT, and every bit stays
 * for the next report.
 */
static void tracker_failed_report_mid_chunk(struct kunit *test)
{
	const u64 win = VFIO_DIRTY_WIN_BYTES * BITS_PER_BYTE;	/* pages */
	u64 __user *ro = ubitmap_map(test, TRK_PAGES, PROT_READ);
	struct vfio_dirty_report rep;
	struct trk t;
	int kind;

	for (kind = 0; kind < 3; kind++) {
		trk_init(test, &t);
		if (kind < 2) {
			trk_mark(&t, CHUNK + 1, kind ? VFIO_DIRTY_LIST_MAX + 1 : 1);
			trk_mark(&t, CHUNK + 3 * win, 1);
		} else {
			trk_mark(&t, CHUNK, CHUNK);
		}
		if (kind == 1)
			expect_bits(test, &t, 1);
		else if (!kind)
			expect_list(test, &t, 1);
		vfio_dirty_report_init(&rep, ro, TRK_IOVA,
				       (u64)TRK_PAGES << PAGE_SHIFT, PAGE_SHIFT);
		KUNIT_EXPECT_EQ(test, vfio_dirty_report_map(&rep, &t.d, TRK_IOVA, 0,
							    (u64)TRK_PAGES << PAGE_SHIFT),
				-EFAULT);
		trk_expect(test, &t);
		trk_destroy(&t);
	}
}

/*
 * Scattered pages are a sorted list of offsets that grows with them (8
 * bytes for one or two) and becomes a bitmap past VFIO_DIRTY_LIST_MAX; a
 * whole chunk split by a clear becomes a list or a bitmap, whichever holds
 * what is left; a list that empties frees its chunk's entry.
 */
static void tracker_lists(struct kunit *test)
{
	struct vfio_dirty_list *l;
	struct trk t;
	int i;

	trk_init(test, &t);
	trk_mark(&t, 3, 1);
	l = expect_list(test, &t, 0);
	KUNIT_ASSERT_NOT_NULL(test, l);
	KUNIT_EXPECT_EQ(test, l->n, 1);
	KUNIT_EXPECT_EQ(test, l->cap, 2);	/* a kmalloc-8 object */
	/* backwards, every 7th page: each goes to its place */
	for (i = VFIO_DIRTY_LIST_MAX - 20; i >= 0; i--)
		trk_mark(&t, 10 + 7 * i, 1);
	/* a range over pages already there: each page once */
	trk_mark(&t, 9, 10);
	trk_expect(test, &t);
	l = expect_list(test, &t, 0);
	KUNIT_ASSERT_NOT_NULL(test, l);
	KUNIT_EXPECT_EQ(test, l->n, bitmap_weight(t.ub.want, CHUNK));
	for (i = 1; i < l->n; i++)
		if (l->off[i] <= l->off[i - 1])
			break;
	KUNIT_EXPECT_EQ_MSG(test, i, l->n, "offsets out of order at %d", i);
	/* take out a range and a page, put them back */
	trk_clear(&t, 9, 10);
	trk_clear(&t, 10 + 7 * 50, 1);
	trk_expect(test, &t);
	trk_mark(&t, 9, 10);
	trk_mark(&t, 10 + 7 * 50, 1);
	trk_expect(test, &t);
	/* VFIO_DIRTY_LIST_MAX pages, then one more: a bitmap */
	while (bitmap_weight(t.ub.want, CHUNK) < VFIO_DIRTY_LIST_MAX)
		trk_mark(&t, CHUNK - bitmap_weight(t.ub.want, CHUNK), 1);
	expect_list(test, &t, 0);
	trk_mark(&t, CHUNK / 2, 1);
	expect_bits(test, &t, 0);
	trk_expect(test, &t);
	/* a clear that empties a list frees the entry */
	trk_mark(&t, CHUNK + 77, 2);
	trk_clear(&t, CHUNK, 100);
	KUNIT_EXPECT_NULL(test, xa_load(&t.d.chunks, 1));

	/* whole chunks split: three pages left are a list, more a bitmap */
	trk_mark(&t, 2 * CHUNK, CHUNK);
	KUNIT_EXPECT_PTR_EQ(test, xa_load(&t.d.chunks, 2), VFIO_DIRTY_FULL);
	trk_clear(&t, 2 * CHUNK + 2, CHUNK - 3);
	l = expect_list(test, &t, 2);
	KUNIT_ASSERT_NOT_NULL(test, l);
	KUNIT_EXPECT_EQ(test, l->n, 3);
	trk_mark(&t, 3 * CHUNK, CHUNK);
	trk_clear(&t, 3 * CHUNK, CHUNK - 3);	/* the last three are left */
	l = expect_list(test, &t, 3);
	KUNIT_ASSERT_NOT_NULL(test, l);
	KUNIT_EXPECT_EQ(test, l->n, 3);
	trk_expect(test, &t);
	trk_mark(&t, 3 * CHUNK, CHUNK);
	trk_clear(&t, 3 * CHUNK + 1, CHUNK - 1);	/* the first is left */
	l = expect_list(test, &t, 3);
	KUNIT_ASSERT_NOT_NULL(test, l);
	KUNIT_EXPECT_EQ(test, l->n, 1);
	trk_clear(&t, 3 * CHUNK, 1);
	trk_mark(&t, 3 * CHUNK, CHUNK);
	trk_clear(&t, 3 * CHUNK + 100, 10);
	expect_bits(test, &t, 3);
	/* the last chunk is half a chunk: split at its end */
	trk_mark(&t, 4 * CHUNK, CHUNK / 2);
	KUNIT_EXPECT_PTR_EQ(test, xa_load(&t.d.chunks, 4), VFIO_DIRTY_FULL);
	trk_clear(&t, 4 * CHUNK, CHUNK / 2 - 5);
	l = expect_list(test, &t, 4);
	KUNIT_ASSERT_NOT_NULL(test, l);
	KUNIT_EXPECT_EQ(test, l->n, 5);
	trk_expect(test, &t);
	trk_destroy(&t);
}

/*
 * A random walk of marks, clears and reports on a mapping of four chunks
 * and a half, against a bitmap of what must be dirty: exact while memory
 * is there, never less while 1 in 10 allocations and index stores fail
 * (through the three stubs; lists are then allocated with no spare room,
 * so they grow at every mark).
 */
static struct rnd_state model_rnd;
static unsigned int model_fail_permille;

static bool model_fails(void)
{
	return prandom_u32_state(&model_rnd) % 1000 < model_fail_permille;
}

static unsigned long *alloc_bits_maybe(void)
{
	return model_fails() ? NULL : kzalloc(PAGE_SIZE, GFP_KERNEL);
}

static struct vfio_dirty_list *alloc_list_maybe(unsigned int n)
{
	struct vfio_dirty_list *l;

	if (model_fails())
		return NULL;
	l = kmalloc(struct_size(l, off, n), GFP_KERNEL);
	if (l) {
		l->n = 0;
		l->cap = n;
	}
	return l;
}

static int store_maybe(struct vfio_dirty *d, unsigned long index, void *entry)
{
	if (model_fails())
		return -ENOMEM;
	return xa_err(xa_store(&d->chunks, index, entry, GFP_KERNEL));
}

/* A page: often in a crowded corner or by a chunk boundary. */
static u64 model_page(void)
{
	u32 r = prandom_u32_state(&model_rnd);

	switch (r % 4) {
	case 0:		/* lists fill up and turn into bitmaps */
		return r / 4 % 512;
	case 1:		/* by a chunk boundary (or the end) */
		return clamp_t(s64, (s64)(r / 4 % 5 + 1) * CHUNK - 8 + r / 32 % 16,
			       0, TRK_PAGES - 1);
	default:
		return r / 4 % TRK_PAGES;
	}
}

/* Mostly a few pages, sometimes hundreds (a list turns into bits), or more. */
static u64 model_len(u64 page)
{
	u32 r = prandom_u32_state(&model_rnd);
	u64 len;

	switch (r % 16) {
	case 0:
		len = r / 16 % (2 * CHUNK) + 1;
		break;
	case 1:
		len = r / 16 % 300 + 1;
		break;
	default:
		len = r / 16 % 4 + 1;
	}
	return min(len, TRK_PAGES - page);
}

static void model_step(struct trk *t)
{
	u32 r = prandom_u32_state(&model_rnd) % 32;
	u64 page = model_page(), len = model_len(page);

	if (r < 12) {
		trk_mark(t, page, len);
	} else if (r < 16) {
		if (mark_present(t, page, len))
			bitmap_set(t->ub.want, page, len);
	} else if (r < 28) {
		trk_clear(t, page, len);
	} else if (r < 31) {	/* a chunk clean again: its lists start over */
		page = round_down(page, CHUNK);
		trk_clear(t, page, min_t(u64, CHUNK, TRK_PAGES - page));
	} else {
		vfio_dirty_mark_all(&t->d);
		bitmap_set(t->ub.want, 0, TRK_PAGES);
	}
}

/* Report the whole mapping: exactly @want, or (@at_least) all of it. */
static void model_check(struct kunit *test, struct trk *t, bool at_least,
			int step)
{
	struct vfio_dirty_report rep;
	unsigned long missing = 0;
	struct bitdiff diff;
	size_t i;

	ubitmap_fill(test, &t->ub, 0);
	vfio_dirty_report_init(&rep, t->ub.user, TRK_IOVA,
			       (u64)TRK_PAGES << PAGE_SHIFT, PAGE_SHIFT);
	KUNIT_ASSERT_EQ(test, vfio_dirty_report_map(&rep, &t->d, TRK_IOVA, 0,
						    (u64)TRK_PAGES << PAGE_SHIFT), 0);
	KUNIT_ASSERT_EQ(test, vfio_dirty_report_finish(&rep), 0);
	if (!at_least) {
		KUNIT_ASSERT_EQ_MSG(test, ubitmap_diff(test, &t->ub, &diff), 0,
				    "step %d: " BITDIFF_FMT, step, diff.wrong,
				    diff.word, diff.got, diff.want);
		KUNIT_ASSERT_EQ(test, rep.nset, bitmap_weight(t->ub.want, TRK_PAGES));
		return;
	}
	KUNIT_ASSERT_EQ(test, copy_from_user(t->ub.got, t->ub.user,
					     t->ub.words * sizeof(u64)), 0);
	for (i = 0; i < TRK_PAGES; i++)
		if (test_bit(i, t->ub.want) && !(t->ub.got[i / 64] & BIT_ULL(i % 64)))
			missing++;
	KUNIT_ASSERT_EQ_MSG(test, missing, 0, "step %d: dirty pages not reported",
			    step);
}

static void tracker_model(struct kunit *test)
{
	struct trk t;
	int step;

	prandom_seed_state(&model_rnd, 0x5eed);
	trk_init(test, &t);
	kunit_activate_static_stub(test, vfio_dirty_alloc_bits, alloc_bits_maybe);
	kunit_activate_static_stub(test, vfio_dirty_alloc_list, alloc_list_maybe);
	kunit_activate_static_stub(test, vfio_dirty_store, store_maybe);
	for (step = 0; step < 300; step++) {
		model_step(&t);
		model_check(test, &t, false, step);
	}
	model_fail_permille = 100;
	for (; step < 900; step++) {
		model_step(&t);
		if (step % 4 == 0)
			model_check(test, &t, true, step);
	}
	model_check(test, &t, true, step);
	model_fail_permille = 0;
	trk_clear(&t, 0, TRK_PAGES);
	KUNIT_EXPECT_TRUE(test, vfio_dirty_empty(&t.d));
	for (; step < 1100; step++) {
		model_step(&t);
		model_check(test, &t, false, step);
	}
	trk_destroy(&t);
}

static struct kunit_case vfio_dirty_report_cases[] = {
	KUNIT_CASE_PARAM(report_bit_placement, pgshift_gen_params),
	KUNIT_CASE_PARAM(report_run_placement, pgshift_gen_params),
	KUNIT_CASE(report_clipping),
	KUNIT_CASE(report_partial_last_page),
	KUNIT_CASE(report_folding),
	KUNIT_CASE(report_sparse_and_unordered),
	KUNIT_CASE(report_long_runs),
	KUNIT_CASE(report_top_of_iova_space),
	KUNIT_CASE(report_read_only_bitmap),
	KUNIT_CASE(report_counts_bits),
	{}
};

static struct kunit_suite vfio_dirty_report_suite = {
	.name = "vfio_dirty_report",
	.test_cases = vfio_dirty_report_cases,
};

static struct kunit_case vfio_dirty_tracker_cases[] = {
	KUNIT_CASE(tracker_mark_report),
	KUNIT_CASE(tracker_mark_whole),
	KUNIT_CASE(tracker_run_takes_entries),
	KUNIT_CASE(tracker_windows_converge),
	KUNIT_CASE(tracker_lists),
	KUNIT_CASE(tracker_model),
	KUNIT_CASE(tracker_clear),
	KUNIT_CASE(tracker_split_marks),
	KUNIT_CASE(tracker_mark_present),
	KUNIT_CASE(tracker_mark_present_hint),
	KUNIT_CASE(tracker_no_memory_for_bits),
	KUNIT_CASE(tracker_no_memory_for_index),
	KUNIT_CASE(tracker_failed_report_keeps_bits),
	KUNIT_CASE(tracker_failed_report_mid_chunk),
	{}
};

static struct kunit_suite vfio_dirty_tracker_suite = {
	.name = "vfio_dirty_tracker",
	.test_cases = vfio_dirty_tracker_cases,
};

kunit_test_suites(&vfio_dirty_report_suite, &vfio_dirty_tracker_suite);

MODULE_DESCRIPTION("KUnit tests for the VFIO type1 dirty page tracker");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
