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
 * Every call's result is checked against the errnos its situation allows.
 * Time is a counter every thread increments before and after each call, so
 * the ledger knows which calls may have overlapped.  At the end, every
 * page a device wrote must have been reported: by a report that ended
 * after the write began and started before the end of the first report
 * that started after the write ended and covered the page.  A write is
 * excused only by what may forget it: a STOP (a write that ended after the
 * report preceding the STOP began) or an unmap without a bitmap of its
 * mapping.  Then, quiet and with nothing pinned, a report must find
 * nothing dirty once the unpins are reported.  The kernel must not splat,
 * hang or leak meanwhile (the test runner checks the console and
 * kmemleak).
 */
#include <pthread.h>
#include <time.h>

#include "../kselftest_harness.h"
#include "migdev.h"

#define NSLOTS		16
#define STABLE		8		/* slots below it are never unmapped */
#define SLOT_PAGES	32
#define SLOT_SIZE	(SLOT_PAGES * PAGE_4K)
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

/* A write a device made: pages [first, first + n), between ticks b and e. */
struct wr {
	uint64_t b, e;
	uint32_t first, n;
	const char *what;	/* the command */
	char dev;		/* its device */
};

/* A report: the pages it covered and the ones it reported. */
struct rep {
	uint64_t b, e;
	uint64_t covered[NWORDS];
	uint64_t dirty[NWORDS];
};

/* An unmap without a bitmap, or the start of a tracking epoch. */
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
	struct vec writes, reports, unmaps, epochs, sweeps;
	char failure[512];
	unsigned long ops[NTHREADS], refused[NTHREADS];
	bool mapped[NSLOTS];		/* the mapper's, then the main thread's */
	int cycles;
};

static uint64_t tick(struct stress *st)
{
	return __atomic_add_fetch(&st->clk, 1, __ATOMIC_SEQ_CST);
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

static void push(struct stress *st, struct vec *v, const void *item)
{
	pthread_mutex_lock(&st->lock);
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
	struct rep r = { .b = b, .e = e };
	uint32_t slot, i;

	for (slot = s0; slot <= s1; slot++) {
		set_range(r.covered, slot * SLOT_PAGES, SLOT_PAGES);
		for (i = 0; i < SLOT_PAGES; i++) {
			uint64_t bit = (slot_iova(slot) - slot_iova(s0) +
					i * PAGE_4K) / pgsize;

			if (test_bit64(bm, bit))
				set_range(r.dirty, slot * SLOT_PAGES + i, 1);
		}
	}
	push(st, &st->reports, &r);
}

/*
 * One DMA command through debugfs into slot @slot from its page @page,
 * @len bytes at @off into it; in the ledger when it succeeds and @ledger.
 */
static int dma(struct stress *st, struct migdev *md, const char *cmd,
	       uint32_t slot, uint32_t page, uint32_t off, uint32_t len,
	       bool ledger)
{
	uint64_t iova = slot_iova(slot) + page * PAGE_4K + off;
	struct wr w;
	int ret;

	w.b = tick(st);
	ret = migdev_ctl(md, "dma", "%s 0x%llx %u %u", cmd,
			 (unsigned long long)iova, len, (uint32_t)w.b);
	w.e = tick(st);
	if (!ret && ledger) {
		w.first = slot * SLOT_PAGES + page + off / PAGE_4K;
		w.n = (off % PAGE_4K + len - 1) / PAGE_4K + 1;
		w.what = cmd;
		w.dev = md == &st->a ? 'A' : md == &st->c ? 'C' : 'D';
		push(st, &st->writes, &w);
	}
	return ret;
}

/* A random extent of at most @max_pages pages inside one slot. */
static void pick(uint64_t *s, uint32_t max_pages, uint32_t *slot,
		 uint32_t *page, uint32_t *off, uint32_t *len)
{
	uint32_t pages = 1 + rnd(s, max_pages);

	*slot = rnd(s, NSLOTS);
	*page = rnd(s, SLOT_PAGES - pages + 1);
	*off = rnd(s, PAGE_4K) & ~3U;
	*len = 1 + rnd(s, pages * PAGE_4K - *off);
}

struct worker {
	struct stress *st;
	int id;
	uint64_t seed;
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

/* rw: vfio_dma_rw() writes of A; stopped (-EBUSY) during stop-and-copy. */
static void *rw_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint32_t slot, page, off, len;

	while (running(st)) {
		pick(&w->seed, 3, &slot, &page, &off, &len);
		check(w, "rw", dma(st, &st->a, "rw", slot, page, off, len, true),
		      EINVAL, EBUSY, 0);
	}
	return NULL;
}

/*
 * A working set: pin @pages pages of a slot (@pinned_dirty: the device
 * does not report its writes, so its pinned pages are dirty), write into
 * them a few times, unpin.
 */
static void working_set(struct worker *w, struct migdev *md, bool pinned_dirty)
{
	struct stress *st = w->st;
	uint32_t slot, page, off, len, pages = 1 + rnd(&w->seed, 8), i;
	int ret;

	slot = rnd(&w->seed, NSLOTS);
	page = rnd(&w->seed, SLOT_PAGES - pages + 1);
	ret = dma(st, md, "keep", slot, page, 0, pages * PAGE_4K, pinned_dirty);
	check(w, "keep", ret, EINVAL, EFAULT, EBUSY, ENOSPC, 0);
	for (i = 0; !ret && i < 3; i++) {
		off = rnd(&w->seed, pages * PAGE_4K);
		len = 1 + rnd(&w->seed, pages * PAGE_4K - off);
		/* the pages may be unmapped under it: -EFAULT */
		check(w, "kept", dma(st, md, "kept", slot, page, off, len, true),
		      EFAULT, EBUSY, 0);
	}
	check(w, "release", dma(st, md, "release", 0, 0, 0, 0, false),
	      EBUSY, 0);
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
	int ret;

	while (running(st)) {
		if (rnd(&w->seed, 4)) {
			pick(&w->seed, 3, &slot, &page, &off, &len);
			ret = dma(st, &st->c, "pin", slot, page, off, len, true);
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
 * after a failure only a release, which succeeds.
 */
static int bar0_cmd(struct stress *st, uint32_t cmd, uint32_t slot,
		    uint32_t page, uint32_t off, uint32_t len, bool ledger)
{
	uint64_t iova = slot_iova(slot) + page * PAGE_4K + off;
	uint32_t count = bar0_read32(&st->b, REG_DMA_COUNT);
	uint32_t status = bar0_read32(&st->b, REG_DMA_STATUS);
	struct wr w;
	int ret;

	w.b = tick(st);
	ret = bar0_dma(&st->b, cmd, iova, len, (uint32_t)w.b);
	if (!ret && !bar0_poll(&st->b, count, status))
		ret = -ETIMEDOUT;
	w.e = tick(st);
	if (ret)
		return ret;
	if (bar0_read32(&st->b, REG_DMA_COUNT) == count)
		return (int)bar0_read32(&st->b, REG_DMA_STATUS);
	if (ledger) {
		w.first = slot * SLOT_PAGES + page + off / PAGE_4K;
		w.n = (off % PAGE_4K + len - 1) / PAGE_4K + 1;
		w.what = "bar0";
		w.dev = 'B';
		push(st, &st->writes, &w);
	}
	return 0;
}

static void *bar0_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint32_t slot, page, off, len, cmd;
	int ret;

	while (running(st)) {
		cmd = CMD_WRITE_PIN + rnd(&w->seed, CMD_WRITE_KEPT);
		pick(&w->seed, cmd == CMD_PIN ? 8 : 3, &slot, &page, &off, &len);
		ret = bar0_cmd(st, cmd, slot, page, off, len,
			       cmd != CMD_PIN && cmd != CMD_UNPIN);
		check(w, "bar0 command", ret, EINVAL, EFAULT, ENOSPC, 0);
		if (ret) {
			/* a release succeeds: the status is 0 again */
			ret = bar0_cmd(st, CMD_UNPIN, 0, 0, 0, 0, false);
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

static void mapper_unmap(struct worker *w, uint32_t slot)
{
	struct stress *st = w->st;
	uint64_t bm[1] = { 0 }, unmapped = 0;
	struct span u = { .slot = slot };
	uint64_t b;
	int64_t n;
	int ret;

	if (rnd(&w->seed, 4)) {
		b = tick(st);
		ret = vfio_unmap_bitmap(st->container, slot_iova(slot), SLOT_SIZE,
					PAGE_4K, bm, sizeof(bm), &unmapped);
		/*
		 * tracking is off between the reporter's STOP and START;
		 * drivers kept pinning in it: -EBUSY
		 */
		check(w, "unmap with a bitmap", ret, EINVAL, EBUSY, 0);
		if (!ret) {
			record_report(st, b, tick(st), slot, slot, bm, PAGE_4K);
			if (unmapped != SLOT_SIZE)
				fail(st, "mapper: unmap with a bitmap: %llu bytes unmapped",
				     (unsigned long long)unmapped);
			st->mapped[slot] = false;
			return;
		}
	}
	/* the mapping is whole after a failed unmap */
	u.b = tick(st);
	n = unmap_plain(st->container, slot_iova(slot), SLOT_SIZE);
	u.e = tick(st);
	push(st, &st->unmaps, &u);
	check(w, "unmap", n < 0 ? (int)n : 0, EBUSY, 0);
	if (n == -EBUSY)
		return;
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
	uint64_t bm[(NSLOTS * SLOT_STRIDE / PAGE_4K) / 64] = { 0 };
	uint64_t size = slot_iova(s1) + SLOT_SIZE - slot_iova(s0);
	uint64_t b = tick(st);
	int ret;

	ret = vfio_get_bitmap(st->container, slot_iova(s0), size, pgsize, bm,
			      bitmap_bytes(size, pgsize));
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
	static const uint64_t pgsizes[] = { PAGE_4K, PAGE_4K, 2 * PAGE_4K, 16 * PAGE_4K };
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
				check(w, "GET_BITMAP", get(st, slot, slot, PAGE_4K), 0);
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
	static uint8_t buf[MIGDEV_DATA_BYTES];
	uint64_t off, size;
	int i;

	for (i = 0; i < max && mig_read64(&st->a, MIG_PENDING); i++) {
		off = mig_read64(&st->a, MIG_DATA_OFFSET);
		size = mig_read64(&st->a, MIG_DATA_SIZE);
		if (off == ~0ULL || size > sizeof(buf))
			return -EIO;
		if (size && mig_read(&st->a, off, buf, size))
			return -EIO;
	}
	return 0;
}

static void *save_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;

	while (running(st)) {
		check(w, "to pre-copy", mig_set_state(&st->a, V1_SAVING | V1_RUNNING), 0);
		check(w, "pre-copy", save_chunks(st, 1 + rnd(&w->seed, 4)), 0);
		if (!rnd(&w->seed, 4)) {
			/* stop-and-copy: A's DMA is refused (-EBUSY) meanwhile */
			check(w, "to stop-and-copy", mig_set_state(&st->a, V1_SAVING), 0);
			check(w, "stop-and-copy", save_chunks(st, 1000), 0);
		}
		check(w, "to running", mig_set_state(&st->a, V1_RUNNING), 0);
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
	char path[64];
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
			check(w, "rw", dma(st, &d, "rw", slot, page, off, len, true),
			      EINVAL, 0);
			pick(&w->seed, 4, &slot, &page, &off, &len);
			/* pinned, and unpinned when the device closes */
			check(w, "keep", dma(st, &d, "keep", slot, page, off, len, true),
			      EINVAL, EFAULT, 0);
			close(d.fd);
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

/*
 * Whether write @w of page @p was reported: see the top of the file.
 * Returns 1 when reported, 0 when excused, -1 when lost.
 */
static int ledger_page(struct stress *st, const struct wr *w, uint32_t p,
		       uint64_t max_len)
{
	const struct rep *r = st->reports.v;
	const struct span *u = st->unmaps.v;
	uint64_t until = UINT64_MAX;
	size_t i, first;
	long lo = 0, hi = (long)st->reports.n;

	/* the first report that started after the write ended */
	while (lo < hi) {
		long mid = (lo + hi) / 2;

		if (r[mid].b > w->e)
			hi = mid;
		else
			lo = mid + 1;
	}
	for (i = lo; i < st->reports.n; i++) {
		if (test_bit64(r[i].covered, p)) {
			until = r[i].e;
			break;
		}
	}
	/* reports began in order: one that ended after w->b began after this */
	first = 0;
	lo = 0;
	hi = (long)st->reports.n;
	while (lo < hi) {
		long mid = (lo + hi) / 2;

		if (r[mid].b + max_len > w->b)
			hi = mid;
		else
			lo = mid + 1;
	}
	first = lo;
	for (i = first; i < st->reports.n && r[i].b < until; i++)
		if (r[i].e > w->b && test_bit64(r[i].dirty, p))
			return 1;
	for (i = 0; i < st->unmaps.n; i++)
		if (u[i].slot == p / SLOT_PAGES && u[i].e > w->b && u[i].b < until)
			return 0;
	return -1;
}

/* What the ledger knows around write @w of page @p, which was lost. */
static void explain(struct stress *st, const struct wr *w, uint32_t p)
{
	const struct rep *r = st->reports.v;
	const struct wr *wr = st->writes.v;
	size_t i;

	ksft_print_msg("around the first lost write (ticks; 1 = page reported):\n");
	for (i = 0; i < st->reports.n; i++)
		if (r[i].b + 100 > w->b && r[i].b < w->e + 100 &&
		    test_bit64(r[i].covered, p))
			ksft_print_msg("  report [%llu, %llu] %d\n",
				       (unsigned long long)r[i].b,
				       (unsigned long long)r[i].e,
				       test_bit64(r[i].dirty, p));
	for (i = 0; i < st->writes.n; i++)
		if (wr[i].b + 100 > w->b && wr[i].b < w->e + 100 &&
		    p >= wr[i].first && p < wr[i].first + wr[i].n)
			ksft_print_msg("  write %c %s [%llu, %llu]\n", wr[i].dev,
				       wr[i].what, (unsigned long long)wr[i].b,
				       (unsigned long long)wr[i].e);
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
	st->reports.size = sizeof(struct rep);
	st->unmaps.size = sizeof(struct span);
	st->epochs.size = sizeof(struct span);
	st->sweeps.size = sizeof(struct span);

	ret = migdev_open_type(&st->a, MIGDEV_TYPE, 0, -1);
	st->d_group_id = vfio_find_mdev_group(MIGDEV_TYPE, 1, st->d_uuid,
					      sizeof(st->d_uuid));
	if (ret == -ENODEV || st->d_group_id < 0 ||
	    vfio_find_mdev_group(MIGDEV_PRECISE_TYPE, 1, NULL, 0) < 0)
		VFIO_SKIP_OR_FAIL("migdev", return,
				  "needs two instances of migdev-1 and of migdev-precise");
	ASSERT_EQ(0, ret);
	st->container = st->a.container;
	ASSERT_EQ(0, migdev_open_type(&st->b, MIGDEV_PRECISE_TYPE, 0, st->container));
	ASSERT_EQ(0, migdev_open_type(&st->c, MIGDEV_PRECISE_TYPE, 1, st->container));
	st->mem = mmap(NULL, NSLOTS * SLOT_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, st->mem);
	for (slot = 0; slot < NSLOTS; slot++) {
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
	free(st->reports.v);
	free(st->unmaps.v);
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
	unsigned long checked = 0, excused = 0, lost = 0, pages = 0;
	unsigned long by_dev[4] = { 0 };	/* page writes checked, A to D */
	uint64_t bm[1];		/* one slot at 4 KiB */
	uint64_t max_len = 0, seed = now_ns();
	struct span ep;
	const struct wr *wr;
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
		ASSERT_EQ(0, pthread_create(&threads[k], NULL, thread_fns[k], &workers[k]));
	}
	for (k = 0; k < NTHREADS; k++)
		pthread_join(threads[k], NULL);
	ASSERT_EQ(0, st->failure[0]) {
		ksft_print_msg("%s\n", st->failure);
	}

	/* the last report: of everything mapped, tracking on */
	ep.b = tick(st);
	push(st, &st->sweeps, &ep);
	ASSERT_EQ(V1_RUNNING, mig_state(&st->a));
	for (slot = 0; slot < NSLOTS; slot++)
		if (st->mapped[slot])
			ASSERT_EQ(0, get(st, slot, slot, PAGE_4K));

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
	rp = st->reports.v;
	for (i = 0; i < st->reports.n; i++)
		max_len = rp[i].e - rp[i].b > max_len ? rp[i].e - rp[i].b : max_len;
	wr = st->writes.v;
	for (i = 0; i < st->writes.n; i++) {
		const struct span *sw = st->sweeps.v;
		long e = last_before(&st->epochs, wr[i].b);
		size_t s;

		/* written while tracking ran, before the report ahead of a STOP */
		if (e < 0)
			continue;
		for (s = 0; s < st->sweeps.n && sw[s].b <= ((struct span *)st->epochs.v)[e].e;)
			s++;
		if (s == st->sweeps.n || sw[s].b <= wr[i].e) {
			excused += wr[i].n;
			continue;
		}
		for (p = wr[i].first; p < wr[i].first + wr[i].n; p++) {
			int r = ledger_page(st, &wr[i], p, max_len);

			checked++;
			by_dev[wr[i].dev - 'A']++;
			if (r == 0)
				excused++;
			if (r < 0 && !lost)
				explain(st, &wr[i], p);
			if (r < 0 && lost++ < 10)
				ksft_print_msg("lost: page %u (slot %u), %c %s [%llu, %llu]\n",
					       p, p / SLOT_PAGES, wr[i].dev, wr[i].what,
					       (unsigned long long)wr[i].b,
					       (unsigned long long)wr[i].e);
		}
	}
	for (p = 0; p < NPAGES; p++)
		for (i = 0; i < st->reports.n; i++)
			if (test_bit64(rp[i].dirty, p)) {
				pages++;
				break;
			}
	ksft_print_msg("ledger: %zu writes, %lu page writes checked, %lu lost\n",
		       st->writes.n, checked, lost);
	ksft_print_msg("excused (STOP, unmap without a bitmap): %lu\n", excused);
	ksft_print_msg("%zu reports, %d STOP/START cycles, %lu of %u pages reported\n",
		       st->reports.n, st->cycles, pages, NPAGES);
	ksft_print_msg("page writes checked by device: A %lu, B %lu, C %lu, D %lu\n",
		       by_dev[0], by_dev[1], by_dev[2], by_dev[3]);
	EXPECT_EQ(0, lost);
	for (k = 0; k < 4; k++)
		EXPECT_GT(by_dev[k], 0);

	/*
	 * Quiet, with nothing pinned: once the unpins are reported, nothing
	 * is dirty.  A tracker that reports more than it must fails here.
	 */
	ASSERT_EQ(0, migdev_ctl(&st->a, "dma", "release 0 0 0"));
	ASSERT_EQ(0, migdev_ctl(&st->b, "dma", "release 0 0 0"));
	ASSERT_EQ(0, migdev_ctl(&st->c, "dma", "release 0 0 0"));
	for (slot = 0; slot < NSLOTS; slot++)
		ASSERT_EQ(0, vfio_get_bitmap(st->container, slot_iova(slot), SLOT_SIZE,
					     PAGE_4K, bm, sizeof(bm)));
	for (slot = 0; slot < NSLOTS; slot++) {
		memset(bm, 0, sizeof(bm));
		ASSERT_EQ(0, vfio_get_bitmap(st->container, slot_iova(slot), SLOT_SIZE,
					     PAGE_4K, bm, sizeof(bm)));
		EXPECT_EQ(0, bm[0]) {
			ksft_print_msg("slot %u: %#llx dirty while quiet\n", slot,
				       (unsigned long long)bm[0]);
		}
	}
}

TEST_HARNESS_MAIN
