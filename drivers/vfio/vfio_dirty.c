// SPDX-License-Identifier: GPL-2.0-only
/*
 * Dirty page tracking for the VFIO type1 IOMMU backend.
 *
 * What is tracked: one struct vfio_dirty per mapping (struct vfio_dma) holds
 * the pages a device may have written since the last report that covered
 * them: pages written with vfio_dma_rw() and pages unpinned by a vendor
 * driver.  Pages pinned right now are not kept here: type1 marks them at
 * every report, because a device may write a pinned page at any time.
 *
 * What is dirty: a page is dirty when it lies in the mapping's dirty run
 * [run_start, run_end), or when the entry of its chunk (VFIO_DIRTY_CHUNK_PAGES
 * pages, 128 MiB of 4 KiB pages) says so.  A chunk's entry is one of:
 *  - a sorted list of the offsets of its dirty pages, in the smallest kmalloc
 *    object that holds them (8 bytes for one or two pages), for up to
 *    VFIO_DIRTY_LIST_MAX pages (256 bytes);
 *  - past that, a bitmap of the chunk (one page of bits);
 *  - VFIO_DIRTY_FULL when every page of the chunk is dirty (no memory).
 * Chunks without a dirty page have no entry and no memory, so a clean
 * mapping of any size costs nothing, an isolated dirty page costs a small
 * list and its slot in the index, and a dense chunk one bit per page.
 * Lists grow as pages become dirty and turn into a bitmap past
 * VFIO_DIRTY_LIST_MAX; an entry is freed when its chunk is clean.  The
 * fast path of a repeated mark (vfio_dirty_mark_present()) keeps the last
 * entry it looked up; every other call that may change the index forgets
 * it on entry, so it never points at an entry that was replaced or freed.
 *
 * The run holds what is dirty as a whole: the whole mapping at START, a mark
 * of the whole mapping or of more than VFIO_DIRTY_SPLIT_MAX chunks, and a
 * mark that touches the run (the run grows to take it in, and the entries of
 * the chunks it then covers whole are freed).  It costs no memory whatever
 * its size.  A clear of a prefix or a suffix of the run shrinks it exactly,
 * so a user who reads a huge mapping window by window sees each window
 * once, then clean.  A clear strictly inside the run keeps the larger side
 * as the run and stores the smaller one in chunk entries, at most
 * VFIO_DIRTY_SPLIT_MAX of them; when both sides are larger, the run stays
 * whole (more reported).  Chunk entries may overlap the run: their pages
 * are dirty either way.
 *
 * Memory is charged to the active memory cgroup (type1 makes it the one of
 * the mapping's owner).  Allocations neither retry hard nor invoke the OOM
 * killer: when memory cannot be had, the tracker records more (the whole
 * chunk, or the whole mapping), never less.
 *
 * When pages become clean: only in vfio_dirty_clear(), which type1 calls for
 * a range after its report reached the user whole.  A report never changes the
 * tracker, so a failed report loses nothing.
 *
 * Locking: the owner serialises every call (type1 holds iommu->lock); the
 * tracker has no lock of its own.  Every call may sleep: loops over many
 * chunks or words reschedule, and a report stops with -EINTR when the
 * caller got a fatal signal (a failed report changes nothing).
 *
 * Reports: a report writes the dirty state of an IOVA range into a bitmap
 * the user owns.  Bit i stands for the page at iova + (i << pgshift); the
 * user zeroes the bitmap before the call, so words without a set bit are
 * never written.  Bits are set in a small window on the stack and copied
 * out when the report moves on, so a report costs about the number of u64
 * words holding set bits; whole words of long runs are stored straight into
 * the user's bitmap, so a dense report costs one store per u64 word.  A
 * range may be added in any order; a window revisited after it was copied
 * out is merged with what the user memory already holds.
 */

#include <kunit/static_stub.h>
#include <kunit/visibility.h>
#include <linux/bitmap.h>
#include <linux/export.h>
#include <linux/find.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vfio_dirty.h"

#define WIN_BITS	(VFIO_DIRTY_WIN_BYTES * BITS_PER_BYTE)
#define WIN_WORDS	(WIN_BITS / 64)

/* Words of ones stored between two reschedule points of a long run. */
#define VFIO_DIRTY_FILL_WORDS	(PAGE_SIZE / sizeof(u64))

#define VFIO_DIRTY_CHUNK_SHIFT	(PAGE_SHIFT + 3)
#define VFIO_DIRTY_CHUNK_PAGES	BIT_ULL(VFIO_DIRTY_CHUNK_SHIFT)

/* list offsets are u16 */
static_assert(VFIO_DIRTY_CHUNK_SHIFT <= 16);

/* Tracking memory is worth no reclaim storm and no OOM kill: see above. */
#define VFIO_DIRTY_GFP		(GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN)

/* Bits of the chunk pages [first, last] (inclusive) of chunk @c. */
struct vfio_dirty_span {
	u64 base;		/* first page of the chunk */
	unsigned int npages;	/* pages of the chunk inside the mapping */
	unsigned int lo;	/* first bit of the span */
	unsigned int hi;	/* last bit of the span */
};

static struct vfio_dirty_span vfio_dirty_span(struct vfio_dirty *d,
					      unsigned long c, u64 first,
					      u64 last)
{
	struct vfio_dirty_span sp;

	sp.base = (u64)c << VFIO_DIRTY_CHUNK_SHIFT;
	sp.npages = min_t(u64, VFIO_DIRTY_CHUNK_PAGES, d->npages - sp.base);
	sp.lo = max(first, sp.base) - sp.base;
	sp.hi = min(last, sp.base + sp.npages - 1) - sp.base;
	return sp;
}

static bool vfio_dirty_span_whole(const struct vfio_dirty_span *sp)
{
	return !sp->lo && sp->hi == sp->npages - 1;
}

/* A zeroed bitmap for one chunk, or NULL. */
VISIBLE_IF_KUNIT unsigned long *vfio_dirty_alloc_bits(void)
{
	KUNIT_STATIC_STUB_REDIRECT(vfio_dirty_alloc_bits);
	return kzalloc(PAGE_SIZE, VFIO_DIRTY_GFP);
}
EXPORT_SYMBOL_IF_KUNIT(vfio_dirty_alloc_bits);

/* Store @entry for chunk @index; on failure the old entry stays. */
VISIBLE_IF_KUNIT int vfio_dirty_store(struct vfio_dirty *d, unsigned long index,
				      void *entry)
{
	KUNIT_STATIC_STUB_REDIRECT(vfio_dirty_store, d, index, entry);
	return xa_err(xa_store(&d->chunks, index, entry, VFIO_DIRTY_GFP));
}
EXPORT_SYMBOL_IF_KUNIT(vfio_dirty_store);

/* An empty list with room for at least @n offsets, or NULL. */
VISIBLE_IF_KUNIT struct vfio_dirty_list *vfio_dirty_alloc_list(unsigned int n)
{
	size_t size = kmalloc_size_roundup(sizeof(struct vfio_dirty_list) +
					   n * sizeof(u16));
	struct vfio_dirty_list *l;

	KUNIT_STATIC_STUB_REDIRECT(vfio_dirty_alloc_list, n);
	l = kmalloc(size, VFIO_DIRTY_GFP);
	if (l) {
		l->n = 0;
		l->cap = min_t(size_t, (size - sizeof(*l)) / sizeof(u16),
			       VFIO_DIRTY_LIST_MAX);
	}
	return l;
}
EXPORT_SYMBOL_IF_KUNIT(vfio_dirty_alloc_list);

static bool vfio_dirty_is_list(void *entry)
{
	return xa_pointer_tag(entry) == VFIO_DIRTY_LIST_TAG;
}

static void vfio_dirty_free_entry(void *entry)
{
	if (vfio_dirty_is_list(entry))
		kfree(xa_untag_pointer(entry));
	else if (!xa_is_value(entry))
		kfree(entry);
}

/* Index of the first offset of @l that is @off or more. */
static unsigned int vfio_dirty_list_find(const struct vfio_dirty_list *l,
					 unsigned int off)
{
	unsigned int lo = 0, hi = l->n;

	/* pages marked in ascending order are appended in O(1) */
	if (!hi || l->off[hi - 1] < off)
		return hi;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (l->off[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Offsets of @l in [@lo, @hi]. */
static unsigned int vfio_dirty_list_count(const struct vfio_dirty_list *l,
					  unsigned int lo, unsigned int hi)
{
	return vfio_dirty_list_find(l, hi + 1) - vfio_dirty_list_find(l, lo);
}

/*
 * @dst becomes @src (NULL: an empty list) with the offsets [@lo, @hi]
 * added.  @dst may be @src; its room must hold the result.
 */
static void vfio_dirty_list_put(struct vfio_dirty_list *dst,
				const struct vfio_dirty_list *src,
				unsigned int lo, unsigned int hi)
{
	unsigned int n = 0, i = 0, j = 0, k;

	if (src) {
		n = src->n;
		i = vfio_dirty_list_find(src, lo);
		j = vfio_dirty_list_find(src, hi + 1);
		/* the tail first: in place, it may move either way */
		memmove(dst->off + i + (hi - lo + 1), src->off + j,
			(n - j) * sizeof(u16));
		if (dst != src)
			memcpy(dst->off, src->off, i * sizeof(u16));
	}
	for (k = lo; k <= hi; k++)
		dst->off[i + k - lo] = k;
	dst->n = n - (j - i) + (hi - lo + 1);
}

/*
 * Add the offset @off to @l in place: false when @l does not hold it and
 * has no room for it.
 */
static bool vfio_dirty_list_add(struct vfio_dirty_list *l, unsigned int off)
{
	unsigned int i = vfio_dirty_list_find(l, off);

	if (i < l->n && l->off[i] == off)
		return true;
	if (l->n == l->cap)
		return false;
	memmove(l->off + i + 1, l->off + i, (l->n - i) * sizeof(u16));
	l->off[i] = off;
	l->n++;
	return true;
}

/* Take the offsets [@lo, @hi] out of @l. */
static void vfio_dirty_list_del(struct vfio_dirty_list *l, unsigned int lo,
				unsigned int hi)
{
	unsigned int i = vfio_dirty_list_find(l, lo);
	unsigned int j = vfio_dirty_list_find(l, hi + 1);

	memmove(l->off + i, l->off + j, (l->n - j) * sizeof(u16));
	l->n -= j - i;
}

/**
 * vfio_dirty_init() - set up the (clean) dirty state of a mapping
 * @d: the dirty state
 * @size: bytes in the mapping, a multiple of PAGE_SIZE
 *
 * Allocates nothing: memory comes when pages become dirty.
 */
void vfio_dirty_init(struct vfio_dirty *d, u64 size)
{
	xa_init(&d->chunks);
	d->npages = size >> PAGE_SHIFT;
	d->run_start = 0;
	d->run_end = 0;
	d->hint = 0;
	d->hint_entry = NULL;
}
EXPORT_SYMBOL_GPL(vfio_dirty_init);

static void vfio_dirty_free_chunks(struct vfio_dirty *d)
{
	unsigned long c;
	void *entry;

	if (xa_empty(&d->chunks))	/* most mappings: no lock to take */
		return;
	xa_for_each(&d->chunks, c, entry)
		vfio_dirty_free_entry(entry);
	xa_destroy(&d->chunks);
}

/**
 * vfio_dirty_destroy() - forget every dirty page of a mapping, free memory
 * @d: the dirty state; clean and usable again afterwards
 */
void vfio_dirty_destroy(struct vfio_dirty *d)
{
	d->hint_entry = NULL;
	vfio_dirty_free_chunks(d);
	d->run_start = 0;
	d->run_end = 0;
}
EXPORT_SYMBOL_GPL(vfio_dirty_destroy);

static bool vfio_dirty_run_whole(struct vfio_dirty *d)
{
	return !d->run_start && d->run_end == d->npages;
}

/*
 * The run becomes [@start, @end), which holds the old one; the entries of
 * the chunks it covers whole are freed.  The work is bounded by the entries
 * there are, not by the size of the run.
 */
static void vfio_dirty_set_run(struct vfio_dirty *d, u64 start, u64 end)
{
	u64 first = round_up(start, VFIO_DIRTY_CHUNK_PAGES);
	u64 last = end == d->npages ? end : round_down(end, VFIO_DIRTY_CHUNK_PAGES);
	unsigned long c;
	void *entry;

	if (start == d->run_start && end == d->run_end)
		return;
	d->run_start = start;
	d->run_end = end;
	if (vfio_dirty_run_whole(d)) {
		vfio_dirty_free_chunks(d);
		return;
	}
	if (first >= last)
		return;
	xa_for_each_range(&d->chunks, c, entry, first >> VFIO_DIRTY_CHUNK_SHIFT,
			  (last - 1) >> VFIO_DIRTY_CHUNK_SHIFT) {
		xa_erase(&d->chunks, c);
		vfio_dirty_free_entry(entry);
		cond_resched();
	}
}

/**
 * vfio_dirty_mark_all() - mark every page of a mapping dirty
 * @d: the dirty state
 */
void vfio_dirty_mark_all(struct vfio_dirty *d)
{
	d->hint_entry = NULL;
	vfio_dirty_set_run(d, 0, d->npages);
}
EXPORT_SYMBOL_GPL(vfio_dirty_mark_all);

/*
 * Store @entry for chunk @c in place of @old.  Without memory for the
 * index, the whole mapping becomes dirty and @entry is freed.
 */
static void vfio_dirty_replace(struct vfio_dirty *d, unsigned long c,
			       void *old, void *entry)
{
	if (vfio_dirty_store(d, c, entry)) {
		vfio_dirty_free_entry(entry);
		vfio_dirty_mark_all(d);
		return;
	}
	if (old)
		vfio_dirty_free_entry(old);
}

/* Mark the pages of @sp in chunk @c dirty. */
static void vfio_dirty_mark_chunk(struct vfio_dirty *d, unsigned long c,
				  const struct vfio_dirty_span *sp)
{
	void *entry = xa_load(&d->chunks, c), *new = VFIO_DIRTY_FULL;
	unsigned int n = sp->hi - sp->lo + 1;
	struct vfio_dirty_list *l = NULL, *nl;
	unsigned long *bits;

	if (entry == VFIO_DIRTY_FULL)
		return;
	if (vfio_dirty_span_whole(sp))
		goto store;
	if (entry && !vfio_dirty_is_list(entry)) {
		bitmap_set(entry, sp->lo, n);
		return;
	}
	if (entry) {
		l = xa_untag_pointer(entry);
		n += l->n - vfio_dirty_list_count(l, sp->lo, sp->hi);
		if (n <= l->cap) {
			vfio_dirty_list_put(l, l, sp->lo, sp->hi);
			return;
		}
	}
	/* no memory: the whole chunk is dirty */
	if (n <= VFIO_DIRTY_LIST_MAX) {
		nl = vfio_dirty_alloc_list(n);
		if (nl) {
			vfio_dirty_list_put(nl, l, sp->lo, sp->hi);
			new = xa_tag_pointer(nl, VFIO_DIRTY_LIST_TAG);
		}
	} else {
		bits = vfio_dirty_alloc_bits();
		if (bits) {
			unsigned int i;

			for (i = 0; l && i < l->n; i++)
				__set_bit(l->off[i], bits);
			bitmap_set(bits, sp->lo, sp->hi - sp->lo + 1);
			new = bits;
		}
	}
store:
	vfio_dirty_replace(d, c, entry, new);
}

/* Mark pages [first, last] (inclusive, inside the mapping) dirty. */
static void vfio_dirty_mark_pages(struct vfio_dirty *d, u64 first, u64 last)
{
	unsigned long c;

	for (c = first >> VFIO_DIRTY_CHUNK_SHIFT;
	     !vfio_dirty_run_whole(d) && c <= last >> VFIO_DIRTY_CHUNK_SHIFT; c++) {
		struct vfio_dirty_span sp = vfio_dirty_span(d, c, first, last);

		cond_resched();
		vfio_dirty_mark_chunk(d, c, &sp);
	}
}

/**
 * vfio_dirty_mark_present() - mark a range dirty if that needs no memory
 * @d: the dirty state
 * @offset: first byte of the range, from the start of the mapping
 * @len: bytes in the range, not zero; the range lies inside the mapping
 *
 * The fast path of a mark that repeats, such as a driver unpinning pages
 * it pinned before: when the range lies in the run, or in one chunk whose
 * entry can take it as it is (a bitmap, a list with room, a whole chunk),
 * marks it.  Allocates nothing.  It keeps the entry it found (@d->hint):
 * a driver that unpins the pages of one chunk in turn looks it up once.
 *
 * Return: true if the range is marked, false if vfio_dirty_mark() must do
 * it (nothing was changed then).
 */
bool vfio_dirty_mark_present(struct vfio_dirty *d, u64 offset, u64 len)
{
	u64 first = offset >> PAGE_SHIFT, last = (offset + len - 1) >> PAGE_SHIFT;
	unsigned long c = first >> VFIO_DIRTY_CHUNK_SHIFT;
	unsigned int lo, hi;
	struct vfio_dirty_list *l;
	void *entry;

	if (d->run_start <= first && last < d->run_end)
		return true;
	if (c != last >> VFIO_DIRTY_CHUNK_SHIFT)
		return false;
	entry = c == d->hint ? d->hint_entry : NULL;
	if (!entry) {
		entry = xa_load(&d->chunks, c);
		if (!entry)
			return false;
		d->hint = c;
		d->hint_entry = entry;
	}
	if (entry == VFIO_DIRTY_FULL)
		return true;
	/* the range lies inside the mapping, in chunk @c */
	lo = first - ((u64)c << VFIO_DIRTY_CHUNK_SHIFT);
	hi = lo + (last - first);
	if (!vfio_dirty_is_list(entry)) {
		if (lo == hi)
			__set_bit(lo, entry);
		else
			bitmap_set(entry, lo, hi - lo + 1);
		return true;
	}
	l = xa_untag_pointer(entry);
	if (lo == hi)			/* one search, one move */
		return vfio_dirty_list_add(l, lo);
	if (l->n + (hi - lo + 1) - vfio_dirty_list_count(l, lo, hi) > l->cap)
		return false;
	vfio_dirty_list_put(l, l, lo, hi);
	return true;
}
EXPORT_SYMBOL_GPL(vfio_dirty_mark_present);

/**
 * vfio_dirty_mark() - mark a byte range of a mapping dirty
 * @d: the dirty state
 * @offset: first byte of the range, from the start of the mapping
 * @len: bytes in the range; the range lies inside the mapping
 *
 * Every page the range touches becomes dirty.  Never fails: without memory
 * the tracker marks more.
 */
void vfio_dirty_mark(struct vfio_dirty *d, u64 offset, u64 len)
{
	u64 first = offset >> PAGE_SHIFT, last;
	bool has_run = d->run_start != d->run_end;

	if (!len)
		return;
	d->hint_entry = NULL;
	last = (offset + len - 1) >> PAGE_SHIFT;
	/* touching the run: the run takes it in, exactly */
	if (has_run && first <= d->run_end && last + 1 >= d->run_start) {
		vfio_dirty_set_run(d, min(first, d->run_start),
				   max(last + 1, d->run_end));
		return;
	}
	/*
	 * Bounded work under the owner's lock (see the top of this file): a
	 * huge range becomes the run; beside another run, the run spans both
	 * and what lies between (more reported, never less).
	 */
	if ((!first && last == d->npages - 1) ||
	    (last >> VFIO_DIRTY_CHUNK_SHIFT) - (first >> VFIO_DIRTY_CHUNK_SHIFT) >=
	    VFIO_DIRTY_SPLIT_MAX) {
		vfio_dirty_set_run(d, has_run ? min(first, d->run_start) : first,
				   has_run ? max(last + 1, d->run_end) : last + 1);
		return;
	}
	vfio_dirty_mark_pages(d, first, last);
}
EXPORT_SYMBOL_GPL(vfio_dirty_mark);

/*
 * A clear of pages [first, last] strictly inside the run: the larger side
 * stays the run, the smaller one goes to chunk entries.  Returns false when
 * both sides are too large for that (the run stays as it is).
 */
static bool vfio_dirty_split_run(struct vfio_dirty *d, u64 first, u64 last)
{
	u64 start = d->run_start, end = d->run_end;
	u64 left = ((first - 1) >> VFIO_DIRTY_CHUNK_SHIFT) -
		   (start >> VFIO_DIRTY_CHUNK_SHIFT);
	u64 right = ((end - 1) >> VFIO_DIRTY_CHUNK_SHIFT) -
		    ((last + 1) >> VFIO_DIRTY_CHUNK_SHIFT);

	if (min(left, right) >= VFIO_DIRTY_SPLIT_MAX)
		return false;
	/* without memory, mark_pages() makes the whole mapping the run */
	if (left <= right) {
		d->run_start = last + 1;
		vfio_dirty_mark_pages(d, start, first - 1);
	} else {
		d->run_end = first;
		vfio_dirty_mark_pages(d, last + 1, end - 1);
	}
	return true;
}

/* Pages @sp of a VFIO_DIRTY_FULL chunk @c become clean, the others stay. */
static void vfio_dirty_split_full(struct vfio_dirty *d, unsigned long c,
				  const struct vfio_dirty_span *sp)
{
	unsigned int left = sp->npages - (sp->hi - sp->lo + 1);
	struct vfio_dirty_list *l;
	unsigned long *bits;
	void *new;

	if (left <= VFIO_DIRTY_LIST_MAX) {
		l = vfio_dirty_alloc_list(left);
		if (!l)
			return;		/* the chunk stays dirty */
		if (sp->lo)
			vfio_dirty_list_put(l, NULL, 0, sp->lo - 1);
		if (sp->hi + 1 < sp->npages)
			vfio_dirty_list_put(l, sp->lo ? l : NULL, sp->hi + 1,
					    sp->npages - 1);
		new = xa_tag_pointer(l, VFIO_DIRTY_LIST_TAG);
	} else {
		bits = vfio_dirty_alloc_bits();
		if (!bits)
			return;
		bitmap_set(bits, 0, sp->npages);
		bitmap_clear(bits, sp->lo, sp->hi - sp->lo + 1);
		new = bits;
	}
	/* replacing an entry allocates nothing; if it fails, it stays dirty */
	if (vfio_dirty_store(d, c, new))
		vfio_dirty_free_entry(new);
}

/**
 * vfio_dirty_clear() - mark a page range of a mapping clean
 * @d: the dirty state
 * @offset: first byte of the range, from the start of the mapping, page
 *	    aligned
 * @len: bytes in the range, a multiple of PAGE_SIZE; inside the mapping
 *
 * Called after the range was reported.  Pages outside the range keep their
 * state.  Splitting a whole chunk, or the run where the range lies strictly
 * inside it, needs memory; without it more than the range stays dirty.
 */
void vfio_dirty_clear(struct vfio_dirty *d, u64 offset, u64 len)
{
	u64 first = offset >> PAGE_SHIFT, last = (offset + len - 1) >> PAGE_SHIFT;
	struct vfio_dirty_list *l;
	unsigned long c;
	void *entry;

	d->hint_entry = NULL;
	if (!len || vfio_dirty_empty(d))
		return;
	if (!first && last == d->npages - 1) {
		vfio_dirty_destroy(d);
		return;
	}
	if (first < d->run_end && last >= d->run_start) {
		if (first <= d->run_start && last + 1 >= d->run_end) {
			d->run_start = 0;
			d->run_end = 0;
		} else if (first <= d->run_start) {
			d->run_start = last + 1;
		} else if (last + 1 >= d->run_end) {
			d->run_end = first;
		} else if (!vfio_dirty_split_run(d, first, last)) {
			return;		/* a huge run stays: report more */
		}
	}
	xa_for_each_range(&d->chunks, c, entry, first >> VFIO_DIRTY_CHUNK_SHIFT,
			  last >> VFIO_DIRTY_CHUNK_SHIFT) {
		struct vfio_dirty_span sp = vfio_dirty_span(d, c, first, last);

		cond_resched();
		if (vfio_dirty_span_whole(&sp)) {
			xa_erase(&d->chunks, c);
			vfio_dirty_free_entry(entry);
		} else if (entry == VFIO_DIRTY_FULL) {
			vfio_dirty_split_full(d, c, &sp);
		} else if (vfio_dirty_is_list(entry)) {
			l = xa_untag_pointer(entry);
			vfio_dirty_list_del(l, sp.lo, sp.hi);
			if (!l->n) {
				xa_erase(&d->chunks, c);
				kfree(l);
			}
		} else {
			bitmap_clear(entry, sp.lo, sp.hi - sp.lo + 1);
			if (bitmap_empty(entry, sp.npages)) {
				xa_erase(&d->chunks, c);
				kfree(entry);
			}
		}
	}
}
EXPORT_SYMBOL_GPL(vfio_dirty_clear);

/**
 * vfio_dirty_empty() - whether no page of a mapping is dirty
 * @d: the dirty state
 *
 * Return: true when nothing is marked and no memory is held.
 */
bool vfio_dirty_empty(struct vfio_dirty *d)
{
	return d->run_start == d->run_end && xa_empty(&d->chunks);
}
EXPORT_SYMBOL_GPL(vfio_dirty_empty);

/**
 * vfio_dirty_report_init() - start a report into a user bitmap
 * @rep: the report
 * @ubitmap: the user's zeroed bitmap, large enough for @size >> @pgshift bits
 *	     rounded up to whole u64 words (the caller checks this)
 * @iova: IOVA of the page bit 0 stands for, aligned to 1 << @pgshift
 * @size: bytes of IOVA space the report covers, not zero
 * @pgshift: log2 of the bitmap's page size
 *
 * A report holds no resources: one that is not finished is simply dropped.
 */
void vfio_dirty_report_init(struct vfio_dirty_report *rep, u64 __user *ubitmap,
			    u64 iova, u64 size, unsigned int pgshift)
{
	/* @win is left as it is: words enter it zeroed (see _win_use()) */
	rep->ubitmap = ubitmap;
	rep->iova = iova;
	rep->nbits = (size >> pgshift) + !!(size & ((1ULL << pgshift) - 1));
	rep->pgshift = pgshift;
	rep->win_base = 0;
	rep->lo = WIN_WORDS;
	rep->hi = 0;
	rep->flushed = 0;
	rep->nset = 0;
}
EXPORT_SYMBOL_GPL(vfio_dirty_report_init);

static int vfio_dirty_report_flush(struct vfio_dirty_report *rep)
{
	u64 *words = (u64 *)rep->win;
	u64 __user *dst;
	unsigned int i;

	if (rep->lo >= rep->hi)
		return 0;
#if BITS_PER_LONG == 32 && defined(__BIG_ENDIAN)
	/* bitmap_set() counts in 32-bit words: put each u64 in user layout. */
	for (i = rep->lo; i < rep->hi; i++)
		words[i] = ror64(words[i], 32);
#endif
	dst = rep->ubitmap + rep->win_base / 64;
	if (rep->win_base < rep->flushed) {
		/* This window was copied out before: keep what it holds. */
		for (i = rep->lo; i < rep->hi; i++) {
			u64 old;

			if (get_user(old, dst + i))
				return -EFAULT;
			rep->nset += hweight64(words[i] & ~old);
			words[i] |= old;
		}
	} else {
		for (i = rep->lo; i < rep->hi; i++)
			rep->nset += hweight64(words[i]);
	}
	if (copy_to_user(dst + rep->lo, words + rep->lo,
			 (rep->hi - rep->lo) * sizeof(u64)))
		return -EFAULT;
	rep->flushed = max(rep->flushed, rep->win_base + rep->hi * 64ULL);
	rep->lo = WIN_WORDS;
	rep->hi = 0;
	return 0;
}

/*
 * Words [@a, @b] of the window are about to get bits: words outside
 * [lo, hi) hold garbage, so zero those of [@a, @b] first.  A report never
 * zeroes the whole window: most calls touch a word or two of it.
 */
static void vfio_dirty_report_win_use(struct vfio_dirty_report *rep,
				      unsigned int a, unsigned int b)
{
	u64 *words = (u64 *)rep->win;

	if (rep->lo >= rep->hi) {
		memset(words + a, 0, (b - a + 1) * sizeof(u64));
		rep->lo = a;
		rep->hi = b + 1;
		return;
	}
	if (a < rep->lo) {
		memset(words + a, 0, (rep->lo - a) * sizeof(u64));
		rep->lo = a;
	}
	if (b >= rep->hi) {
		memset(words + rep->hi, 0, (b + 1 - rep->hi) * sizeof(u64));
		rep->hi = b + 1;
	}
}

/* Set @nwords whole words from @word straight in user memory. */
static int vfio_dirty_report_fill(struct vfio_dirty_report *rep, u64 word,
				  u64 nwords)
{
	int ret = vfio_dirty_report_flush(rep);
	u64 i, old;

	if (ret)
		return ret;
	/* bits this report set before in these words count once */
	rep->nset += nwords * 64;
	for (i = word; i < min(word + nwords, rep->flushed / 64); i++) {
		if (get_user(old, rep->ubitmap + i))
			return -EFAULT;
		rep->nset -= hweight64(old);
	}
	/* a window over these words is merged when it is copied out */
	rep->flushed = max(rep->flushed, (word + nwords) * 64);
	while (nwords) {
		u64 n = min_t(u64, nwords, VFIO_DIRTY_FILL_WORDS);
		u64 __user *dst = rep->ubitmap + word;

		/* plain stores: no source to read, no string instruction */
		if (!user_access_begin(dst, n * sizeof(u64)))
			return -EFAULT;
		for (i = 0; i < n; i++)
			unsafe_put_user(~0ULL, dst + i, efault);
		user_access_end();
		word += n;
		nwords -= n;
		if (nwords) {
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	return 0;

efault:
	user_access_end();
	return -EFAULT;
}

/**
 * vfio_dirty_report_add() - report an IOVA range dirty
 * @rep: the report
 * @iova: first byte of the dirty range
 * @size: length of the dirty range in bytes
 *
 * Sets the bit of every bitmap page that overlaps the range; the parts of
 * the range outside the report are ignored.
 *
 * Return: 0, -EFAULT if the user's bitmap could not be written, or
 * -EINTR if the caller got a fatal signal.
 */
int vfio_dirty_report_add(struct vfio_dirty_report *rep, u64 iova, u64 size)
{
	u64 last_iova = rep->iova + ((rep->nbits << rep->pgshift) - 1);
	u64 first, last;
	int ret;

	if (!size || iova > last_iova || iova + (size - 1) < rep->iova)
		return 0;
	first = (max(iova, rep->iova) - rep->iova) >> rep->pgshift;
	last = (min(iova + (size - 1), last_iova) - rep->iova) >> rep->pgshift;

	while (first <= last) {
		unsigned int off, n;

		/* whole words of a long run go straight to the user */
		if (!(first % 64) && last - first + 1 >= 2 * 64) {
			u64 nwords = (last - first + 1) / 64;

			ret = vfio_dirty_report_fill(rep, first / 64, nwords);
			if (ret)
				return ret;
			first += nwords * 64;
			continue;
		}
		if (first < rep->win_base || first - rep->win_base >= WIN_BITS) {
			ret = vfio_dirty_report_flush(rep);
			if (ret)
				return ret;
			rep->win_base = round_down(first, WIN_BITS);
		}
		off = first - rep->win_base;
		n = min_t(u64, last - first + 1, WIN_BITS - off);
		/* the head of a long run: up to its first whole word */
		if ((first % 64) && last - first + 1 >= 3 * 64)
			n = 64 - first % 64;
		vfio_dirty_report_win_use(rep, off / 64, (off + n - 1) / 64);
		bitmap_set(rep->win, off, n);
		first += n;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(vfio_dirty_report_add);

/**
 * vfio_dirty_report_finish() - copy out what is left of a report
 * @rep: the report
 *
 * Return: 0, or -EFAULT if the user's bitmap could not be written.
 */
int vfio_dirty_report_finish(struct vfio_dirty_report *rep)
{
	return vfio_dirty_report_flush(rep);
}
EXPORT_SYMBOL_GPL(vfio_dirty_report_finish);

/* Report the pages of @sp that list @l holds, run by run. */
static int vfio_dirty_report_list(struct vfio_dirty_report *rep,
				  const struct vfio_dirty_list *l, u64 iova,
				  const struct vfio_dirty_span *sp)
{
	unsigned int i = vfio_dirty_list_find(l, sp->lo), e;
	int ret;

	for (; i < l->n && l->off[i] <= sp->hi; i = e) {
		for (e = i + 1; e < l->n && l->off[e] == l->off[e - 1] + 1 &&
		     l->off[e] <= sp->hi; e++)
			;
		ret = vfio_dirty_report_add(rep, iova + ((u64)l->off[i] << PAGE_SHIFT),
					    (u64)(e - i) << PAGE_SHIFT);
		if (ret)
			return ret;
	}
	return 0;
}

/* Report the pages of @sp that bitmap @bits holds, run by run. */
static int vfio_dirty_report_bits(struct vfio_dirty_report *rep,
				  const unsigned long *bits, u64 iova,
				  const struct vfio_dirty_span *sp)
{
	unsigned int b = sp->lo, e;
	int ret;

	for_each_set_bitrange_from(b, e, bits, sp->hi + 1) {
		ret = vfio_dirty_report_add(rep, iova + ((u64)b << PAGE_SHIFT),
					    (u64)(e - b) << PAGE_SHIFT);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * vfio_dirty_report_map() - add a mapping's dirty pages to a report
 * @rep: the report
 * @d: the mapping's dirty state
 * @map_iova: IOVA of the mapping
 * @offset: first byte of the part to report, from the start of the mapping
 * @len: bytes of the part to report, not zero; inside the mapping
 *
 * Changes nothing in @d.
 *
 * Return: 0, -EFAULT if the user's bitmap could not be written, or
 * -EINTR if the caller got a fatal signal.
 */
int vfio_dirty_report_map(struct vfio_dirty_report *rep, struct vfio_dirty *d,
			  u64 map_iova, u64 offset, u64 len)
{
	u64 first = offset >> PAGE_SHIFT, last = (offset + len - 1) >> PAGE_SHIFT;
	unsigned long c;
	void *entry;
	int ret;

	if (first < d->run_end && last >= d->run_start) {
		u64 a = max(first, d->run_start), b = min(last, d->run_end - 1);

		ret = vfio_dirty_report_add(rep, map_iova + (a << PAGE_SHIFT),
					    (b - a + 1) << PAGE_SHIFT);
		if (ret || (a == first && b == last))
			return ret;
	}
	if (xa_empty(&d->chunks))
		return 0;

	xa_for_each_range(&d->chunks, c, entry, first >> VFIO_DIRTY_CHUNK_SHIFT,
			  last >> VFIO_DIRTY_CHUNK_SHIFT) {
		struct vfio_dirty_span sp = vfio_dirty_span(d, c, first, last);
		u64 iova = map_iova + (sp.base << PAGE_SHIFT);

		cond_resched();
		if (entry == VFIO_DIRTY_FULL)
			ret = vfio_dirty_report_add(rep, iova + ((u64)sp.lo << PAGE_SHIFT),
						    (u64)(sp.hi - sp.lo + 1) << PAGE_SHIFT);
		else if (vfio_dirty_is_list(entry))
			ret = vfio_dirty_report_list(rep, xa_untag_pointer(entry),
						     iova, &sp);
		else
			ret = vfio_dirty_report_bits(rep, entry, iova, &sp);
		if (ret)
			return ret;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(vfio_dirty_report_map);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Dirty page tracker of the VFIO type1 IOMMU backend");
