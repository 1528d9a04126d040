// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fuzzer's model of a container with a migdev device: its mappings,
 * the pages the device pinned and the pages it wrote, what a DMA command
 * does and which pages a dirty report must and may hold.  See
 * vfio_mig_fuzz.h.
 */
#include "../../kselftest.h"
#include <vfio_mig_fuzz.h>

void m_bad_mem(struct model *m, const void *lo, const void *hi,
	       bool readable)
{
	m->bad[m->nbad].lo = (uintptr_t)lo;
	m->bad[m->nbad].hi = (uintptr_t)hi;
	m->bad[m->nbad++].readable = readable;
}

/* The user page at @uaddr: 0 writable, 1 read-only, 2 not readable. */
static int m_user_kind(struct model *m, uint64_t uaddr)
{
	int i;

	for (i = 0; i < m->nbad; i++)
		if (uaddr >= m->bad[i].lo && uaddr < m->bad[i].hi)
			return m->bad[i].readable ? 1 : 2;
	return 0;
}

int m_find(struct model *m, uint64_t iova)
{
	int i;

	for (i = 0; i < m->nmaps; i++)
		if (iova >= m->map[i].iova && iova - m->map[i].iova < m->map[i].size)
			return i;
	return -1;
}

int m_overlap(struct model *m, uint64_t iova, uint64_t size)
{
	int i;

	for (i = 0; i < m->nmaps; i++)
		if (iova < m->map[i].iova + m->map[i].size &&
		    m->map[i].iova < iova + size)
			return i;
	return -1;
}

static bool fz_in_win(uint64_t iova)
{
	return iova >= FZ_WIN_IOVA && iova < FZ_WIN_END;
}

uint64_t fz_pg(uint64_t iova)
{
	return (iova - FZ_WIN_IOVA) / VFIO_MIG_PAGE_4K;
}

/* The page at @iova is in a mapping a device may read and write. */
static bool m_rw(struct model *m, uint64_t iova)
{
	int i = m_find(m, iova);

	return i >= 0 && (m->map[i].flags & FZ_RW) == FZ_RW &&
	       !m_user_kind(m, m->map[i].vaddr + iova - m->map[i].iova);
}

struct mapping *m_add(struct model *m, uint64_t iova, uint64_t size,
		      uint64_t vaddr, uint32_t flags)
{
	struct mapping *p = &m->map[m->nmaps++];

	p->iova = iova;
	p->size = size;
	p->vaddr = vaddr;
	p->flags = flags;
	return p;
}

void m_unpin(struct model *m, uint64_t iova, uint64_t size)
{
	uint64_t a;

	for (a = FZ_WIN_IOVA; a < FZ_WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (a < iova || a - iova >= size || !m->pinned[fz_pg(a)])
			continue;
		m->npinned -= m->pinned[fz_pg(a)];
		m->pinned[fz_pg(a)] = 0;
		if (m->tracking && !m->precise)	/* unpinned since the last report */
			m->may[fz_pg(a)] = 1;
	}
}

void m_remove(struct model *m, int i)
{
	struct mapping *p = &m->map[i];
	uint64_t a;

	m_unpin(m, p->iova, p->size);
	for (a = FZ_WIN_IOVA; a < FZ_WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (a >= p->iova && a - p->iova < p->size) {
			m->must[fz_pg(a)] = 0;
			m->may[fz_pg(a)] = 0;
		}
	}
	m->map[i] = m->map[--m->nmaps];
}

/*
 * The device wrote the page at @iova (@must: FZ_MUST_WRITTEN, or
 * FZ_MUST_PART_WRITTEN by a command that failed after it), or may have
 * (FZ_MUST_NOT).
 */
static void m_dirty(struct model *m, uint64_t iova, int must)
{
	if (!m->tracking || !fz_in_win(iova))
		return;
	m->may[fz_pg(iova)] = 1;
	if (must > m->must[fz_pg(iova)])
		m->must[fz_pg(iova)] = must;
}

void m_synced(struct model *m)
{
	uint64_t i;

	for (i = 0; i < FZ_WIN_PAGES; i++) {
		if (m->logged[i] && m->tracking &&
		    m_find(m, FZ_WIN_IOVA + i * VFIO_MIG_PAGE_4K) >= 0)
			m->may[i] = 1;
		m->logged[i] = 0;
	}
}

void m_reported(struct model *m, uint64_t iova, uint64_t size)
{
	uint64_t a;

	for (a = FZ_WIN_IOVA; a < FZ_WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (a < iova || a - iova >= size)
			continue;
		m->may[fz_pg(a)] = m->pinned[fz_pg(a)] && !m->precise;
		m->must[fz_pg(a)] = m->may[fz_pg(a)];
	}
}

void m_start(struct model *m)
{
	uint64_t i;

	if (m->tracking)
		return;		/* repeating START is harmless */
	m->tracking = true;
	for (i = 0; i < FZ_WIN_PAGES; i++) {
		m->may[i] = m->pinned[i] && !m->precise;
		m->must[i] = m->may[i];
	}
}

void m_stop(struct model *m)
{
	m->tracking = false;
	memset(m->must, 0, sizeof(m->must));
	memset(m->may, 0, sizeof(m->may));
}

const char * const fz_dma_names[FZ_NR_DMA] = {
	"pin", "rw", "keep", "release", "kept", "frob",
};

/* migdev's command number for a DMA_* */
const uint32_t fz_dma_cmds[FZ_NR_DMA] = {
	MIGDEV_CMD_WRITE_PIN, MIGDEV_CMD_WRITE_RW, MIGDEV_CMD_PIN,
	MIGDEV_CMD_UNPIN, MIGDEV_CMD_WRITE_KEPT, 0,
};

/* The first page of [iova, iova + len) the device cannot pin, or ~0. */
static uint64_t m_first_bad(struct model *m, uint64_t iova, uint64_t len)
{
	uint64_t a;

	for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < iova + len; a += VFIO_MIG_PAGE_4K)
		if (!m_rw(m, a))
			return a;
	return ~0ULL;
}

int m_dma_predict(struct model *m, int cmd, uint64_t iova, uint64_t len)
{
	uint64_t a, bad;

	if (cmd == FZ_DMA_RELEASE)
		return 0;
	if (cmd == FZ_DMA_BOGUS || !len || len > FZ_MAX_DMA || iova + len < iova)
		return -EINVAL;
	if (cmd == FZ_DMA_KEPT) {
		for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < iova + len; a += VFIO_MIG_PAGE_4K)
			if (!fz_in_win(a) || !m->pinned[fz_pg(a)])
				return -EFAULT;
		return 0;
	}
	bad = m_first_bad(m, iova, len);
	if (bad == ~0ULL)
		return 0;
	if (m_find(m, bad) < 0)
		return -EINVAL;
	/* not readable and writable for the device, or not for the user */
	return (m->map[m_find(m, bad)].flags & FZ_RW) != FZ_RW ? -EPERM : -EFAULT;
}

void m_dma_apply(struct model *m, int cmd, uint64_t iova, uint64_t len,
		 int ret, const uint8_t *wrote)
{
	uint64_t a, end = iova + len, bad;

	if (cmd == FZ_DMA_RELEASE) {
		m_unpin(m, 0, ~0ULL);
		return;
	}
	if (cmd == FZ_DMA_BOGUS || !len || len > FZ_MAX_DMA || end < iova)
		return;
	if (cmd == FZ_DMA_KEPT) {
		for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); !ret && a < end; a += VFIO_MIG_PAGE_4K) {
			m_dirty(m, a, FZ_MUST_WRITTEN);
			/* reported when the log is read out, tracking or not */
			if (m->precise)
				m->logged[fz_pg(a)] = 1;
		}
		return;
	}
	bad = m_first_bad(m, iova, len);
	for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < end && a != bad; a += VFIO_MIG_PAGE_4K) {
		if (cmd != FZ_DMA_KEEP) {
			/* a failed command wrote a part, maybe */
			bool part = ret && wrote && fz_in_win(a) && wrote[fz_pg(a)];

			m->wrote_failed += part && m->tracking;
			m_dirty(m, a, !ret ? FZ_MUST_WRITTEN :
				part ? FZ_MUST_PART_WRITTEN : FZ_MUST_NOT);
			continue;
		}
		m->pinned[fz_pg(a)]++;
		m->npinned++;
		/* a pin of migdev-precise alone is clean */
		if (!m->precise)
			m_dirty(m, a, FZ_MUST_WRITTEN);
	}
}

int m_report_predict(struct model *m, uint64_t iova, uint64_t len)
{
	uint64_t last = iova + len - 1, next = iova;
	struct mapping *p;
	int i;

	if (!len)
		return 0;
	if (last < iova)
		return -EINVAL;
	/* the mappings from @iova on, in order: a hole or an unwritable one */
	for (;;) {
		i = m_find(m, next);
		if (i < 0)
			return -EINVAL;
		p = &m->map[i];
		if (!(p->flags & VFIO_DMA_MAP_FLAG_WRITE))
			return -EPERM;
		if (p->iova + p->size - 1 >= last)
			return 0;
		next = p->iova + p->size;
	}
}

void m_report_apply(struct model *m, uint64_t iova, uint64_t len, int ret)
{
	uint64_t a = iova & ~(VFIO_MIG_PAGE_4K - 1);
	uint64_t last = (iova + len - 1) & ~(VFIO_MIG_PAGE_4K - 1);

	if (ret || !len)
		return;
	/* like a write the device reports at once: marked now, if tracking */
	for (;; a += VFIO_MIG_PAGE_4K) {
		m_dirty(m, a, FZ_MUST_WRITTEN);
		if (a == last)
			break;
	}
}

/* The user address behind @iova, or NULL. */
static uint8_t *m_uaddr(struct model *m, uint64_t iova)
{
	int i = m_find(m, iova);

	return i < 0 ? NULL : (uint8_t *)(m->map[i].vaddr + iova - m->map[i].iova);
}

void m_check_data(struct fuzz *f, struct model *m, uint64_t iova,
		  uint64_t len, uint32_t seed)
{
	uint64_t a, b, pos, n, step;

	for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < iova + len; a += VFIO_MIG_PAGE_4K)
		for (b = a + VFIO_MIG_PAGE_4K; b < iova + len; b += VFIO_MIG_PAGE_4K)
			if (m_uaddr(m, a) == m_uaddr(m, b))
				return;
	step = len <= 2 * VFIO_MIG_PAGE_4K ? 1 : 61;
	for (pos = 0, n = 0; pos < len; pos += step, n++) {
		uint8_t *p = m_uaddr(m, iova + pos);

		if (*p != migdev_pattern(pos, seed)) {
			fz_fail(f, __LINE__,
				"byte %llu of the transfer (iova 0x%llx) is 0x%02x, expected 0x%02x",
				(unsigned long long)pos,
				(unsigned long long)(iova + pos), *p,
				migdev_pattern(pos, seed));
			return;
		}
	}
	f->data_checked += n;
}

void m_check_pinned(struct fuzz *f, struct model *m, struct migdev *md)
{
	long n = migdev_pinned(md);

	FZ_CHECK(f, n == (long)m->npinned, "the device has %ld pages pinned, the model %lu",
		 n, m->npinned);
}

int fz_report_write(struct migdev *md, uint64_t iova, uint64_t len)
{
	return migdev_ctl(md, "report", "0x%llx 0x%llx",
			  (unsigned long long)iova, (unsigned long long)len);
}

int fz_dma(struct migdev *md, int cmd, uint64_t iova, uint64_t len,
	   uint32_t seed)
{
	return migdev_dma(md, fz_dma_names[cmd], iova, len, seed);
}

/*
 * Into the first page of mapping @p the device cannot write, from the
 * writable page before it, if it has one: the write fails half-way.
 */
static void fz_pick_dma_half(struct fuzz *f, struct model *m, struct mapping *p,
			     uint64_t *iova, uint64_t *len)
{
	uint64_t a;

	for (a = p->iova + VFIO_MIG_PAGE_4K; a - p->iova < p->size &&
	     a < FZ_WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (m_rw(m, a))
			continue;
		if (!m_rw(m, a - VFIO_MIG_PAGE_4K))
			return;
		*iova = a - 1 - fz_below(f, VFIO_MIG_PAGE_4K);
		*len = a - *iova + 1 + fz_below(f, VFIO_MIG_PAGE_4K);
		return;
	}
}

void fz_pick_dma(struct fuzz *f, struct model *m, int *cmd, uint64_t *iova,
		 uint64_t *len)
{
	static const int weights[FZ_NR_DMA] = { 22, 24, 18, 8, 24, 4 };
	struct mapping *p = m->nmaps ? &m->map[fz_below(f, m->nmaps)] : NULL;
	uint64_t r = fz_below(f, 100);
	int c;

	for (c = 0; c < FZ_NR_DMA - 1 && r >= (uint64_t)weights[c]; c++)
		r -= weights[c];
	*cmd = c;
	if (p && p->size <= FZ_WIN_SIZE && fz_chance(f, 75))
		*iova = p->iova + fz_below(f, p->size);
	else
		*iova = FZ_WIN_IOVA - 2 * VFIO_MIG_PAGE_4K +
			fz_below(f, FZ_WIN_SIZE + 4 * VFIO_MIG_PAGE_4K);

	if (fz_chance(f, 30))
		*iova &= ~(VFIO_MIG_PAGE_4K - 1);
	r = fz_below(f, 100);
	if (r < 55)
		*len = 1 + fz_below(f, 2 * VFIO_MIG_PAGE_4K);
	else if (r < 80)
		*len = (1 + fz_below(f, 3)) * VFIO_MIG_PAGE_4K;
	else if (r < 90)
		*len = 4;
	else if (r < 94)
		*len = 0;
	else if (r < 97)
		*len = FZ_MAX_DMA + 1 + fz_below(f, 3);
	else
		*len = VFIO_MIG_PAGE_4K;
	if (r >= 97)	/* past the top of the IOVA space */
		*iova = -VFIO_MIG_PAGE_4K + fz_below(f, VFIO_MIG_PAGE_4K);
	if (p && fz_chance(f, 30))
		fz_pick_dma_half(f, m, p, iova, len);
}

void fz_snap_take(struct model *m, struct snap *s, uint64_t iova,
		  uint64_t len)
{
	uint64_t a, lo, hi;
	uint8_t *u;
	int i, j;

	s->n = 0;
	if (!len || len > (FZ_SNAP_PAGES - 1) * VFIO_MIG_PAGE_4K || iova + len < iova)
		return;
	for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < iova + len; a += VFIO_MIG_PAGE_4K) {
		lo = a > iova ? a : iova;
		hi = a + VFIO_MIG_PAGE_4K < iova + len ? a + VFIO_MIG_PAGE_4K : iova + len;
		u = m_uaddr(m, lo);
		if (!fz_in_win(a) || !u || m_user_kind(m, (uintptr_t)u) == 2)
			continue;
		s->iova[s->n] = lo;
		s->len[s->n] = hi - lo;
		s->uaddr[s->n] = u;
		memcpy(s->old[s->n++], u, hi - lo);
	}
	for (i = 0; i < s->n; i++)
		for (j = i + 1; j < s->n; j++)
			if (((uintptr_t)s->uaddr[i] ^ (uintptr_t)s->uaddr[j]) < VFIO_MIG_PAGE_4K) {
				s->len[i] = 0;
				s->len[j] = 0;
			}
}

void fz_snap_diff(const struct snap *s, uint8_t *wrote)
{
	int i;

	memset(wrote, 0, FZ_WIN_PAGES);
	for (i = 0; i < s->n; i++)
		if (s->len[i] && memcmp(s->old[i], s->uaddr[i], s->len[i]))
			wrote[fz_pg(s->iova[i])] = 1;
}

void *fz_anon(uint64_t size, int prot)
{
	return mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
