/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Dirty page tracking for the VFIO type1 IOMMU backend.
 *
 * See vfio_dirty.c for the invariants.
 */
#ifndef __VFIO_DIRTY_H
#define __VFIO_DIRTY_H

#include <linux/types.h>
#include <linux/xarray.h>

/*
 * The entry of a chunk with dirty pages, in struct vfio_dirty's @chunks:
 *  - VFIO_DIRTY_FULL: every page of the chunk is dirty;
 *  - a struct vfio_dirty_list tagged VFIO_DIRTY_LIST_TAG (xa_tag_pointer()):
 *    the offsets of the dirty pages, for up to VFIO_DIRTY_LIST_MAX of them;
 *  - an untagged pointer: a bitmap of the chunk's pages (one page of bits).
 */
#define VFIO_DIRTY_FULL		xa_mk_value(1)
#define VFIO_DIRTY_LIST_TAG	1
#define VFIO_DIRTY_LIST_MAX	126	/* 256 bytes; past it, a bitmap */

/* Chunks a mark or a clear may store at once: 8 TiB of 4 KiB pages. */
#define VFIO_DIRTY_SPLIT_MAX	BIT(16)

/**
 * struct vfio_dirty_list - the dirty pages of a chunk, as a list
 * @n: offsets in @off
 * @cap: room in @off (the allocation, rounded up by kmalloc)
 * @off: page offsets inside the chunk, sorted, without duplicates
 */
struct vfio_dirty_list {
	u16 n;
	u16 cap;
	u16 off[] __counted_by(cap);
};

/**
 * struct vfio_dirty - dirty state of one mapping (struct vfio_dma)
 * @chunks: chunk index -> its entry (see above); a chunk with no dirty page
 *	    has no entry
 * @npages: pages (PAGE_SIZE) in the mapping
 * @run_start: first page of the dirty run
 * @run_end: one past the last page of the dirty run; @run_start ==
 *	     @run_end (both 0) when there is none
 * @hint: the chunk of @hint_entry
 * @hint_entry: the entry of chunk @hint as vfio_dirty_mark_present() last
 *		found it, or NULL: a lookup it skips when a driver marks the
 *		pages of one chunk in turn; every other call that may change
 *		@chunks forgets it
 *
 * A page is dirty when it lies in the run or its chunk's entry says so.
 */
struct vfio_dirty {
	struct xarray chunks;
	u64 npages;
	u64 run_start;
	u64 run_end;
	unsigned long hint;
	void *hint_entry;
};

/*
 * Bytes of the report window; it lives on the stack of the reporter, where
 * kernels built with CONFIG_INIT_STACK_ALL_ZERO clear it at each report:
 * keep it small.
 */
#define VFIO_DIRTY_WIN_BYTES	128

/**
 * struct vfio_dirty_report - writes dirty ranges into a user's bitmap
 * @ubitmap: the user's bitmap, @nbits bits in whole u64 words, zeroed by
 *	     the user before the call
 * @iova: IOVA of the page that bit 0 stands for
 * @nbits: number of pages (bits) the report covers
 * @pgshift: log2 of the bitmap's page size
 * @win: a window of output bits, in user (u64 word) layout; only the words
 *	 [@lo, @hi) are defined, the others are zeroed as bits enter them
 * @win_base: output bit held by bit 0 of @win, a multiple of the window size
 * @lo: first u64 word of @win in use (WIN_WORDS when none is)
 * @hi: one past the last u64 word of @win in use (0 when none is)
 * @flushed: one past the highest output bit written to user memory so far
 * @nset: bits the report set in user memory so far, each counted once (in
 *	  a bitmap the user zeroed)
 *
 * Output bits are gathered in a small window and copied out when the
 * report moves past it, so a sparse report writes only the words that hold
 * set bits and a dense one copies whole runs of words.  Nothing is
 * allocated.
 */
struct vfio_dirty_report {
	u64 __user *ubitmap;
	u64 iova;
	u64 nbits;
	unsigned int pgshift;
	unsigned long win[VFIO_DIRTY_WIN_BYTES / sizeof(unsigned long)];
	u64 win_base;
	unsigned int lo;
	unsigned int hi;
	u64 flushed;
	u64 nset;
};

void vfio_dirty_init(struct vfio_dirty *d, u64 size);
void vfio_dirty_destroy(struct vfio_dirty *d);
void vfio_dirty_mark(struct vfio_dirty *d, u64 offset, u64 len);
bool vfio_dirty_mark_present(struct vfio_dirty *d, u64 offset, u64 len);
void vfio_dirty_mark_all(struct vfio_dirty *d);
void vfio_dirty_clear(struct vfio_dirty *d, u64 offset, u64 len);
bool vfio_dirty_empty(struct vfio_dirty *d);

void vfio_dirty_report_init(struct vfio_dirty_report *rep, u64 __user *ubitmap,
			    u64 iova, u64 size, unsigned int pgshift);
int vfio_dirty_report_add(struct vfio_dirty_report *rep, u64 iova, u64 size);
int vfio_dirty_report_finish(struct vfio_dirty_report *rep);
int vfio_dirty_report_map(struct vfio_dirty_report *rep, struct vfio_dirty *d,
			  u64 map_iova, u64 offset, u64 len);

#if IS_ENABLED(CONFIG_KUNIT)
unsigned long *vfio_dirty_alloc_bits(void);
struct vfio_dirty_list *vfio_dirty_alloc_list(unsigned int n);
int vfio_dirty_store(struct vfio_dirty *d, unsigned long index, void *entry);
#endif

#endif /* __VFIO_DIRTY_H */
