// SPDX-License-Identifier: GPL-2.0-only
/*
 * Concurrency stress of type1 dirty page tracking: eight threads on one
 * container for VFIO_STRESS_SECONDS (default 5), each doing one kind of
 * work, while a ledger in user space records what the devices wrote:
 *
 *   rw       migdev-1 A: vfio_dma_rw() writes (debugfs)
 *   keep     migdev-1 A: pin a working set, write into it, unpin (debugfs)
 *   precise  migdev-precise C: pin-write-unpin writes and working sets
 *   bar0     migdev-precise B: every DMA command started through BAR0
 *   mapper   MAP and UNMAP, with and without a bitmap, of half the mappings
 *   reporter GET_BITMAP at 4 KiB and coarser page sizes, over one mapping or
 *            several with holes; every 200 ms a full report, STOP, START
 *   save     A's migration region: pre-copy rounds, now and then
 *            stop-and-copy, back to running
 *   group    migdev-1 D: its group joins the container, its device opens,
 *            writes, pins, closes, the group leaves
 *
 * One page of every mapping is read-only in the user's memory, and one in
 * four writes is aimed from the page before it into it: such a write
 * fails half-way, having written the first page (vfio_dma_rw() copied
 * part of a chunk, a pin-write-unpin command wrote the pages it could
 * pin); so does one whose mapping the mapper takes away under it.  Every
 * call's result is checked against the errnos its situation allows.
 *
 * Time is a counter every thread increments before and after each call,
 * so the ledger knows which calls may have overlapped.  Each write is
 * seeded from its first tick, so that its pattern is its own.  A command
 * that succeeded wrote all its pages; of one that failed, the ledger
 * takes the pages whose memory holds a word of its pattern (read right
 * after it failed): it wrote them, and they must be reported like any
 * other.  Its other pages it may have written.
 *
 * At the end, every page a device wrote must have been reported: by a
 * report that ended after the write began and started before the end of
 * the first report that started after the write ended and covered the
 * page.  The bit of such a report proves the write was reported only if
 * nothing else can have set it: no other write that may have touched the
 * page's bit (the same page, or one sharing a coarse bit) and no pin of
 * a device that does not report its writes since the last report of the
 * page that ended before it began (that one reported and cleared what
 * ended before it began).  The writes of a working set go to pages of
 * their own, so that they are not each other's reason.  A write whose
 * reports have the bit only where something else may have set it too is
 * counted as ambiguous, one whose reports lack it is lost.  A write is
 * excused only by what may forget it: a STOP (a write that ended after
 * the report preceding the STOP began) or a successful unmap without a
 * bitmap of its mapping.
 *
 * Pages pinned by A and D (migdev-1, which reports nothing) must be in
 * every report that began after the pin succeeded and ended before
 * anything could unpin them (a release, the device's close, an unmap of
 * the mapping): that is what makes their writes into those pages
 * reported, which type1 does not see.  Then, quiet and with nothing
 * pinned, a report must find nothing dirty once the unpins are reported.
 * The kernel must not splat, hang or leak meanwhile (the test runner
 * checks the console and kmemleak).
 */
#include <pthread.h>
#include <time.h>

#include "../kselftest_harness.h"
#include <vfio_mig_migdev.h>

#define NSLOTS		16
#define STABLE		8		/* slots below it are never unmapped */
#define SLOT_PAGES	32
#define SLOT_SIZE	(SLOT_PAGES * VFIO_MIG_PAGE_4K)
#define SLOT_STRIDE	(2ULL << 20)	/* a hole after each mapping */
#define BASE		0x100000000ULL
#define NPAGES		(NSLOTS * SLOT_PAGES)
#define NWORDS		(NPAGES / 64)
#define CYCLE_MS	200

enum { T_RW, T_KEEP, T_PRECISE, T_BAR0, T_MAPPER, T_REPORTER, T_SAVE,
	T_GROUP, NTHREADS };

static const char * const thread_names[NTHREADS] = {
	"rw", "keep", "precise", "bar0", "mapper", "reporter", "save", "group",
};

/*
 * A write a device made or may have made: pages [first, first + n) by
 * the command whose first tick is @id, between ticks b and e.  @must: it
 * did (the command succeeded, or the memory of the page holds what it
 * wrote), and the page must be reported; else it is only a possible
 * reason for the page to be dirty.  @failed: the command failed.
 * @pinned: into pages its device (migdev-1) keeps pinned: type1 learns
 * nothing of it, the pin makes the page dirty (see struct pin).
 */
struct wr {
	uint64_t b, e, id;
	uint32_t first, n;
	const char *what;	/* the command */
	char dev;		/* its device */
	bool must, failed, pinned;
};

/*
 * Pages [first, first + n) pinned by a device that does not report its
 * writes (A, D), from tick b until tick e, when their unpin had ended.
 * When the pin succeeded (@must), every report that began after @pinned
 * and ended before @until (when what may unpin them began) has them.
 */
struct pin {
	uint64_t b, pinned, until, e;
	uint32_t first, n;
	char dev;
	bool must;
};

/* A report: the pages it covered and the ones it reported. */
struct rep {
	uint64_t b, e;
	uint32_t per;		/* 4 KiB pages per bit */
	uint64_t covered[NWORDS];
	uint64_t dirty[NWORDS];
};

/* An unmap of a slot, or the start of a tracking epoch. */
struct span {
	uint64_t b, e;
	uint32_t slot;
};

struct vec {
	void *v;
	size_t n, cap, size;
};

struct stress {
	struct migdev a, b, c;
	char d_uuid[256];
	int d_group_id;
	int container;
	uint8_t *mem;
	uint64_t clk;
	bool stop;
	uint64_t deadline_ns;
	pthread_mutex_t lock;		/* the vectors and the first failure */
	struct vec writes, pins, reports, unmaps, attempts, epochs, sweeps;
	char failure[512];
	unsigned long ops[NTHREADS], refused[NTHREADS];
	unsigned long failed_writes, found_pages;
	bool mapped[NSLOTS];		/* the mapper's, then the main thread's */
	int cycles;
};

static uint64_t tick(struct stress *st)
{
	return __atomic_add_fetch(&st->clk, 1, __ATOMIC_SEQ_CST);
}

/* The seed of the write that began at tick @t: its pattern is its own. */
static uint32_t seed_of(uint64_t t)
{
	t *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(t ^ t >> 32);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static bool running(struct stress *st)
{
	return !__atomic_load_n(&st->stop, __ATOMIC_RELAXED) &&
	       now_ns() < st->deadline_ns;
}

static void vec_add(struct vec *v, const void *item)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 1024;
		v->v = realloc(v->v, v->cap * v->size);
		if (!v->v) {
			perror("realloc");
			abort();
		}
	}
	memcpy((char *)v->v + v->n * v->size, item, v->size);
	v->n++;
}

static void push(struct stress *st, struct vec *v, const void *item)
{
	pthread_mutex_lock(&st->lock);
	vec_add(v, item);
	pthread_mutex_unlock(&st->lock);
}

/* Record the first unexpected result and stop every thread. */
static void fail(struct stress *st, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&st->lock);
	if (!st->failure[0]) {
		va_start(ap, fmt);
		vsnprintf(st->failure, sizeof(st->failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&st->lock);
	__atomic_store_n(&st->stop, true, __ATOMIC_RELAXED);
}

static uint32_t rnd(uint64_t *s, uint32_t n)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 11) % n;
}

static uint64_t slot_iova(uint32_t slot)
{
	return BASE + slot * SLOT_STRIDE;
}

/* The page of slot @slot that is read-only in the user's memory, not 0. */
static uint32_t ro_page(uint32_t slot)
{
	return 1 + (7 * slot + 5) % (SLOT_PAGES - 1);
}

static void set_range(uint64_t *bits, uint32_t first, uint32_t n)
{
	for (; n; first++, n--)
		bits[first / 64] |= 1ULL << (first % 64);
}

static bool test_bit64(const uint64_t *bits, uint32_t i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

/*
 * A report of slots [s0, s1] between ticks b and e: bitmap @bm at @pgsize
 * from the start of slot s0.
 */
static void record_report(struct stress *st, uint64_t b, uint64_t e,
			  uint32_t s0, uint32_t s1, const uint64_t *bm,
			  uint64_t pgsize)
{
	struct rep r = { .b = b, .e = e, .per = pgsize / VFIO_MIG_PAGE_4K };
	uint32_t slot, i;

	for (slot = s0; slot <= s1; slot++) {
		set_range(r.covered, slot * SLOT_PAGES, SLOT_PAGES);
		for (i = 0; i < SLOT_PAGES; i++) {
			uint64_t bit = (slot_iova(slot) - slot_iova(s0) +
					i * VFIO_MIG_PAGE_4K) / pgsize;

			if (test_bit64(bm, bit))
				set_range(r.dirty, slot * SLOT_PAGES + i, 1);
		}
	}
	push(st, &st->reports, &r);
}

/* The extent of a write of @len bytes at @off into page @page of @slot. */
static void wr_extent(struct wr *w, uint32_t slot, uint32_t page,
		      uint32_t off, uint32_t len)
{
	w->first = slot * SLOT_PAGES + page + off / VFIO_MIG_PAGE_4K;
	w->n = (off % VFIO_MIG_PAGE_4K + len - 1) / VFIO_MIG_PAGE_4K + 1;
}

/*
 * Write @w (its extent, ticks and device set) of @len bytes at @iova
 * returned @ret: into the ledger.  A failed one wrote the pages whose
 * memory holds a word of its pattern, and may have written the others.
 */
static void ledger_write(struct stress *st, struct wr *w, int ret,
			 uint64_t iova, uint32_t len)
{
	uint32_t slot = (iova - BASE) / SLOT_STRIDE, seed = seed_of(w->id), k, i;
	uint64_t off = iova - slot_iova(slot), found = 0;
	const uint8_t *mem = st->mem + slot * SLOT_SIZE + off;
	struct wr pw;

	w->must = !ret;
	w->failed = !!ret;
	w->pinned = !strcmp(w->what, "kept") && (w->dev == 'A' || w->dev == 'D');
	push(st, &st->writes, w);
	if (!ret)
		return;
	for (k = 0; k + 4 <= len; k += 4) {
		uint32_t want = seed + k / 4, got;

		if (!want)	/* memory nobody wrote reads 0 */
			continue;
		memcpy(&got, mem + k, 4);
		if (got != want)
			continue;
		found |= 1ULL << ((off + k) / VFIO_MIG_PAGE_4K - off / VFIO_MIG_PAGE_4K);
		found |= 1ULL << ((off + k + 3) / VFIO_MIG_PAGE_4K - off / VFIO_MIG_PAGE_4K);
	}
	pw = *w;
	pw.n = 1;
	pw.must = true;
	pthread_mutex_lock(&st->lock);
	st->failed_writes++;
	for (i = 0; i < w->n; i++) {
		if (!(found >> i & 1))
			continue;
		pw.first = w->first + i;
		vec_add(&st->writes, &pw);
		st->found_pages++;
	}
	pthread_mutex_unlock(&st->lock);
}

/*
 * One DMA command through debugfs into slot @slot from its page @page,
 * @len bytes at @off into it, seeded from its first tick; @w gets its
 * extent and ticks.  A command that @writes goes into the ledger.
 */
static int dma(struct stress *st, struct migdev *md, const char *cmd,
	       uint32_t slot, uint32_t page, uint32_t off, uint32_t len,
	       bool writes, struct wr *w)
{
	uint64_t iova = slot_iova(slot) + page * VFIO_MIG_PAGE_4K + off;
	int ret;

	w->b = tick(st);
	w->id = w->b;
	ret = migdev_dma(md, cmd, iova, len, seed_of(w->b));
	w->e = tick(st);
	wr_extent(w, slot, page, off, len);
	w->what = cmd;
	w->dev = md == &st->a ? 'A' : md == &st->c ? 'C' : 'D';
	if (writes)
		ledger_write(st, w, ret, iova, len);
	return ret;
}

/*
 * A random extent of at most @max_pages pages inside one slot.  One in
 * four runs from the page before the slot's read-only page into it: a
 * write there fails half-way, having written the first page (part of a
 * chunk of vfio_dma_rw(), or the pages pinned before the one that could
 * not be).
 */
static void pick(uint64_t *s, uint32_t max_pages, uint32_t *slot,
		 uint32_t *page, uint32_t *off, uint32_t *len)
{
	uint32_t pages = 1 + rnd(s, max_pages);

	*slot = rnd(s, NSLOTS);
	*off = rnd(s, VFIO_MIG_PAGE_4K) & ~3U;
	if (max_pages > 1 && !rnd(s, 4)) {
		*page = ro_page(*slot) - 1;
		*len = VFIO_MIG_PAGE_4K - *off + 1 + rnd(s, VFIO_MIG_PAGE_4K);
		return;
	}
	*page = rnd(s, SLOT_PAGES - pages + 1);
	*len = 1 + rnd(s, pages * VFIO_MIG_PAGE_4K - *off);
}

struct worker {
	struct stress *st;
	int id;
	uint64_t seed;
	struct vec pins;	/* its device's pins, in order */
	size_t open;		/* pins from it on have no @until yet */
	size_t pinned;		/* pins from it on are not unpinned yet */
};

/*
 * Count a call of thread @w and check its result @ret: 0, or minus one of
 * the errnos that follow, a list ended by 0.
 */
static void check(struct worker *w, const char *what, int ret, ...)
{
	bool ok = !ret;
	va_list ap;
	int err;

	va_start(ap, ret);
	while ((err = va_arg(ap, int)))
		ok |= ret == -err;
	va_end(ap);
	if (!ok)
		fail(w->st, "%s: %s: unexpected %d", thread_names[w->id], what, ret);
	w->st->ops[w->id]++;
	if (ret)
		w->st->refused[w->id]++;
}

/* A pin call of @w's device (migdev-1) made @k and returned @ret. */
static void pin_begin(struct worker *w, const struct wr *k, int ret)
{
	struct pin p = {
		.b = k->b, .pinned = k->e, .until = UINT64_MAX, .e = UINT64_MAX,
		.first = k->first, .n = k->n, .dev = k->dev, .must = !ret,
	};

	vec_add(&w->pins, &p);
}

/*
 * A call that may unpin every page of @w's device ran from @b to @e:
 * the pins it may end are no longer due from @b on, and when it
 * succeeded (@unpinned) they are gone at @e.
 */
static void pin_end(struct worker *w, uint64_t b, uint64_t e, bool unpinned)
{
	struct pin *p = w->pins.v;

	for (; w->open < w->pins.n; w->open++)
		p[w->open].until = b;
	for (; unpinned && w->pinned < w->pins.n; w->pinned++)
		p[w->pinned].e = e;
}

/* rw: vfio_dma_rw() writes of A; stopped (-EBUSY) during stop-and-copy. */
static void *rw_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint32_t slot, page, off, len;
	struct wr wr;

	while (running(st)) {
		pick(&w->seed, 3, &slot, &page, &off, &len);
		/* unmapped (-EINVAL) or read-only (-EFAULT) memory */
		check(w, "rw", dma(st, &st->a, "rw", slot, page, off, len, true, &wr),
		      EINVAL, EFAULT, EBUSY, 0);
	}
	return NULL;
}

/*
 * A working set: pin @pages pages of a slot (@imprecise: the device does
 * not report its writes, so its pinned pages are dirty), write into them
 * a few times, unpin.  The writes go to pages of their own: in the
 * ledger, none is the reason another one's page is dirty.
 */
static void working_set(struct worker *w, struct migdev *md, bool imprecise)
{
	struct stress *st = w->st;
	uint32_t slot, page, off, len, pages = 1 + rnd(&w->seed, 8), i, nw;
	struct wr k, wr;
	int ret;

	slot = rnd(&w->seed, NSLOTS);
	page = rnd(&w->seed, SLOT_PAGES - pages + 1);
	ret = dma(st, md, "keep", slot, page, 0, pages * VFIO_MIG_PAGE_4K, false, &k);
	check(w, "keep", ret, EINVAL, EFAULT, EBUSY, ENOSPC, 0);
	if (imprecise)
		pin_begin(w, &k, ret);
	nw = pages < 3 ? pages : 3;
	for (i = 0; !ret && i < nw; i++) {
		uint32_t p0 = i * pages / nw, n = (i + 1) * pages / nw - p0;

		off = rnd(&w->seed, n * VFIO_MIG_PAGE_4K);
		len = 1 + rnd(&w->seed, n * VFIO_MIG_PAGE_4K - off);
		/* the pages may be unmapped under it: -EFAULT */
		check(w, "kept", dma(st, md, "kept", slot, page + p0, off, len,
				     true, &wr),
		      EFAULT, EBUSY, 0);
	}
	ret = dma(st, md, "release", 0, 0, 0, 0, false, &wr);
	check(w, "release", ret, EBUSY, 0);
	if (imprecise)
		pin_end(w, wr.b, wr.e, !ret);
}

static void *keep_thread(void *arg)
{
	struct worker *w = arg;

	while (running(w->st))
		working_set(w, &w->st->a, true);
	return NULL;
}

/* precise: C's pin-write-unpin writes and working sets. */
static void *precise_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint32_t slot, page, off, len;
	struct wr wr;
	int ret;

	while (running(st)) {
		if (rnd(&w->seed, 4)) {
			pick(&w->seed, 3, &slot, &page, &off, &len);
			ret = dma(st, &st->c, "pin", slot, page, off, len, true, &wr);
			check(w, "pin", ret, EINVAL, EFAULT, 0);
		} else {
			working_set(w, &st->c, false);
		}
	}
	return NULL;
}

/*
 * One command through B's BAR0, as a guest driver: 0 or -errno.  A success
 * shows as a count change, a failure as a status change: bar0_thread runs
 * a command that may fail only after one that succeeded (status 0), and
 * after a failure only a release, which succeeds.  A command that @writes
 * goes into the ledger.
 */
static int bar0_cmd(struct stress *st, uint32_t cmd, uint32_t slot,
		    uint32_t page, uint32_t off, uint32_t len, bool writes)
{
	uint64_t iova = slot_iova(slot) + page * VFIO_MIG_PAGE_4K + off;
	uint32_t count = bar0_read32(&st->b, MIGDEV_REG_DMA_COUNT);
	uint32_t status = bar0_read32(&st->b, MIGDEV_REG_DMA_STATUS);
	struct wr w;
	int ret;

	w.b = tick(st);
	w.id = w.b;
	ret = bar0_dma(&st->b, cmd, iova, len, seed_of(w.b));
	if (!ret && !bar0_poll(&st->b, count, status))
		ret = -ETIMEDOUT;
	w.e = tick(st);
	if (ret)
		return ret;	/* the command did not run */
	if (bar0_read32(&st->b, MIGDEV_REG_DMA_COUNT) == count)
		ret = (int)bar0_read32(&st->b, MIGDEV_REG_DMA_STATUS);
	if (writes) {
		wr_extent(&w, slot, page, off, len);
		w.what = "bar0";
		w.dev = 'B';
		ledger_write(st, &w, ret, iova, len);
	}
	return ret;
}

static void *bar0_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint32_t slot, page, off, len, cmd;
	int ret;

	while (running(st)) {
		cmd = MIGDEV_CMD_WRITE_PIN + rnd(&w->seed, MIGDEV_CMD_WRITE_KEPT);
		pick(&w->seed, cmd == MIGDEV_CMD_PIN ? 8 : 3, &slot, &page, &off, &len);
		ret = bar0_cmd(st, cmd, slot, page, off, len,
			       cmd != MIGDEV_CMD_PIN && cmd != MIGDEV_CMD_UNPIN);
		check(w, "bar0 command", ret, EINVAL, EFAULT, ENOSPC, 0);
		if (ret) {
			/* a release succeeds: the status is 0 again */
			ret = bar0_cmd(st, MIGDEV_CMD_UNPIN, 0, 0, 0, 0, false);
			check(w, "bar0 release", ret, 0);
		}
	}
	return NULL;
}

/* UNMAP without a bitmap: the unmapped size, or -errno. */
static int64_t unmap_plain(int container, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};

	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap))
		return -errno;
	return unmap.size;
}

/*
 * Unmap @slot, with a bitmap or without.  Every attempt may unpin the
 * devices' pages in it (they are told first); an unmap without a bitmap
 * that succeeded forgets what was written there.
 */
static void mapper_unmap(struct worker *w, uint32_t slot)
{
	struct stress *st = w->st;
	uint64_t bm[1] = { 0 }, unmapped = 0;
	struct span u = { .slot = slot };
	int64_t n;
	int ret;

	if (rnd(&w->seed, 4)) {
		u.b = tick(st);
		ret = vfio_unmap_bitmap(st->container, slot_iova(slot), SLOT_SIZE,
					VFIO_MIG_PAGE_4K, bm, sizeof(bm), &unmapped);
		u.e = tick(st);
		push(st, &st->attempts, &u);
		/*
		 * tracking is off between the reporter's STOP and START;
		 * drivers kept pinning in it: -EBUSY
		 */
		check(w, "unmap with a bitmap", ret, EINVAL, EBUSY, 0);
		if (!ret) {
			record_report(st, u.b, u.e, slot, slot, bm, VFIO_MIG_PAGE_4K);
			if (unmapped != SLOT_SIZE)
				fail(st, "mapper: unmap with a bitmap: %llu bytes unmapped",
				     (unsigned long long)unmapped);
			st->mapped[slot] = false;
			return;
		}
	}
	u.b = tick(st);
	n = unmap_plain(st->container, slot_iova(slot), SLOT_SIZE);
	u.e = tick(st);
	push(st, &st->attempts, &u);
	check(w, "unmap", n < 0 ? (int)n : 0, EBUSY, 0);
	if (n < 0)
		return;		/* the mapping is whole, its dirty pages too */
	push(st, &st->unmaps, &u);
	if (n != (int64_t)SLOT_SIZE)
		fail(st, "mapper: unmap: %lld bytes unmapped", (long long)n);
	st->mapped[slot] = false;
}

/* MAP and UNMAP of the slots from STABLE up; the mapper owns their state. */
static void *mapper_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint32_t slot;
	int ret;

	while (running(st)) {
		slot = STABLE + rnd(&w->seed, NSLOTS - STABLE);
		if (!st->mapped[slot]) {
			ret = vfio_map(st->container, slot_iova(slot),
				       st->mem + slot * SLOT_SIZE, SLOT_SIZE);
			check(w, "map", ret, 0);
			st->mapped[slot] = !ret;
		} else if (!rnd(&w->seed, 8)) {
			ret = vfio_map(st->container, slot_iova(slot),
				       st->mem + slot * SLOT_SIZE, SLOT_SIZE);
			check(w, "map over a mapping", ret == -EEXIST ? 0 : ret ?: -1, 0);
		} else {
			mapper_unmap(w, slot);
		}
		usleep(rnd(&w->seed, 2000));
	}
	return NULL;
}

/* GET_BITMAP of slots [s0, s1] at @pgsize; in the ledger when it succeeds. */
static int get(struct stress *st, uint32_t s0, uint32_t s1, uint64_t pgsize)
{
	uint64_t bm[(NSLOTS * SLOT_STRIDE / VFIO_MIG_PAGE_4K) / 64] = { 0 };
	uint64_t size = slot_iova(s1) + SLOT_SIZE - slot_iova(s0);
	uint64_t b = tick(st);
	int ret;

	ret = vfio_get_bitmap(st->container, slot_iova(s0), size, pgsize, bm,
			      vfio_mig_bitmap_bytes(size, pgsize));
	if (!ret)
		record_report(st, b, tick(st), s0, s1, bm, pgsize);
	return ret;
}

/*
 * Every CYCLE_MS: a report of every slot (the last chance for what was
 * written before it), STOP, START.  In between: reports of random ranges
 * of slots.  Tracking is on but for this thread's STOP and START: every
 * report succeeds.
 */
static void *reporter_thread(void *arg)
{
	static const uint64_t pgsizes[] = {
		VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, 2 * VFIO_MIG_PAGE_4K,
		16 * VFIO_MIG_PAGE_4K
	};
	struct worker *w = arg;
	struct stress *st = w->st;
	uint64_t next = now_ns() + CYCLE_MS * 1000000ULL;
	struct span ep;
	uint32_t s0, s1, slot;
	int ret;

	while (running(st)) {
		if (now_ns() >= next) {
			ep.b = tick(st);
			push(st, &st->sweeps, &ep);
			/* holes, such as unmapped slots, report nothing */
			for (slot = 0; slot < NSLOTS; slot++)
				check(w, "GET_BITMAP", get(st, slot, slot, VFIO_MIG_PAGE_4K), 0);
			check(w, "STOP",
			      vfio_dirty(st->container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), 0);
			check(w, "START",
			      vfio_dirty(st->container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
			ep.e = tick(st);
			push(st, &st->epochs, &ep);
			st->cycles++;
			next = now_ns() + CYCLE_MS * 1000000ULL;
			continue;
		}
		s0 = rnd(&w->seed, NSLOTS);
		s1 = s0 + rnd(&w->seed, NSLOTS - s0);
		ret = get(st, s0, s1, pgsizes[rnd(&w->seed, 4)]);
		check(w, "GET_BITMAP", ret, 0);
		/* leave the devices' threads some of the CPU */
		usleep(rnd(&w->seed, 500));
	}
	return NULL;
}

/* save: A's migration region, as QEMU 7.2 reads it. */
static int save_chunks(struct stress *st, int max)
{
	static uint8_t buf[8 + MIGDEV_DATA_SIZE];
	size_t len;
	int i;

	for (i = 0; i < max && mig_read64(&st->a, MIGDEV_HDR_PENDING); i++) {
		len = 0;
		if (migdev_save_chunk(&st->a, buf, &len, sizeof(buf), NULL) < 0)
			return -EIO;
	}
	return 0;
}

static void *save_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;

	while (running(st)) {
		check(w, "to pre-copy", mig_set_state(&st->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING),
		      0);
		check(w, "pre-copy", save_chunks(st, 1 + rnd(&w->seed, 4)), 0);
		if (!rnd(&w->seed, 4)) {
			/* stop-and-copy: A's DMA is refused (-EBUSY) meanwhile */
			check(w, "to stop-and-copy", mig_set_state(&st->a, MIGDEV_V1_SAVING), 0);
			check(w, "stop-and-copy", save_chunks(st, 1000), 0);
		}
		check(w, "to running", mig_set_state(&st->a, MIGDEV_V1_RUNNING), 0);
		usleep(rnd(&w->seed, 5000));
	}
	return NULL;
}

/* group: D's group joins the container, its device works, it leaves. */
static void *group_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint32_t slot, page, off, len;
	struct migdev d = { .fd = -1 };
	struct wr wr, k;
	char path[64];
	uint64_t b;
	int group, ret;

	snprintf(d.uuid, sizeof(d.uuid), "%s", st->d_uuid);
	snprintf(path, sizeof(path), "/dev/vfio/%d", st->d_group_id);
	group = open(path, O_RDWR);
	check(w, "group open", group < 0 ? -errno : 0, 0);
	while (group >= 0 && running(st)) {
		ret = ioctl(group, VFIO_GROUP_SET_CONTAINER, &st->container) ? -errno : 0;
		check(w, "VFIO_GROUP_SET_CONTAINER", ret, 0);
		if (ret)
			break;
		d.fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, d.uuid);
		check(w, "VFIO_GROUP_GET_DEVICE_FD", d.fd < 0 ? -errno : 0, 0);
		if (d.fd >= 0) {
			pick(&w->seed, 3, &slot, &page, &off, &len);
			check(w, "rw", dma(st, &d, "rw", slot, page, off, len, true, &wr),
			      EINVAL, EFAULT, 0);
			pick(&w->seed, 4, &slot, &page, &off, &len);
			/* pinned, and unpinned when the device closes */
			ret = dma(st, &d, "keep", slot, page, off, len, false, &k);
			check(w, "keep", ret, EINVAL, EFAULT, 0);
			pin_begin(w, &k, ret);
			b = tick(st);
			close(d.fd);
			pin_end(w, b, tick(st), true);
		}
		ret = ioctl(group, VFIO_GROUP_UNSET_CONTAINER) ? -errno : 0;
		check(w, "VFIO_GROUP_UNSET_CONTAINER", ret, 0);
	}
	if (group >= 0)
		close(group);
	return NULL;
}

static void *(*const thread_fns[NTHREADS])(void *) = {
	rw_thread, keep_thread, precise_thread, bar0_thread, mapper_thread,
	reporter_thread, save_thread, group_thread,
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t i;

	thread_fns[w->id](w);
	/* pins never released end after everything */
	for (i = 0; i < w->pins.n; i++)
		push(w->st, &w->st->pins, (struct pin *)w->pins.v + i);
	return NULL;
}

static int cmp_b(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* The last element of sorted spans whose e is below @t, or -1. */
static long last_before(const struct vec *v, uint64_t t)
{
	const struct span *s = v->v;
	long lo = 0, hi = (long)v->n - 1, ans = -1;

	while (lo <= hi) {
		long mid = (lo + hi) / 2;

		if (s[mid].e < t) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

/* ---- the ledger ---- */

/* A possible reason for a page to be dirty: a write, or an imprecise pin. */
struct cause {
	uint64_t b, e, id;	/* id: the command; 0 for a pin */
};

/* What the ledger knows of a page. */
struct page_ix {
	uint32_t *rep;		/* the reports that covered it, by b */
	struct cause *wr;	/* the writes that may have touched it, by b */
	struct cause *pin;	/* its imprecise pins */
	uint32_t nrep, nwr, npin;
};

struct ledger {
	struct page_ix pg[NPAGES];
	uint64_t wr_maxlen, rep_maxlen;
	/* page writes: checked, and how */
	unsigned long checked, verified, ambiguous, excused, lost;
	unsigned long by_dev[4], verified_by_dev[4], from_failed, failed_verified;
	/* pinned pages in reports, and the writes into them */
	unsigned long pins_checked, pins_lost, pin_covered;
};

enum { L_LOST, L_VERIFIED, L_AMBIGUOUS, L_EXCUSED };

/* The first of @n report indexes @ix whose report began after @t. */
static uint32_t rep_after(const struct rep *r, const uint32_t *ix, uint32_t n,
			  uint64_t t)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (r[ix[mid]].b > t)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int cmp_cause(const void *x, const void *y)
{
	return cmp_b(x, y);
}

static void ledger_build(struct stress *st, struct ledger *lg)
{
	const struct rep *r = st->reports.v;
	const struct wr *w = st->writes.v;
	const struct pin *pn = st->pins.v;
	struct page_ix *pi;
	uint32_t p, q;
	size_t i;

	memset(lg, 0, sizeof(*lg));
	for (i = 0; i < st->reports.n; i++) {
		lg->rep_maxlen = r[i].e - r[i].b > lg->rep_maxlen ?
				 r[i].e - r[i].b : lg->rep_maxlen;
		for (p = 0; p < NPAGES; p++)
			lg->pg[p].nrep += test_bit64(r[i].covered, p);
	}
	for (i = 0; i < st->writes.n; i++) {
		lg->wr_maxlen = w[i].e - w[i].b > lg->wr_maxlen ?
				w[i].e - w[i].b : lg->wr_maxlen;
		for (p = w[i].first; p < w[i].first + w[i].n; p++)
			lg->pg[p].nwr++;
	}
	for (i = 0; i < st->pins.n; i++)
		for (p = pn[i].first; p < pn[i].first + pn[i].n; p++)
			lg->pg[p].npin++;
	for (p = 0; p < NPAGES; p++) {
		pi = &lg->pg[p];
		pi->rep = calloc(pi->nrep + 1, sizeof(*pi->rep));
		pi->wr = calloc(pi->nwr + 1, sizeof(*pi->wr));
		pi->pin = calloc(pi->npin + 1, sizeof(*pi->pin));
		if (!pi->rep || !pi->wr || !pi->pin) {
			perror("calloc");
			abort();
		}
		pi->nrep = 0;
		pi->nwr = 0;
		pi->npin = 0;
	}
	for (i = 0; i < st->reports.n; i++)
		for (p = 0; p < NPAGES; p++)
			if (test_bit64(r[i].covered, p)) {
				pi = &lg->pg[p];
				pi->rep[pi->nrep++] = i;
			}
	for (i = 0; i < st->writes.n; i++)
		for (p = w[i].first; p < w[i].first + w[i].n; p++) {
			pi = &lg->pg[p];
			pi->wr[pi->nwr++] = (struct cause){ w[i].b, w[i].e, w[i].id };
		}
	for (i = 0; i < st->pins.n; i++)
		for (p = pn[i].first; p < pn[i].first + pn[i].n; p++) {
			pi = &lg->pg[p];
			pi->pin[pi->npin++] = (struct cause){ pn[i].b, pn[i].e, 0 };
		}
	for (q = 0; q < NPAGES; q++)
		qsort(lg->pg[q].wr, lg->pg[q].nwr, sizeof(struct cause), cmp_cause);
}

static void ledger_free(struct ledger *lg)
{
	uint32_t p;

	for (p = 0; p < NPAGES; p++) {
		free(lg->pg[p].rep);
		free(lg->pg[p].wr);
		free(lg->pg[p].pin);
	}
}

/*
 * Whether the bit of page @p in its k-th report can have been set by
 * something other than the write of command @id: another write that may
 * have touched a page of that bit, or an imprecise pin of one, since the
 * last report of the page that ended before this one began (that one
 * began after what ended before it: it reported and cleared it, the log
 * of a precise device read out first).
 */
static bool other_cause(const struct stress *st, const struct ledger *lg,
			uint32_t p, uint32_t k, uint64_t id)
{
	const struct rep *r = st->reports.v;
	const struct page_ix *pi = &lg->pg[p];
	const struct rep *rp = &r[pi->rep[k]];
	uint32_t j, q, q0 = p - (p % SLOT_PAGES) % rp->per;
	uint64_t h = 0;

	for (j = k; j-- > 0;) {
		if (r[pi->rep[j]].e < rp->b) {
			h = r[pi->rep[j]].b;
			break;
		}
	}
	for (q = q0; q < q0 + rp->per; q++) {
		const struct page_ix *qi = &lg->pg[q];
		uint32_t lo = 0, hi = qi->nwr;

		for (j = 0; j < qi->npin; j++)
			if (qi->pin[j].b < rp->e && qi->pin[j].e > h)
				return true;
		/* the writes that began before the report ended */
		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;

			if (qi->wr[mid].b < rp->e)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (j = lo; j-- > 0 && qi->wr[j].b + lg->wr_maxlen > h;)
			if (qi->wr[j].id != id && qi->wr[j].e > h)
				return true;
	}
	return false;
}

/* Whether a successful unmap of @slot without a bitmap ran in (b, until). */
static bool unmapped_between(const struct stress *st, uint32_t slot,
			     uint64_t b, uint64_t until)
{
	const struct span *u = st->unmaps.v;
	size_t i;

	for (i = 0; i < st->unmaps.n; i++)
		if (u[i].slot == slot && u[i].e > b && u[i].b < until)
			return true;
	return false;
}

/* Whether write @w of page @p was reported: see the top of the file. */
static int ledger_page(const struct stress *st, const struct ledger *lg,
		       const struct wr *w, uint32_t p)
{
	const struct rep *r = st->reports.v;
	const struct page_ix *pi = &lg->pg[p];
	uint64_t until = UINT64_MAX;
	bool seen = false;
	uint32_t k;

	/* the first report of the page that began after the write ended */
	k = rep_after(r, pi->rep, pi->nrep, w->e);
	if (k < pi->nrep)
		until = r[pi->rep[k]].e;
	/* the reports that may have carried the write */
	k = rep_after(r, pi->rep, pi->nrep,
		      w->b > lg->rep_maxlen ? w->b - lg->rep_maxlen : 0);
	for (; k < pi->nrep && r[pi->rep[k]].b < until; k++) {
		const struct rep *rp = &r[pi->rep[k]];

		if (rp->e < w->b || !test_bit64(rp->dirty, p))
			continue;
		seen = true;
		if (!other_cause(st, lg, p, k, w->id))
			return L_VERIFIED;
	}
	if (unmapped_between(st, p / SLOT_PAGES, w->b, until))
		return L_EXCUSED;
	return seen ? L_AMBIGUOUS : L_LOST;
}

/* What the ledger knows around write @w of page @p, which was lost. */
static void explain(const struct stress *st, const struct ledger *lg,
		    const struct wr *w, uint32_t p)
{
	const struct rep *r = st->reports.v;
	const struct wr *wr = st->writes.v;
	const struct page_ix *pi = &lg->pg[p];
	size_t i;

	ksft_print_msg("around the first lost write (ticks; 1 = page reported):\n");
	for (i = 0; i < pi->nrep; i++) {
		const struct rep *rp = &r[pi->rep[i]];

		if (rp->b + 100 > w->b && rp->b < w->e + 100)
			ksft_print_msg("  report [%llu, %llu] %d\n",
				       (unsigned long long)rp->b,
				       (unsigned long long)rp->e,
				       test_bit64(rp->dirty, p));
	}
	for (i = 0; i < st->writes.n; i++)
		if (wr[i].b + 100 > w->b && wr[i].b < w->e + 100 &&
		    p >= wr[i].first && p < wr[i].first + wr[i].n)
			ksft_print_msg("  write %c %s%s [%llu, %llu]%s\n", wr[i].dev,
				       wr[i].what, wr[i].failed ? " (failed)" : "",
				       (unsigned long long)wr[i].b,
				       (unsigned long long)wr[i].e,
				       wr[i].must ? "" : " (may have)");
	for (i = 0; i < pi->npin; i++)
		if (pi->pin[i].b < w->e + 100 && pi->pin[i].e + 100 > w->b)
			ksft_print_msg("  pinned [%llu, %llu]\n",
				       (unsigned long long)pi->pin[i].b,
				       (unsigned long long)pi->pin[i].e);
}

/* Every write of the ledger whose page must be reported. */
static void ledger_writes(struct stress *st, struct ledger *lg)
{
	const struct span *sw = st->sweeps.v, *ep = st->epochs.v;
	const struct wr *wr = st->writes.v;
	size_t i, s;
	uint32_t p;

	for (i = 0; i < st->writes.n; i++) {
		long e = last_before(&st->epochs, wr[i].b);

		if (!wr[i].must || e < 0)
			continue;
		if (wr[i].pinned) {
			lg->pin_covered += wr[i].n;
			continue;
		}
		/* written while tracking ran, before the report ahead of a STOP */
		for (s = 0; s < st->sweeps.n && sw[s].b <= ep[e].e;)
			s++;
		if (s == st->sweeps.n || sw[s].b <= wr[i].e) {
			lg->excused += wr[i].n;
			continue;
		}
		for (p = wr[i].first; p < wr[i].first + wr[i].n; p++) {
			int res = ledger_page(st, lg, &wr[i], p);

			lg->checked++;
			lg->by_dev[wr[i].dev - 'A']++;
			lg->from_failed += wr[i].failed;
			lg->verified += res == L_VERIFIED;
			lg->failed_verified += wr[i].failed && res == L_VERIFIED;
			lg->verified_by_dev[wr[i].dev - 'A'] += res == L_VERIFIED;
			lg->ambiguous += res == L_AMBIGUOUS;
			lg->excused += res == L_EXCUSED;
			if (res != L_LOST)
				continue;
			if (!lg->lost)
				explain(st, lg, &wr[i], p);
			if (lg->lost++ < 10)
				ksft_print_msg("lost: page %u (slot %u), %c %s%s [%llu, %llu]\n",
					       p, p / SLOT_PAGES, wr[i].dev, wr[i].what,
					       wr[i].failed ? " (failed part-way)" : "",
					       (unsigned long long)wr[i].b,
					       (unsigned long long)wr[i].e);
		}
	}
}

/* Page @p of pin @pn is in every report of (pn->pinned, @until). */
static void ledger_pin_page(struct stress *st, struct ledger *lg,
			    const struct pin *pn, uint32_t p, uint64_t until)
{
	const struct rep *r = st->reports.v;
	const struct page_ix *pi = &lg->pg[p];
	uint32_t k;

	for (k = rep_after(r, pi->rep, pi->nrep, pn->pinned);
	     k < pi->nrep && r[pi->rep[k]].b < until; k++) {
		const struct rep *rp = &r[pi->rep[k]];

		if (rp->e > until)
			continue;
		lg->pins_checked++;
		if (test_bit64(rp->dirty, p))
			continue;
		if (lg->pins_lost++ < 10)
			ksft_print_msg("page %u pinned by %c [%llu, %llu], not in [%llu, %llu]\n",
				       p, pn->dev, (unsigned long long)pn->b,
				       (unsigned long long)pn->pinned,
				       (unsigned long long)rp->b,
				       (unsigned long long)rp->e);
	}
}

/*
 * Every pin of A or D that succeeded: its pages are in every report that
 * began after it and ended before anything could unpin them (a release,
 * a close, an unmap of the slot).
 */
static void ledger_pins(struct stress *st, struct ledger *lg)
{
	const struct span *u = st->attempts.v;
	const struct pin *pn = st->pins.v;
	size_t i, j, lo, hi;
	uint32_t p;

	for (i = 0; i < st->pins.n; i++) {
		uint32_t slot = pn[i].first / SLOT_PAGES;
		uint64_t until = pn[i].until;

		if (!pn[i].must)
			continue;
		/* the mapper makes them one after the other: e grows with b */
		for (lo = 0, hi = st->attempts.n; lo < hi;) {
			j = (lo + hi) / 2;
			if (u[j].e < pn[i].b)
				lo = j + 1;
			else
				hi = j;
		}
		for (j = lo; j < st->attempts.n && u[j].b < until; j++)
			if (u[j].slot == slot)
				until = u[j].b;
		for (p = pn[i].first; p < pn[i].first + pn[i].n; p++)
			ledger_pin_page(st, lg, &pn[i], p, until);
	}
}

FIXTURE(stress) {
	struct stress st;
};

FIXTURE_SETUP(stress)
{
	struct stress *st = &self->st;
	struct migdev *md;
	uint32_t slot;
	int ret;

	memset(st, 0, sizeof(*st));
	for (md = &st->a; md <= &st->c; md++) {
		md->fd = -1;
		md->group = -1;
		md->container = -1;
	}
	st->container = -1;
	pthread_mutex_init(&st->lock, NULL);
	st->writes.size = sizeof(struct wr);
	st->pins.size = sizeof(struct pin);
	st->reports.size = sizeof(struct rep);
	st->unmaps.size = sizeof(struct span);
	st->attempts.size = sizeof(struct span);
	st->epochs.size = sizeof(struct span);
	st->sweeps.size = sizeof(struct span);

	ret = migdev_open_type(&st->a, MIGDEV_TYPE, 0, -1);
	st->d_group_id = vfio_find_mdev_group(MIGDEV_TYPE, 1, st->d_uuid,
					      sizeof(st->d_uuid));
	if (ret == -ENODEV || st->d_group_id < 0 ||
	    vfio_find_mdev_group(MIGDEV_PRECISE_TYPE, 1, NULL, 0) < 0)
		SKIP(return,
		     "migdev: needs two instances of migdev-1 and of migdev-precise");
	ASSERT_EQ(0, ret);
	st->container = st->a.container;
	ASSERT_EQ(0, migdev_open_type(&st->b, MIGDEV_PRECISE_TYPE, 0, st->container));
	ASSERT_EQ(0, migdev_open_type(&st->c, MIGDEV_PRECISE_TYPE, 1, st->container));
	st->mem = mmap(NULL, NSLOTS * SLOT_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st->mem);
	for (slot = 0; slot < NSLOTS; slot++) {
		ASSERT_EQ(0, mprotect(st->mem + slot * SLOT_SIZE +
				      ro_page(slot) * VFIO_MIG_PAGE_4K,
				      VFIO_MIG_PAGE_4K, PROT_READ));
		ASSERT_EQ(0, vfio_map(st->container, slot_iova(slot),
				      st->mem + slot * SLOT_SIZE, SLOT_SIZE));
		st->mapped[slot] = true;
	}
}

FIXTURE_TEARDOWN(stress)
{
	struct stress *st = &self->st;

	migdev_close(&st->c);
	migdev_close(&st->b);
	migdev_close(&st->a);
	if (st->mem)
		munmap(st->mem, NSLOTS * SLOT_SIZE);
	free(st->writes.v);
	free(st->pins.v);
	free(st->reports.v);
	free(st->unmaps.v);
	free(st->attempts.v);
	free(st->epochs.v);
	free(st->sweeps.v);
}

TEST_F_TIMEOUT(stress, eight_threads_lose_no_dirty_page, 900)
{
	struct stress *st = &self->st;
	const char *env = getenv("VFIO_STRESS_SECONDS");
	long seconds = env ? atol(env) : 5;
	struct worker workers[NTHREADS];
	pthread_t threads[NTHREADS];
	unsigned long pages = 0;
	uint64_t bm[1];		/* one slot at 4 KiB */
	uint64_t seed = now_ns();
	struct ledger *lg;
	struct span ep;
	const struct rep *rp;
	size_t i;
	uint32_t slot, p;
	int k;

	ASSERT_GT(seconds, 0);
	ksft_print_msg("%ld s, 8 threads, seed %llu\n", seconds,
		       (unsigned long long)seed);
	ASSERT_EQ(0, vfio_dirty(st->container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	ep.b = 0;
	ep.e = tick(st);
	push(st, &st->epochs, &ep);
	st->deadline_ns = now_ns() + seconds * 1000000000ULL;
	for (k = 0; k < NTHREADS; k++) {
		workers[k] = (struct worker){ st, k, seed * (k + 1) | 1 };
		workers[k].pins.size = sizeof(struct pin);
		ASSERT_EQ(0, pthread_create(&threads[k], NULL, worker_main, &workers[k]));
	}
	for (k = 0; k < NTHREADS; k++) {
		pthread_join(threads[k], NULL);
		free(workers[k].pins.v);
	}
	ASSERT_EQ(0, st->failure[0]) {
		ksft_print_msg("%s\n", st->failure);
	}

	/* the last report: of everything mapped, tracking on */
	ep.b = tick(st);
	push(st, &st->sweeps, &ep);
	ASSERT_EQ(MIGDEV_V1_RUNNING, mig_state(&st->a));
	for (slot = 0; slot < NSLOTS; slot++)
		if (st->mapped[slot])
			ASSERT_EQ(0, get(st, slot, slot, VFIO_MIG_PAGE_4K));

	for (k = 0; k < NTHREADS; k++)
		ksft_print_msg("%-8s %8lu calls, %lu refused as allowed\n",
			       thread_names[k], st->ops[k], st->refused[k]);
	for (k = 0; k < NTHREADS; k++)
		EXPECT_GT(st->ops[k], st->refused[k]);
	EXPECT_GT(st->cycles, 0);

	/* the ledger */
	qsort(st->reports.v, st->reports.n, sizeof(struct rep), cmp_b);
	qsort(st->epochs.v, st->epochs.n, sizeof(struct span), cmp_b);
	qsort(st->sweeps.v, st->sweeps.n, sizeof(struct span), cmp_b);
	qsort(st->attempts.v, st->attempts.n, sizeof(struct span), cmp_b);
	lg = calloc(1, sizeof(*lg));
	ASSERT_NE(NULL, lg);
	ledger_build(st, lg);
	ledger_writes(st, lg);
	ledger_pins(st, lg);
	rp = st->reports.v;
	for (p = 0; p < NPAGES; p++)
		for (i = 0; i < st->reports.n; i++)
			if (test_bit64(rp[i].dirty, p)) {
				pages++;
				break;
			}
	ksft_print_msg("ledger: %zu writes; %lu commands failed, %lu pages they wrote\n",
		       st->writes.n, st->failed_writes, st->found_pages);
	ksft_print_msg("page writes checked %lu (by failed commands %lu, %lu verified), lost %lu\n",
		       lg->checked, lg->from_failed, lg->failed_verified, lg->lost);
	ksft_print_msg("  verified %lu (a report had it and nothing else could set its bit)\n",
		       lg->verified);
	ksft_print_msg("  ambiguous %lu (its bit was set, but maybe for another write or a pin)\n",
		       lg->ambiguous);
	ksft_print_msg("  excused %lu (STOP, unmap without a bitmap)\n", lg->excused);
	ksft_print_msg("pinned pages in reports: %lu checked, %lu missing\n",
		       lg->pins_checked, lg->pins_lost);
	ksft_print_msg("page writes into them (A, D), which the pin makes dirty: %lu\n",
		       lg->pin_covered);
	ksft_print_msg("%zu reports, %d STOP/START cycles, %lu of %u pages reported\n",
		       st->reports.n, st->cycles, pages, NPAGES);
	for (k = 0; k < 4; k++)
		ksft_print_msg("page writes of device %c: %lu checked, %lu verified\n",
			       'A' + k, lg->by_dev[k], lg->verified_by_dev[k]);
	EXPECT_EQ(0, lg->lost);
	EXPECT_EQ(0, lg->pins_lost);
	for (k = 0; k < 4; k++)
		EXPECT_GT(lg->verified_by_dev[k], 0);
	/* the ledger proves most of what it checks */
	EXPECT_GE(3 * lg->verified, lg->checked);
	EXPECT_GT(lg->failed_verified, 0);
	EXPECT_GT(lg->pins_checked, 0);
	ledger_free(lg);
	free(lg);

	/*
	 * Quiet, with nothing pinned: once the unpins are reported, nothing
	 * is dirty.  A tracker that reports more than it must fails here.
	 */
	ASSERT_EQ(0, migdev_ctl(&st->a, "dma", "release 0 0 0"));
	ASSERT_EQ(0, migdev_ctl(&st->b, "dma", "release 0 0 0"));
	ASSERT_EQ(0, migdev_ctl(&st->c, "dma", "release 0 0 0"));
	for (slot = 0; slot < NSLOTS; slot++)
		ASSERT_EQ(0, vfio_get_bitmap(st->container, slot_iova(slot), SLOT_SIZE,
					     VFIO_MIG_PAGE_4K, bm, sizeof(bm)));
	for (slot = 0; slot < NSLOTS; slot++) {
		memset(bm, 0, sizeof(bm));
		ASSERT_EQ(0, vfio_get_bitmap(st->container, slot_iova(slot), SLOT_SIZE,
					     VFIO_MIG_PAGE_4K, bm, sizeof(bm)));
		EXPECT_EQ(0, bm[0]) {
			ksft_print_msg("slot %u: %#llx dirty while quiet\n", slot,
				       (unsigned long long)bm[0]);
		}
	}
}

TEST_HARNESS_MAIN
