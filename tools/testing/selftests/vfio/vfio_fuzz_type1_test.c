// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fuzzer (lib/include/vfio_mig_fuzz.h) on a type1 container:
 * type1.{migdev1,precise}.fuzz, MAP/UNMAP (with and without a bitmap,
 * UNMAP_ALL)/DIRTY_PAGES/GET_INFO with good and malformed arguments in a
 * 512 KiB IOVA window, and DMA by the device (debugfs) into it; migdev-1
 * or migdev-precise instance 2; migdev-precise reports writes of any
 * range (debugfs "report"), migdev-1 must refuse to.
 */
#include "../kselftest_harness.h"

#include <vfio_mig_fuzz.h>

#define BUF_PAGES	256ULL		/* user memory behind the mappings */
#define HUGE_IOVA	0x100000000000ULL	/* a mapping that is never pinned */
#define HUGE_SIZE	0x10000000000ULL
#define BM_WORDS	64ULL		/* bitmaps of up to 4096 bits */
#define BM_GUARD	8ULL
#define CANARY		0x5a5a5a5a5a5a5a5aULL
#define SZ_2M		0x200000ULL
#define SZ_1G		0x40000000ULL
#define KERNEL_PTR	0xffff888000000000ULL
#define MIXED_RO	3		/* and 11: read-only pages of t1.mixed */
#define MIXED_NONE	7		/* and 15: inaccessible ones */
#define MAP_MINSZ	(offsetof(struct vfio_iommu_type1_dma_map, size) + 8)
#define UNMAP_MINSZ	(offsetof(struct vfio_iommu_type1_dma_unmap, size) + 8)
#define INFO_MINSZ	(offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + 8)
#define START	VFIO_IOMMU_DIRTY_PAGES_FLAG_START
#define STOP	VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP
#define GET	VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP
#define UNMAP_GET	VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
#define UNMAP_ALL	VFIO_DMA_UNMAP_FLAG_ALL
#define UNMAP_VADDR	VFIO_DMA_UNMAP_FLAG_VADDR

/* The ranges of a debugfs "report", for the tracker's representations */
enum {
	REP_WHOLE,	/* a mapping exactly: a run of the whole mapping */
	REP_TOUCH,	/* from the start or to the end: extends such a run */
	REP_PAGE,	/* bytes of one page */
	REP_SHORT,	/* a few pages anywhere in a mapping: a list */
	REP_BIG,	/* more than 126 pages of a mapping: a bitmap */
	REP_ANY,	/* anywhere in the window: holes, mostly */
	REP_RO,		/* into a mapping the device may not write */
	REP_WRAP,	/* past the top of the IOVA space */
	REP_HUGE,	/* across the end of the huge mapping */
	NR_REP
};

static const char * const rep_names[NR_REP] = {
	"whole", "touch", "page", "short", "big", "any", "read-only", "wrap",
	"huge-end",
};

struct t1 {
	struct migdev md;
	uint8_t *buf;		/* BUF_PAGES, behind the mappings */
	uint8_t *ro;		/* 16 read-only pages */
	uint8_t *none;		/* 16 inaccessible pages */
	uint8_t *mixed;		/* 16 pages: see MIXED_RO, MIXED_NONE */
	uint8_t *edge;		/* a page, then an inaccessible one */
	uint64_t *bm;		/* BM_WORDS + BM_GUARD */
	uint32_t avail0;	/* DMA_AVAIL with nothing mapped */
	struct model m;
	struct snap snap;	/* of the memory a DMA command writes */
	unsigned long rep_ok[NR_REP];	/* reports by kind: succeeded */
	unsigned long rep_err[NR_REP];	/* failed, as predicted */
	struct fuzz f;
};

FIXTURE(type1) {
	struct t1 s;
};

FIXTURE_VARIANT(type1) {
	const char *type;
	bool precise;
};

/* migdev-1: type1 counts its pinned pages dirty in every report */
FIXTURE_VARIANT_ADD(type1, migdev1) {
	.type = MIGDEV_TYPE,
	.precise = false,
};

/* migdev-precise: it reports what it writes, pins alone are clean */
FIXTURE_VARIANT_ADD(type1, precise) {
	.type = MIGDEV_PRECISE_TYPE,
	.precise = true,
};

/* DMA_AVAIL of GET_INFO, or ~0. */
static uint32_t dma_avail(int container)
{
	struct vfio_iommu_type1_info_dma_avail *cap;
	struct vfio_iommu_type1_info *info;
	uint32_t avail = ~0U;
	char buf[4096] = "";

	info = (void *)buf;
	info->argsz = sizeof(buf);
	if (ioctl(container, VFIO_IOMMU_GET_INFO, info))
		return ~0U;
	cap = (void *)vfio_iommu_info_cap(info, sizeof(buf),
					  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	if (cap)
		avail = cap->avail;
	return avail;
}

FIXTURE_SETUP(type1)
{
	int ret = migdev_open_type(&self->s.md, variant->type, 2, -1);

	self->s.buf = MAP_FAILED;
	if (ret == -ENODEV)
		SKIP(return, "migdev: needs a third %s mdev",
		     variant->type);
	ASSERT_EQ(0, ret);
	self->s.buf = fz_anon(BUF_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	self->s.ro = fz_anon(16 * VFIO_MIG_PAGE_4K, PROT_READ);
	self->s.none = fz_anon(16 * VFIO_MIG_PAGE_4K, PROT_NONE);
	self->s.edge = fz_anon(2 * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->s.edge);
	ASSERT_EQ(0, mprotect(self->s.edge + VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, PROT_NONE));
	self->s.mixed = fz_anon(16 * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->s.mixed);
	self->s.bm = calloc(BM_WORDS + BM_GUARD, 8);
	ASSERT_NE(MAP_FAILED, self->s.buf);
	ASSERT_NE(MAP_FAILED, self->s.ro);
	ASSERT_NE(MAP_FAILED, self->s.none);
	ASSERT_NE(NULL, self->s.bm);
	memset(self->s.buf, 0, BUF_PAGES * VFIO_MIG_PAGE_4K);
	memset(&self->s.m, 0, sizeof(self->s.m));
	self->s.m.precise = variant->precise;
	m_bad_mem(&self->s.m, self->s.ro, self->s.ro + 16 * VFIO_MIG_PAGE_4K, true);
	m_bad_mem(&self->s.m, self->s.none, self->s.none + 16 * VFIO_MIG_PAGE_4K, false);
	ASSERT_EQ(0, mprotect(self->s.mixed + MIXED_RO * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K,
			      PROT_READ));
	ASSERT_EQ(0, mprotect(self->s.mixed + (MIXED_RO + 8) * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K,
			      PROT_READ));
	ASSERT_EQ(0, mprotect(self->s.mixed + MIXED_NONE * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K,
			      PROT_NONE));
	ASSERT_EQ(0, mprotect(self->s.mixed + (MIXED_NONE + 8) * VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K,
			      PROT_NONE));
	m_bad_mem(&self->s.m, self->s.mixed + MIXED_RO * VFIO_MIG_PAGE_4K,
		  self->s.mixed + (MIXED_RO + 1) * VFIO_MIG_PAGE_4K, true);
	m_bad_mem(&self->s.m, self->s.mixed + (MIXED_RO + 8) * VFIO_MIG_PAGE_4K,
		  self->s.mixed + (MIXED_RO + 9) * VFIO_MIG_PAGE_4K, true);
	m_bad_mem(&self->s.m, self->s.mixed + MIXED_NONE * VFIO_MIG_PAGE_4K,
		  self->s.mixed + (MIXED_NONE + 1) * VFIO_MIG_PAGE_4K, false);
	m_bad_mem(&self->s.m, self->s.mixed + (MIXED_NONE + 8) * VFIO_MIG_PAGE_4K,
		  self->s.mixed + (MIXED_NONE + 9) * VFIO_MIG_PAGE_4K, false);
	self->s.avail0 = dma_avail(self->s.md.container);
	ASSERT_NE(~0U, self->s.avail0);
}

FIXTURE_TEARDOWN(type1)
{
	migdev_close(&self->s.md);
	if (self->s.buf != MAP_FAILED) {
		munmap(self->s.buf, BUF_PAGES * VFIO_MIG_PAGE_4K);
		munmap(self->s.ro, 16 * VFIO_MIG_PAGE_4K);
		munmap(self->s.none, 16 * VFIO_MIG_PAGE_4K);
		munmap(self->s.mixed, 16 * VFIO_MIG_PAGE_4K);
		munmap(self->s.edge, 2 * VFIO_MIG_PAGE_4K);
		free(self->s.bm);
	}
}

/* A random range of the window, in 4 KiB pages, for a mapping. */
static void pick_map_range(struct fuzz *f, uint64_t *iova, uint64_t *size)
{
	uint64_t pages = fz_chance(f, 70) ? 1 + fz_below(f, 4) : 1 + fz_below(f, 32);

	*iova = FZ_WIN_IOVA + fz_below(f, FZ_WIN_PAGES - pages + 1) * VFIO_MIG_PAGE_4K;
	*size = pages * VFIO_MIG_PAGE_4K;
}

static int do_map(int container, uint32_t argsz, uint32_t flags,
		  uint64_t iova, uint64_t vaddr, uint64_t size)
{
	struct {
		struct vfio_iommu_type1_dma_map map;
		uint64_t pad[2];
	} arg = {
		.map.argsz = argsz,
		.map.flags = flags,
		.map.vaddr = vaddr,
		.map.iova = iova,
		.map.size = size,
	};

	return ioctl(container, VFIO_IOMMU_MAP_DMA, &arg) ? -errno : 0;
}

/* The mapping is there: mapping it again is -EEXIST. */
static void t1_probe(struct fuzz *f, struct model *m, int container, int i)
{
	struct mapping *p = &m->map[i];
	int ret = do_map(container, sizeof(struct vfio_iommu_type1_dma_map), FZ_RW,
			 p->iova, p->vaddr, p->size);

	FZ_CHECK(f, ret == -EEXIST,
		 "mapping [0x%llx, +0x%llx) is gone: mapping it again returned %d",
		 (unsigned long long)p->iova, (unsigned long long)p->size, ret);
	if (!ret)	/* do not leave ours behind */
		vfio_unmap(container, p->iova, p->size);
}

/* The mappings overlapping [iova, iova + size) are all there. */
static void t1_probe_range(struct fuzz *f, struct model *m, int container,
			   uint64_t iova, uint64_t size)
{
	int i;

	for (i = 0; i < m->nmaps; i++)
		if (iova < m->map[i].iova + m->map[i].size &&
		    m->map[i].iova < iova + size)
			t1_probe(f, m, container, i);
}

static void t1_map(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint64_t iova, size, vaddr, pages;
	const char *mem = "";
	uint32_t flags = FZ_RW;
	int want, ret;

	if (m->nmaps >= FZ_MAX_MAPS - 1)
		return;
	if (fz_chance(f, 4)) {
		iova = HUGE_IOVA;
		size = HUGE_SIZE;
		vaddr = (uintptr_t)self->buf;
	} else if (fz_chance(f, 5)) {
		/*
		 * Memory the user cannot write: an mdev-only container pins
		 * nothing at MAP, so this maps; the device's writes fail.
		 */
		pick_map_range(f, &iova, &size);
		pages = size / VFIO_MIG_PAGE_4K > 16 ? 16 : size / VFIO_MIG_PAGE_4K;
		size = pages * VFIO_MIG_PAGE_4K;
		vaddr = (uintptr_t)(fz_chance(f, 50) ? self->ro : self->none) +
			fz_below(f, 16 - pages + 1) * VFIO_MIG_PAGE_4K;
		mem = " (unwritable)";
	} else if (fz_chance(f, 8)) {
		/*
		 * Memory with pages the device cannot write: a write that
		 * reaches one from a page before it stops part-way.
		 */
		pick_map_range(f, &iova, &size);
		pages = size / VFIO_MIG_PAGE_4K > 16 ? 16 : size / VFIO_MIG_PAGE_4K;
		size = pages * VFIO_MIG_PAGE_4K;
		vaddr = (uintptr_t)self->mixed + fz_below(f, 16 - pages + 1) * VFIO_MIG_PAGE_4K;
		mem = " (holes)";
	} else {
		pick_map_range(f, &iova, &size);
		/* the window in one: reports of more than 126 pages of it */
		if (m_overlap(m, FZ_WIN_IOVA, FZ_WIN_SIZE) < 0 && fz_chance(f, 50)) {
			iova = FZ_WIN_IOVA;
			size = FZ_WIN_SIZE;
		}
		pages = size / VFIO_MIG_PAGE_4K;
		vaddr = (uintptr_t)self->buf +
			fz_below(f, BUF_PAGES - pages + 1) * VFIO_MIG_PAGE_4K;
		if (fz_chance(f, 8))
			flags = fz_chance(f, 50) ? VFIO_DMA_MAP_FLAG_READ :
						VFIO_DMA_MAP_FLAG_WRITE;
	}
	fz_op(f, FZ_OP_MAP, "iova 0x%llx size 0x%llx flags %u vaddr 0x%llx%s",
	      (unsigned long long)iova, (unsigned long long)size, flags,
	      (unsigned long long)vaddr, mem);
	want = m_overlap(m, iova, size) >= 0 ? -EEXIST : 0;
	ret = do_map(self->md.container, fz_chance(f, 10) ?
		     sizeof(struct vfio_iommu_type1_dma_map) + 8 + fz_below(f, 8) :
		     sizeof(struct vfio_iommu_type1_dma_map),
		     flags, iova, vaddr, size);
	FZ_EXPECT_RET(f, ret, want);
	if (!ret)
		m_add(m, iova, size, vaddr, flags);
}

static void t1_map_bad(struct t1 *self, struct fuzz *f)
{
	uint32_t argsz = sizeof(struct vfio_iommu_type1_dma_map), flags = FZ_RW;
	struct model *m = &self->m;
	uint64_t iova, size, vaddr;
	int kind = fz_below(f, 11), want = -EINVAL, ret;

	pick_map_range(f, &iova, &size);
	vaddr = (uintptr_t)self->buf;
	switch (kind) {
	case 0:
		iova += 1 + fz_below(f, VFIO_MIG_PAGE_4K - 1);
		break;
	case 1:
		size += 1 + fz_below(f, VFIO_MIG_PAGE_4K - 1);
		break;
	case 2:
		vaddr += 1 + fz_below(f, VFIO_MIG_PAGE_4K - 1);
		break;
	case 3:
		size = 0;
		break;
	case 4:		/* the IOVA wraps */
		iova = -(1 + fz_below(f, 4)) * VFIO_MIG_PAGE_4K;
		size = 8 * VFIO_MIG_PAGE_4K;
		break;
	case 5:		/* the user address wraps */
		vaddr = -(1 + fz_below(f, 4)) * VFIO_MIG_PAGE_4K;
		size = 8 * VFIO_MIG_PAGE_4K;
		break;
	case 6:
		flags |= 1U << (3 + fz_below(f, 29));
		break;
	case 7:
		flags = 0;
		break;
	case 8:
		flags = VFIO_DMA_MAP_FLAG_VADDR | (1 + fz_below(f, 3));
		break;
	case 9:		/* a new vaddr for a mapping whose vaddr is valid */
		flags = VFIO_DMA_MAP_FLAG_VADDR;
		want = m_overlap(m, iova, size) >= 0 ? -EINVAL : -ENOENT;
		break;
	default:
		argsz = fz_below(f, MAP_MINSZ);
		break;
	}
	fz_op(f, FZ_OP_MAP_BAD, "kind %d argsz %u flags 0x%x iova 0x%llx vaddr 0x%llx size 0x%llx",
	      kind, argsz, flags, (unsigned long long)iova,
	      (unsigned long long)vaddr, (unsigned long long)size);
	ret = do_map(self->md.container, argsz, flags, iova, vaddr, size);
	FZ_EXPECT_RET(f, ret, want);
	if (!ret)
		vfio_unmap(self->md.container, iova, size);
}

/* A pgsize for a dirty bitmap, mostly 4 KiB. */
static uint64_t pick_pgsize(struct fuzz *f)
{
	static const uint64_t sizes[] = {
		VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K,
		VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K,
		2 * VFIO_MIG_PAGE_4K, 16 * VFIO_MIG_PAGE_4K, SZ_2M, SZ_1G,
	};

	return sizes[fz_below(f, ARRAY_SIZE(sizes))];
}

/* Where a bitmap points. */
enum { BM_OK, BM_NULL, BM_NONE, BM_RO, BM_KERNEL, BM_EDGE, NR_BM };

static uint64_t *bm_ptr(struct t1 *self, int kind)
{
	switch (kind) {
	case BM_NULL:
		return NULL;
	case BM_NONE:
		return (uint64_t *)self->none;
	case BM_RO:
		return (uint64_t *)self->ro;
	case BM_KERNEL:
		return (uint64_t *)KERNEL_PTR;
	case BM_EDGE:	/* one word, then a fault */
		memset(self->edge + VFIO_MIG_PAGE_4K - 8, 0, 8);
		return (uint64_t *)(self->edge + VFIO_MIG_PAGE_4K - 8);
	}
	memset(self->bm, 0, BM_WORDS * 8);
	memset(self->bm + BM_WORDS, 0x5a, BM_GUARD * 8);
	return self->bm;
}

/*
 * A report into the bitmap at the edge succeeded: all it could write is
 * its first word; the rest is zero in the bitmap the checks read.
 */
static uint64_t *bm_edge(struct t1 *self)
{
	uint64_t *bm = bm_ptr(self, BM_OK);

	memcpy(bm, self->edge + VFIO_MIG_PAGE_4K - 8, 8);
	return bm;
}

/*
 * What the checks of a dirty bitmap say (0, or -errno) for [iova, iova +
 * size) at @pgsize into @bmsize bytes at a pointer of @kind.
 */
static int bm_predict(uint64_t iova, uint64_t size, uint64_t pgsize,
		      uint64_t bmsize, int kind)
{
	if (!pgsize || (pgsize & (pgsize - 1)) || pgsize > SZ_1G || pgsize < VFIO_MIG_PAGE_4K)
		return -EINVAL;
	if (!size || ((iova | size) & (pgsize - 1)) || iova + size - 1 < iova)
		return -EINVAL;
	if (bmsize < (size / pgsize + 63) / 64 * 8)
		return -EINVAL;
	if (bmsize > (1ULL << 49))
		return -E2BIG;
	if (kind == BM_KERNEL)
		return -EFAULT;
	return 0;
}

/*
 * A report of [iova, iova + size) at @pgsize: every page the model must
 * see is set, nothing is set that was neither written nor pinned, and the
 * kernel wrote no bit, no word past the range.
 */
static void t1_check_bits(struct fuzz *f, struct model *m, const uint64_t *bm,
			  uint64_t iova, uint64_t size, uint64_t pgsize)
{
	uint64_t nbits = size / pgsize, i, a, set = 0;

	for (i = 0; i < nbits; i++) {
		uint64_t lo = iova + i * pgsize, hi = lo + pgsize;
		bool bit = (bm[i / 64] >> (i % 64)) & 1, may = false;
		int must = FZ_MUST_NOT;

		if (lo < FZ_WIN_IOVA)
			lo = FZ_WIN_IOVA;
		if (hi > FZ_WIN_END)
			hi = FZ_WIN_END;
		for (a = lo; a < hi; a += VFIO_MIG_PAGE_4K) {
			must = m->must[fz_pg(a)] > must ? m->must[fz_pg(a)] : must;
			may |= m->may[fz_pg(a)] | m->logged[fz_pg(a)];
		}
		set += bit;
		if (must && !bit) {
			fz_fail(f, __LINE__,
				"bit %llu (iova 0x%llx, pgsize 0x%llx) is clear, but a page in it %s",
				(unsigned long long)i,
				(unsigned long long)(iova + i * pgsize),
				(unsigned long long)pgsize,
				must == FZ_MUST_PART_WRITTEN ?
				"was written by a DMA command that failed after it" :
				"was written or is pinned");
			return;
		}
		if (bit && !may) {
			fz_fail(f, __LINE__,
				"bit %llu (iova 0x%llx, pgsize 0x%llx) is set, but nothing in it was written or pinned",
				(unsigned long long)i,
				(unsigned long long)(iova + i * pgsize),
				(unsigned long long)pgsize);
			return;
		}
	}
	if (nbits % 64)
		FZ_CHECK(f, !(bm[nbits / 64] >> (nbits % 64)),
			 "bits past the range are set: word %llu is 0x%llx",
			 (unsigned long long)(nbits / 64),
			 (unsigned long long)bm[nbits / 64]);
	for (i = (nbits + 63) / 64; i < BM_WORDS; i++)
		FZ_CHECK(f, !bm[i], "word %llu past the range is 0x%llx",
			 (unsigned long long)i, (unsigned long long)bm[i]);
	for (i = BM_WORDS; i < BM_WORDS + BM_GUARD; i++)
		FZ_CHECK(f, bm[i] == CANARY, "written past the bitmap: word %llu",
			 (unsigned long long)i);
	f->dirty_bits += set;
	f->gets_with_bits += !!set;
}

/* Nothing the model must see is in [iova, iova + size). */
static bool m_clean(struct model *m, uint64_t iova, uint64_t size)
{
	uint64_t a;

	for (a = FZ_WIN_IOVA; a < FZ_WIN_END; a += VFIO_MIG_PAGE_4K)
		if (a >= iova && a - iova < size && m->must[fz_pg(a)])
			return false;
	return true;
}

/* A range for a dirty report, aligned to @pgsize, of at most 4096 bits. */
static void pick_get_range(struct fuzz *f, struct model *m, uint64_t pgsize,
			   uint64_t *iova, uint64_t *size)
{
	uint64_t r = fz_below(f, 100);

	if (r < 8 && pgsize == SZ_1G) {
		*iova = HUGE_IOVA;
		*size = HUGE_SIZE;
		return;
	}
	if (r < 45 && m->nmaps) {	/* one mapping, or a few */
		struct mapping *p = &m->map[fz_below(f, m->nmaps)];

		*iova = p->iova;
		*size = p->size > FZ_WIN_SIZE ? FZ_WIN_SIZE : p->size;
		if (fz_chance(f, 30))
			*size += fz_below(f, 8) * VFIO_MIG_PAGE_4K;
	} else if (r < 60) {
		*iova = FZ_WIN_IOVA;
		*size = FZ_WIN_SIZE;
	} else {
		*iova = FZ_WIN_IOVA - 4 * VFIO_MIG_PAGE_4K +
			fz_below(f, FZ_WIN_PAGES + 8) * VFIO_MIG_PAGE_4K;
		*size = (1 + fz_below(f, FZ_WIN_PAGES)) * VFIO_MIG_PAGE_4K;
	}
	*size += *iova & (pgsize - 1);
	*iova &= ~(pgsize - 1);
	*size = (*size + pgsize - 1) & ~(pgsize - 1);
	if (*size / pgsize > BM_WORDS * 64)
		*size = BM_WORDS * 64 * pgsize;
}

/* GET_BITMAP, well formed or not. */
static void t1_get(struct t1 *self, struct fuzz *f)
{
	uint32_t argsz = sizeof(struct vfio_mig_dirty_get), flags = GET;
	uint64_t iova, size, pgsize = pick_pgsize(f), bmsize;
	struct model *m = &self->m;
	int kind = BM_OK, bad = 0, want, ret;
	uint64_t *ptr;

	pick_get_range(f, m, pgsize, &iova, &size);
	bmsize = vfio_mig_bitmap_bytes(size, pgsize);
	if (fz_chance(f, 25)) {
		bad = 1 + fz_below(f, 12);
		switch (bad) {
		case 1:
			pgsize = VFIO_MIG_PAGE_4K * (3 + 2 * fz_below(f, 4));
			break;
		case 2:
			pgsize = fz_below(f, 2) ? 0 : 1ULL << fz_below(f, 12);
			break;
		case 3:
			pgsize = 2 * SZ_1G << fz_below(f, 4);
			size = pgsize;
			iova = 0;
			break;
		case 4:
			iova += pgsize == VFIO_MIG_PAGE_4K ? 512 : VFIO_MIG_PAGE_4K;
			break;
		case 5:
			size = 0;
			break;
		case 6:
			iova = -2 * pgsize;
			size = 4 * pgsize;
			bmsize = 8;
			break;
		case 7:
			bmsize = vfio_mig_bitmap_bytes(size, pgsize) - 8 + fz_below(f, 8);
			break;
		case 8:
			bmsize = 1ULL << (50 + fz_below(f, 8));
			break;
		case 9:
			argsz = sizeof(struct vfio_iommu_type1_dirty_bitmap) +
				fz_below(f, sizeof(struct vfio_iommu_type1_dirty_bitmap_get));
			break;
		case 10:
			flags |= fz_chance(f, 50) ? START : STOP;
			break;
		default:
			kind = 1 + fz_below(f, NR_BM - 1);
			break;
		}
	}
	ptr = bm_ptr(self, kind);
	if (bad == 9 || bad == 10 || !m->tracking)
		want = -EINVAL;
	else
		want = bm_predict(iova, size, pgsize, bmsize, kind);
	fz_op(f, bad ? FZ_OP_GET_BAD : FZ_OP_GET,
	      "kind %d bitmap %d iova 0x%llx size 0x%llx pgsize 0x%llx bitmap size 0x%llx tracking %d",
	      bad, kind, (unsigned long long)iova, (unsigned long long)size,
	      (unsigned long long)pgsize, (unsigned long long)bmsize, m->tracking);
	ret = vfio_get_bitmap_raw(self->md.container, argsz, flags, iova, size,
				  pgsize, ptr, bmsize);
	if (!want && kind != BM_OK) {
		/* nothing to write may succeed; else it must fail, keeping all */
		FZ_EXPECT_RET2(f, ret, -EFAULT, 0);
		if (!ret && kind == BM_EDGE)
			ptr = bm_edge(self);
		else
			FZ_CHECK(f, ret || m_clean(m, iova, size),
				 "reported dirty pages into a bitmap it cannot write: lost");
	} else {
		FZ_EXPECT_RET(f, ret, want);
	}
	if (ret)
		return;
	m_synced(m);
	if (ptr == self->bm)
		t1_check_bits(f, m, ptr, iova, size, pgsize);
	m_reported(m, iova, size);
}

static int do_unmap(int container, uint32_t argsz, uint32_t flags,
		    uint64_t iova, uint64_t *size, uint64_t pgsize,
		    uint64_t *bitmap, uint64_t bmsize)
{
	struct vfio_mig_unmap_bitmap arg = {
		.unmap.argsz = argsz,
		.unmap.flags = flags,
		.unmap.iova = iova,
		.unmap.size = *size,
		.bitmap.pgsize = pgsize,
		.bitmap.size = bmsize,
		.bitmap.data = (__u64 *)bitmap,
	};
	int ret = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &arg) ? -errno : 0;

	*size = arg.unmap.size;
	return ret;
}

/*
 * Whether a v2 unmap of [iova, iova + size) bisects a mapping, and how
 * much it unmaps otherwise.
 */
static bool m_bisects(struct model *m, uint64_t iova, uint64_t size,
		      uint64_t *unmapped)
{
	int i = m_find(m, iova), j = m_find(m, iova + size - 1);

	*unmapped = 0;
	if ((i >= 0 && m->map[i].iova != iova) ||
	    (j >= 0 && m->map[j].iova + m->map[j].size != iova + size))
		return true;
	for (i = 0; i < m->nmaps; i++)
		if (m->map[i].iova >= iova && m->map[i].iova - iova < size)
			*unmapped += m->map[i].size;
	return false;
}

static void m_unmap(struct model *m, uint64_t iova, uint64_t size)
{
	int i;

	for (i = m->nmaps - 1; i >= 0; i--)
		if (m->map[i].iova >= iova && m->map[i].iova - iova < size)
			m_remove(m, i);
}

/* A range to unmap: mappings, mostly whole, or anything. */
static void pick_unmap_range(struct fuzz *f, struct model *m, uint64_t *iova,
			     uint64_t *size)
{
	uint64_t r = fz_below(f, 100);

	if (r < 60 && m->nmaps) {
		struct mapping *p = &m->map[fz_below(f, m->nmaps)];

		*iova = p->iova;
		*size = p->size;
		if (fz_chance(f, 25))
			*size += fz_below(f, 6) * VFIO_MIG_PAGE_4K;
		if (fz_chance(f, 10)) {
			*iova -= fz_below(f, 3) * VFIO_MIG_PAGE_4K;
			*size += 2 * VFIO_MIG_PAGE_4K;
		}
	} else if (r < 70) {
		*iova = FZ_WIN_IOVA;
		*size = FZ_WIN_SIZE;
	} else {
		pick_map_range(f, iova, size);
	}
}

static void t1_unmap(struct t1 *self, struct fuzz *f, bool bitmap)
{
	uint32_t argsz = sizeof(struct vfio_iommu_type1_dma_unmap), flags = 0;
	uint64_t iova, size, out, unmapped, pgsize = VFIO_MIG_PAGE_4K, bmsize = 0;
	struct model *m = &self->m;
	int kind = BM_OK, want, ret;
	uint64_t *ptr = NULL;
	bool bisects;

	pick_unmap_range(f, m, &iova, &size);
	if (bitmap) {
		argsz = sizeof(struct vfio_mig_unmap_bitmap);
		flags = UNMAP_GET;
		if (size == HUGE_SIZE)
			pgsize = SZ_1G;
		else if (fz_chance(f, 20))
			pgsize = pick_pgsize(f);
		bmsize = vfio_mig_bitmap_bytes(size, pgsize);
		if (bmsize > BM_WORDS * 8)
			bmsize = BM_WORDS * 8;
		if (fz_chance(f, 10))
			kind = 1 + fz_below(f, NR_BM - 1);
		ptr = bm_ptr(self, kind);
	}
	bisects = m_bisects(m, iova, size, &unmapped);
	if (!bitmap)
		want = bisects ? -EINVAL : 0;
	else if (!m->tracking)
		want = -EINVAL;
	else
		want = bm_predict(iova, size, pgsize, bmsize, kind) ?:
		       (bisects ? -EINVAL : 0);
	fz_op(f, bitmap ? FZ_OP_UNMAP_BITMAP : FZ_OP_UNMAP,
	      "iova 0x%llx size 0x%llx pgsize 0x%llx bitmap %d tracking %d",
	      (unsigned long long)iova, (unsigned long long)size,
	      (unsigned long long)pgsize, kind, m->tracking);
	out = size;
	ret = do_unmap(self->md.container, argsz, flags, iova, &out, pgsize, ptr,
		       bmsize);
	if (!want && kind != BM_OK) {
		FZ_EXPECT_RET2(f, ret, -EFAULT, 0);
		if (!ret && kind == BM_EDGE)
			ptr = bm_edge(self);
		else
			FZ_CHECK(f, ret || m_clean(m, iova, size),
				 "unmapped dirty pages into a bitmap it cannot write: lost");
		/* the devices dropped their pins before the bits were written */
		if (ret)
			m_unpin(m, iova, size);
	} else {
		FZ_EXPECT_RET(f, ret, want);
	}
	if (ret) {
		FZ_CHECK(f, out == size, "a failed unmap changed size to 0x%llx",
			 (unsigned long long)out);
		t1_probe_range(f, m, self->md.container, iova, size);
		m_check_pinned(f, m, &self->md);
		return;
	}
	FZ_CHECK(f, out == unmapped, "unmapped 0x%llx, expected 0x%llx",
		 (unsigned long long)out, (unsigned long long)unmapped);
	if (bitmap && ptr == self->bm) {
		/* the pins go first: their pages are dirty */
		m_unpin(m, iova, size);
		m_synced(m);
		t1_check_bits(f, m, ptr, iova, size, pgsize);
	}
	m_unmap(m, iova, size);
	m_check_pinned(f, m, &self->md);
}

static void t1_unmap_bad(struct t1 *self, struct fuzz *f)
{
	uint32_t argsz = sizeof(struct vfio_mig_unmap_bitmap), flags = 0;
	uint64_t iova, size, out, pgsize = VFIO_MIG_PAGE_4K, bmsize;
	struct model *m = &self->m;
	int kind = fz_below(f, 10), ret, want = -EINVAL;

	pick_unmap_range(f, m, &iova, &size);
	bmsize = BM_WORDS * 8;
	switch (kind) {
	case 0:
		argsz = fz_below(f, UNMAP_MINSZ);
		break;
	case 1:
		flags = 1U << (3 + fz_below(f, 29));
		break;
	case 2:
		flags = UNMAP_GET | (fz_chance(f, 50) ? UNMAP_ALL : UNMAP_VADDR);
		break;
	case 3:
		flags = UNMAP_GET;
		argsz = sizeof(struct vfio_iommu_type1_dma_unmap) +
			fz_below(f, sizeof(struct vfio_bitmap));
		break;
	case 4:		/* type1 cannot invalidate vaddrs with an mdev */
		flags = UNMAP_VADDR | (fz_chance(f, 50) ? UNMAP_ALL : 0);
		want = -EBUSY;
		break;
	case 5:
		iova += 1 + fz_below(f, VFIO_MIG_PAGE_4K - 1);
		flags = fz_chance(f, 50) ? UNMAP_GET : 0;
		break;
	case 6:
		size = fz_chance(f, 50) ? 0 : size + 1 + fz_below(f, VFIO_MIG_PAGE_4K - 1);
		flags = fz_chance(f, 50) ? UNMAP_GET : 0;
		break;
	case 7:
		iova = -2 * VFIO_MIG_PAGE_4K;
		size = 4 * VFIO_MIG_PAGE_4K;
		break;
	case 8:		/* UNMAP_ALL takes neither iova nor size */
		flags = UNMAP_ALL;
		if (fz_chance(f, 50))
			iova = 0;
		else
			size = 0;
		if (!iova && !size)
			size = VFIO_MIG_PAGE_4K;
		break;
	default:	/* tracking off (or a bitmap of the wrong size) */
		flags = UNMAP_GET;
		if (m->tracking)
			bmsize = vfio_mig_bitmap_bytes(size, pgsize) - 8;
		break;
	}
	fz_op(f, FZ_OP_UNMAP_BAD, "kind %d argsz %u flags 0x%x iova 0x%llx size 0x%llx",
	      kind, argsz, flags, (unsigned long long)iova,
	      (unsigned long long)size);
	out = size;
	ret = do_unmap(self->md.container, argsz, flags, iova, &out, pgsize,
		       bm_ptr(self, BM_OK), bmsize);
	FZ_EXPECT_RET(f, ret, want);
	FZ_CHECK(f, out == size, "a failed unmap changed size to 0x%llx",
		 (unsigned long long)out);
	if (!ret)
		return;
	t1_probe_range(f, m, self->md.container, iova, size);
	FZ_CHECK(f, !self->bm[0], "a failed unmap wrote a bitmap");
}

/* UNMAP_ALL: everything goes, and how much is exact. */
static void t1_unmap_all(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint64_t total = 0, out = 0;
	int i, ret;

	for (i = 0; i < m->nmaps; i++)
		total += m->map[i].size;
	fz_op(f, FZ_OP_UNMAP_ALL, "%d mappings, 0x%llx bytes", m->nmaps,
	      (unsigned long long)total);
	ret = do_unmap(self->md.container, sizeof(struct vfio_iommu_type1_dma_unmap),
		       UNMAP_ALL, 0, &out, 0, NULL, 0);
	FZ_EXPECT_RET(f, ret, 0);
	FZ_CHECK(f, out == total, "unmapped 0x%llx, expected 0x%llx",
		 (unsigned long long)out, (unsigned long long)total);
	while (m->nmaps)
		m_remove(m, 0);
	m_check_pinned(f, m, &self->md);
	FZ_CHECK(f, dma_avail(self->md.container) == self->avail0,
		 "mappings are left: DMA_AVAIL %u, was %u with none",
		 dma_avail(self->md.container), self->avail0);
}

static void t1_dirty(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint32_t flags, argsz = sizeof(struct vfio_iommu_type1_dirty_bitmap);
	struct vfio_iommu_type1_dirty_bitmap db;
	int r = fz_below(f, 10);

	if (r < 5) {
		fz_op(f, FZ_OP_START, "tracking %d", m->tracking);
		FZ_EXPECT_RET(f, vfio_dirty(self->md.container, START), 0);
		m_start(m);
		return;
	}
	if (r < 7) {
		fz_op(f, FZ_OP_STOP, "tracking %d", m->tracking);
		FZ_EXPECT_RET(f, vfio_dirty(self->md.container, STOP), 0);
		m_stop(m);
		return;
	}
	switch (fz_below(f, 4)) {
	case 0:
		flags = 0;
		break;
	case 1:
		flags = START | STOP | (fz_chance(f, 50) ? GET : 0);
		break;
	case 2:
		flags = 1U << (3 + fz_below(f, 29));
		break;
	default:
		flags = START;
		argsz = fz_below(f, argsz);
		break;
	}
	fz_op(f, FZ_OP_DIRTY_BAD, "argsz %u flags 0x%x", argsz, flags);
	db.argsz = argsz;
	db.flags = flags;
	FZ_EXPECT_RET(f, ioctl(self->md.container, VFIO_IOMMU_DIRTY_PAGES, &db) ?
		      -errno : 0, -EINVAL);
}

static void t1_info(struct t1 *self, struct fuzz *f)
{
	struct vfio_iommu_type1_info_cap_migration *mig;
	uint32_t minsz = INFO_MINSZ;
	struct vfio_iommu_type1_info *info;
	uint32_t argsz, avail;
	char buf[4096];
	int ret;

	argsz = fz_chance(f, 50) ? sizeof(buf) : fz_below(f, sizeof(buf));
	fz_op(f, FZ_OP_INFO, "argsz %u", argsz);
	memset(buf, 0xa5, sizeof(buf));
	info = (void *)buf;
	info->argsz = argsz;
	ret = ioctl(self->md.container, VFIO_IOMMU_GET_INFO, info) ? -errno : 0;
	FZ_EXPECT_RET(f, ret, argsz < minsz ? -EINVAL : 0);
	if (ret)
		return;
	FZ_CHECK(f, info->flags & VFIO_IOMMU_INFO_PGSIZES, "flags 0x%x", info->flags);
	FZ_CHECK(f, info->iova_pgsizes & VFIO_MIG_PAGE_4K, "iova_pgsizes 0x%llx",
		 (unsigned long long)info->iova_pgsizes);
	if (argsz < sizeof(buf))
		return;
	mig = (void *)vfio_iommu_info_cap(info, sizeof(buf),
					  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	FZ_CHECK(f, mig, "no migration capability");
	if (mig) {
		FZ_CHECK(f, mig->flags == 0 && *(uint32_t *)((char *)mig + 12) == 0,
			 "flags or padding not zero");
		FZ_CHECK(f, (mig->pgsize_bitmap & (VFIO_MIG_PAGE_4K | SZ_2M | SZ_1G)) ==
			 (VFIO_MIG_PAGE_4K | SZ_2M | SZ_1G), "pgsize_bitmap 0x%llx",
			 (unsigned long long)mig->pgsize_bitmap);
		FZ_CHECK(f, mig->max_dirty_bitmap_size >= SZ_1G, "max 0x%llx",
			 (unsigned long long)mig->max_dirty_bitmap_size);
	}
	avail = dma_avail(self->md.container);
	FZ_CHECK(f, avail + self->m.nmaps == self->avail0,
		 "DMA_AVAIL %u with %d mappings, %u with none: mappings lost or leaked",
		 avail, self->m.nmaps, self->avail0);
}

static void t1_dma(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint8_t wrote[FZ_WIN_PAGES];
	uint64_t iova, len;
	uint32_t seed = fz_rnd(f);
	int cmd, want, ret;

	if (m->npinned > FZ_MAX_PINS) {
		fz_op(f, FZ_OP_DMA, "release (%lu pinned)", m->npinned);
		FZ_EXPECT_RET(f, fz_dma(&self->md, FZ_DMA_RELEASE, 0, 0, 0), 0);
		m_dma_apply(m, FZ_DMA_RELEASE, 0, 0, 0, NULL);
		m_check_pinned(f, m, &self->md);
		return;
	}
	fz_pick_dma(f, m, &cmd, &iova, &len);
	fz_op(f, FZ_OP_DMA, "%s 0x%llx 0x%llx 0x%x", fz_dma_names[cmd],
	      (unsigned long long)iova, (unsigned long long)len, seed);
	want = m_dma_predict(m, cmd, iova, len);
	fz_snap_take(m, &self->snap, iova, len);
	ret = fz_dma(&self->md, cmd, iova, len, seed);
	FZ_EXPECT_RET(f, ret, want);
	fz_snap_diff(&self->snap, wrote);
	m_dma_apply(m, cmd, iova, len, ret, wrote);
	if (!ret && cmd != FZ_DMA_KEEP && cmd != FZ_DMA_RELEASE)
		m_check_data(f, m, iova, len, seed);
	if (cmd == FZ_DMA_KEEP || cmd == FZ_DMA_RELEASE || fz_chance(f, 10))
		m_check_pinned(f, m, &self->md);
}

/* A mapping in the window, of at least @pages, writable or not; or NULL. */
static struct mapping *pick_win_map(struct fuzz *f, struct model *m,
				    uint64_t pages, int writable)
{
	struct mapping *p, *found = NULL;
	unsigned int n = 0;
	int i;

	for (i = 0; i < m->nmaps; i++) {
		p = &m->map[i];
		if (p->iova < FZ_WIN_IOVA || p->iova >= FZ_WIN_END ||
		    p->size < pages * VFIO_MIG_PAGE_4K ||
		    (writable >= 0 &&
		     !!(p->flags & VFIO_DMA_MAP_FLAG_WRITE) != writable))
			continue;
		if (!fz_below(f, ++n))
			found = p;
	}
	return found;
}

/*
 * A range for a debugfs "report" of kind @kind, or of REP_ANY when there
 * is no mapping for it.  Those that succeed stay in the window.
 */
static int pick_report(struct fuzz *f, struct model *m, int kind,
		       uint64_t *iova, uint64_t *len)
{
	const uint64_t pg = VFIO_MIG_PAGE_4K, top = HUGE_IOVA + HUGE_SIZE;
	struct mapping *p = NULL;
	uint64_t pages, n, end;

	if (kind == REP_BIG)
		p = pick_win_map(f, m, 127, 1);
	else if (kind == REP_RO)
		p = pick_win_map(f, m, 1, 0);
	else if (kind < REP_ANY)
		p = pick_win_map(f, m, 1, fz_chance(f, 90) ? 1 : -1);
	if (!p && kind <= REP_RO)
		kind = REP_ANY;
	pages = p ? p->size / pg : 0;
	end = p ? p->iova + p->size : 0;
	switch (kind) {
	case REP_WHOLE:
		*iova = p->iova;
		*len = p->size;
		break;
	case REP_TOUCH:
		n = 1 + fz_below(f, pages);
		if (fz_chance(f, 50)) {
			*iova = p->iova;
			*len = n * pg - fz_below(f, pg);
		} else {
			*iova = end - n * pg + fz_below(f, pg);
			*len = end - *iova;
			/* on into the next mapping, if there is one */
			if (fz_chance(f, 25))
				*len += 1 + fz_below(f, 4 * pg);
		}
		break;
	case REP_PAGE:
		*iova = p->iova + fz_below(f, pages) * pg;
		if (fz_chance(f, 50)) {
			*len = pg;
		} else {
			*iova += fz_below(f, pg);
			*len = 1 + fz_below(f, pg - *iova % pg);
		}
		break;
	case REP_SHORT:
		*iova = p->iova + fz_below(f, p->size);
		*len = 1 + fz_below(f, 4 * pg);
		break;
	case REP_BIG:
		n = 127 + fz_below(f, pages - 127 + 1);
		*iova = p->iova + fz_below(f, pages - n + 1) * pg;
		*len = n * pg - fz_below(f, pg);
		break;
	case REP_RO:
		*iova = p->iova + fz_below(f, p->size);
		*len = 1 + fz_below(f, end - *iova);
		break;
	case REP_WRAP:
		if (fz_chance(f, 50)) {
			*iova = -(1 + fz_below(f, 4)) * pg + fz_below(f, pg);
			*len = -*iova + 1 + fz_below(f, 2 * pg);
		} else {
			*iova = FZ_WIN_IOVA + fz_below(f, FZ_WIN_SIZE);
			*len = ~0ULL - fz_below(f, pg);
		}
		break;
	case REP_HUGE:
		*iova = top - 1 - fz_below(f, 2 * pg);
		*len = top - *iova + 1 + fz_below(f, 2 * pg);
		break;
	default:
		*iova = FZ_WIN_IOVA - pg + fz_below(f, FZ_WIN_SIZE + 2 * pg);
		*len = fz_chance(f, 10) ? 0 :
		       1 + fz_below(f, fz_chance(f, 50) ? 4 * pg : FZ_WIN_SIZE);
		break;
	}
	return kind;
}

/*
 * The device reports a write (debugfs "report": vfio_mark_dirty()): the
 * errno is exact, and on success with tracking on, every page the range
 * touches must be in the next report.  migdev-1 reports nothing.
 */
static void t1_report(struct t1 *self, struct fuzz *f)
{
	static const unsigned int weight[NR_REP] = {
		[REP_WHOLE] = 20, [REP_TOUCH] = 15, [REP_PAGE] = 15,
		[REP_SHORT] = 15, [REP_BIG] = 10, [REP_ANY] = 10,
		[REP_RO] = 5, [REP_WRAP] = 5, [REP_HUGE] = 5,
	};
	struct model *m = &self->m;
	uint64_t iova, len, r = fz_below(f, 100);
	int kind, want, ret;

	for (kind = 0; kind < NR_REP - 1 && r >= weight[kind]; kind++)
		r -= weight[kind];
	kind = pick_report(f, m, kind, &iova, &len);
	fz_op(f, FZ_OP_REPORT, "%s iova 0x%llx len 0x%llx tracking %d",
	      rep_names[kind], (unsigned long long)iova,
	      (unsigned long long)len, m->tracking);
	want = m->precise ? m_report_predict(m, iova, len) : -EOPNOTSUPP;
	ret = fz_report_write(&self->md, iova, len);
	FZ_EXPECT_RET(f, ret, want);
	if (ret != want)
		return;
	if (ret)
		self->rep_err[kind]++;
	else
		self->rep_ok[kind]++;
	m_report_apply(m, iova, len, ret);
}

/* A report of the whole window holds what the model must see, exactly. */
static void t1_get_all(struct t1 *self, struct fuzz *f)
{
	uint64_t *bm = bm_ptr(self, BM_OK);
	int ret;

	fz_op(f, FZ_OP_GET, "the whole window, tracking %d", self->m.tracking);
	ret = vfio_get_bitmap_raw(self->md.container,
				  sizeof(struct vfio_mig_dirty_get), GET,
				  FZ_WIN_IOVA, FZ_WIN_SIZE, VFIO_MIG_PAGE_4K, bm,
				  FZ_WIN_PAGES / 8);
	FZ_EXPECT_RET(f, ret, self->m.tracking ? 0 : -EINVAL);
	if (ret)
		return;
	m_synced(&self->m);
	t1_check_bits(f, &self->m, bm, FZ_WIN_IOVA, FZ_WIN_SIZE, VFIO_MIG_PAGE_4K);
	m_reported(&self->m, FZ_WIN_IOVA, FZ_WIN_SIZE);
}

/* Every mapping of the model is there, and no other. */
static void t1_verify(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint32_t avail = dma_avail(self->md.container);
	int i;

	fz_op(f, FZ_OP_VERIFY, "%d mappings", m->nmaps);
	f->compound = true;
	for (i = 0; i < m->nmaps; i++)
		t1_probe(f, m, self->md.container, i);
	FZ_CHECK(f, avail + m->nmaps == self->avail0,
		 "DMA_AVAIL %u with %d mappings, %u with none", avail, m->nmaps,
		 self->avail0);
	m_check_pinned(f, m, &self->md);
	if (!f->failed)
		f->ok[FZ_OP_VERIFY]++;
}

static void t1_step(struct t1 *self, struct fuzz *f)
{
	uint64_t r = fz_below(f, 1000);

	if (r < 180)
		t1_map(self, f);
	else if (r < 220)
		t1_map_bad(self, f);
	else if (r < 300)
		t1_unmap(self, f, false);
	else if (r < 380)
		t1_unmap(self, f, true);
	else if (r < 420)
		t1_unmap_bad(self, f);
	else if (r < 430)
		t1_unmap_all(self, f);
	else if (r < 590)
		t1_get(self, f);
	else if (r < 640)
		t1_dirty(self, f);
	else if (r < 660)
		t1_info(self, f);
	else if (r < 930)
		t1_dma(self, f);
	else if (r < 990)
		t1_report(self, f);
	else
		t1_verify(self, f);
}

TEST_F_TIMEOUT(type1, fuzz, FZ_TIMEOUT)
{
	struct fuzz *f = &self->s.f;
	double t0 = fz_now_ms();
	static const struct fz_need need[] = {
		{ FZ_OP_REPORT, 20 },	/* first: migdev-precise only */
		{ FZ_OP_MAP, 50 },
		{ FZ_OP_UNMAP, 20 },
		{ FZ_OP_UNMAP_BITMAP, 10 },
		{ FZ_OP_GET, 40 },
		{ FZ_OP_DMA, 80 },
		{ FZ_OP_START, 5 },
		{ 0, 0 },
	};
	char line[512];
	int i, n;

	fz_init(f, variant->precise ? "type1-precise" : "type1", 15000);
	EXPECT_EQ(0, vfio_dirty(self->s.md.container, START));
	m_start(&self->s.m);
	while (fz_more(f))
		t1_step(&self->s, f);
	if (!f->failed) {
		t1_verify(&self->s, f);
		t1_get_all(&self->s, f);
		t1_unmap_all(&self->s, f);
	}
	EXPECT_EQ(0, f->failed);
	EXPECT_TRUE(fz_finish(f, t0, variant->precise ? need : need + 1));
	ksft_print_msg("  pages written by DMA commands that failed part-way, required: %lu\n",
		       self->s.m.wrote_failed);
	for (i = 0, n = 0; i < NR_REP; i++)
		n += snprintf(line + n, sizeof(line) - n, " %s %lu/%lu", rep_names[i],
			      self->s.rep_ok[i], self->s.rep_err[i]);
	ksft_print_msg("  reports by range, succeeded/failed as predicted:%s\n", line);
	if (f->iter >= 1000) {
		EXPECT_LE(20, f->gets_with_bits);
		EXPECT_LT(0, self->s.m.wrote_failed);
	}
	/* the tracker's run, list and bitmap each took a report */
	if (f->iter >= 1000 && variant->precise) {
		EXPECT_LT(0, self->s.rep_ok[REP_WHOLE]);
		EXPECT_LT(0, self->s.rep_ok[REP_PAGE]);
		EXPECT_LT(0, self->s.rep_ok[REP_BIG]);
	}
}

TEST_HARNESS_MAIN
