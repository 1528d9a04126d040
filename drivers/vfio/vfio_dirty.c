// SPDX-License-Identifier: GPL-2.0-only
/*
 * Dirty page tracking for the VFIO type1 IOMMU backend.
 *
 * Reports: a report writes the dirty state of an IOVA range into a bitmap
 * the user owns.  Bit i stands for the page at iova + (i << pgshift); the
 * user zeroes the bitmap before the call, so words without a set bit are
 * never written.  Bits are set in a one-page kernel window and copied out
 * when the report moves on, so a report costs about the number of u64 words
 * holding set bits, and a dense one copies whole runs of words at once.  A
 * range may be added in any order; a window revisited after it was copied
 * out is merged with what the user memory already holds.  Nothing in the
 * tracker changes while a report is written, so a report that faults on
 * the user's bitmap leaves every dirty bit in place for the next one.
 */

#include <linux/bitmap.h>
#include <linux/export.h>
#include <linux/minmax.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vfio_dirty.h"

#define WIN_BITS	(PAGE_SIZE * BITS_PER_BYTE)
#define WIN_WORDS	(WIN_BITS / 64)

/**
 * vfio_dirty_report_init() - start a report into a user bitmap
 * @rep: the report
 * @ubitmap: the user's zeroed bitmap, large enough for @size >> @pgshift bits
 *	     rounded up to whole u64 words (the caller checks this)
 * @iova: IOVA of the page bit 0 stands for, aligned to 1 << @pgshift
 * @size: bytes of IOVA space the report covers, not zero
 * @pgshift: log2 of the bitmap's page size
 *
 * Return: 0, or -ENOMEM.
 */
int vfio_dirty_report_init(struct vfio_dirty_report *rep, u64 __user *ubitmap,
			   u64 iova, u64 size, unsigned int pgshift)
{
	*rep = (struct vfio_dirty_report) {
		.ubitmap = ubitmap,
		.iova = iova,
		.nbits = (size >> pgshift) + !!(size & ((1ULL << pgshift) - 1)),
		.pgshift = pgshift,
		.lo = WIN_WORDS,
	};
	rep->win = kzalloc(PAGE_SIZE, GFP_KERNEL);
	return rep->win ? 0 : -ENOMEM;
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
			words[i] |= old;
		}
	}
	if (copy_to_user(dst + rep->lo, words + rep->lo,
			 (rep->hi - rep->lo) * sizeof(u64)))
		return -EFAULT;
	memset(words + rep->lo, 0, (rep->hi - rep->lo) * sizeof(u64));
	rep->flushed = max(rep->flushed, rep->win_base + rep->hi * 64ULL);
	rep->lo = WIN_WORDS;
	rep->hi = 0;
	return 0;
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
 * Return: 0, or -EFAULT if the user's bitmap could not be written.
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

		if (first < rep->win_base || first - rep->win_base >= WIN_BITS) {
			ret = vfio_dirty_report_flush(rep);
			if (ret)
				return ret;
			rep->win_base = round_down(first, WIN_BITS);
		}
		off = first - rep->win_base;
		n = min_t(u64, last - first + 1, WIN_BITS - off);
		bitmap_set(rep->win, off, n);
		rep->lo = min(rep->lo, off / 64);
		rep->hi = max(rep->hi, (off + n - 1) / 64 + 1);
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

/**
 * vfio_dirty_report_destroy() - free a report's resources
 * @rep: the report, initialised or not
 */
void vfio_dirty_report_destroy(struct vfio_dirty_report *rep)
{
	kfree(rep->win);
	rep->win = NULL;
}
EXPORT_SYMBOL_GPL(vfio_dirty_report_destroy);
