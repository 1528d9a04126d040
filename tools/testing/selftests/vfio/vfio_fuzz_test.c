// SPDX-License-Identifier: GPL-2.0-only
/*
 * A bounded, seeded fuzzer for the type1 ioctls of a container with a
 * migdev sample device, for the device's v1 migration region, and for its
 * BAR0 and config space.  Each step is checked against a model: the
 * return value is what the UAPI (and migdev) says for that input, a call
 * that fails changes nothing, the mappings are the model's, and every
 * dirty report holds at least the pages the model says were written or
 * are pinned, and nothing that was neither written nor pinned.  The
 * pages a DMA command wrote before it failed (its user memory changed:
 * vfio_dma_rw() copied part of a chunk into memory with a read-only page,
 * a pin-write-unpin command wrote the pages before one it cannot pin)
 * must be reported like those of one that succeeded.  With
 * migdev-precise, a pin alone makes nothing dirty, nor does an unpin: its
 * pages are dirty when it reports a write (vfio_mark_dirty(), its log
 * read out by sync) or writes with vfio_dma_rw().
 *
 * The tests:
 *   type1.{migdev1,precise}.fuzz  MAP/UNMAP (with and without a bitmap,
 *         UNMAP_ALL)/DIRTY_PAGES/GET_INFO with good and malformed
 *         arguments in a 512 KiB IOVA window, and DMA by the device
 *         (debugfs) into it; migdev-1 or migdev-precise instance 2
 *   mig.fuzz    header and data section accesses of every width, device
 *         state writes, mmaps, saves, resumes of saved and of broken
 *         streams; migdev-1 instances 0 (source) and 1 (destination)
 *   bar.fuzz    BAR0 registers and DMA commands, config space, regions
 *         the device does not have, debugfs commands; migdev-1 instance 0
 *
 * Environment:
 *   VFIO_FUZZ_SEED     the seed (default: from the clock); printed first as
 *                      "# seed S": VFIO_FUZZ_SEED=S runs the same steps
 *   VFIO_FUZZ_ITERS    steps per test (default: about 5 s of the TCG VM
 *                      each, 20-30 s in all)
 *   VFIO_FUZZ_SECONDS  stop each test after this long, too (alone: run for
 *                      this long); the harness's timeout does not limit it
 *   VFIO_FUZZ_VERBOSE  set: print every step
 * A failure prints the seed, the test, the step number and the operation.
 * Each test draws from its own stream of the seed: "-f mig" alone, say,
 * repeats the steps mig.fuzz took in the whole run.
 *
 * Everything runs in one thread; migdev's DMA runs in a kernel worker, but
 * a debugfs "dma" write waits for it, and a command started through BAR0
 * has finished once the device left RUNNING, which the fuzzer makes it do.
 */
#include "../kselftest_harness.h"
#include <stdarg.h>
#include <time.h>

#include <vfio_mig_migdev.h>

#define FUZZ_TIMEOUT	86400	/* the budget bounds a run, not the harness */

#define WIN_IOVA	0x100000ULL	/* the IOVA window the fuzzer maps in */
#define WIN_PAGES	128ULL
#define WIN_SIZE	(WIN_PAGES * VFIO_MIG_PAGE_4K)
#define WIN_END		(WIN_IOVA + WIN_SIZE)
#define BUF_PAGES	256ULL		/* user memory behind the mappings */
#define MAX_MAPS	64
#define HUGE_IOVA	0x100000000000ULL	/* a mapping that is never pinned */
#define HUGE_SIZE	0x10000000000ULL
#define BM_WORDS	64ULL		/* bitmaps of up to 4096 bits */
#define BM_GUARD	8ULL
#define CANARY		0x5a5a5a5a5a5a5a5aULL
#define SZ_2M		0x200000ULL
#define SZ_1G		0x40000000ULL
#define MAX_DMA		(4ULL << 20)	/* migdev's longest command */
#define MAX_PINS	512		/* below migdev's working set limit */
#define KERNEL_PTR	0xffff888000000000ULL
#define STREAM_BYTES	0x100000
#define MAX_PENDING	(65 * (8 + 4096ULL) + 8)
#define MIGDEV_V1_ERROR	(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING)
#define DEV_PAGES	16ULL		/* mapped for the migration and BAR tests */
#define MIXED_RO	3		/* and 11: read-only pages of t1.mixed */
#define MIXED_NONE	7		/* and 15: inaccessible ones */
#define NERR		160

/* the shortest argsz of each argument: the fields up to its size */
#define MAP_MINSZ	(offsetof(struct vfio_iommu_type1_dma_map, size) + 8)
#define UNMAP_MINSZ	(offsetof(struct vfio_iommu_type1_dma_unmap, size) + 8)
#define INFO_MINSZ	(offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + 8)

#define START	VFIO_IOMMU_DIRTY_PAGES_FLAG_START
#define STOP	VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP
#define GET	VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP
#define RW	(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
#define UNMAP_GET	VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
#define UNMAP_ALL	VFIO_DMA_UNMAP_FLAG_ALL
#define UNMAP_VADDR	VFIO_DMA_UNMAP_FLAG_VADDR

/* ---- the fuzzer: seed, budget, counts, failures ---- */

enum {
	OP_MAP, OP_MAP_BAD, OP_UNMAP, OP_UNMAP_BITMAP, OP_UNMAP_BAD, OP_UNMAP_ALL,
	OP_GET, OP_GET_BAD, OP_START, OP_STOP, OP_DIRTY_BAD, OP_INFO, OP_DMA,
	OP_VERIFY, OP_HDR_READ, OP_HDR_WRITE, OP_STATE, OP_DATA, OP_RESET,
	OP_SAVE, OP_RESUME, OP_RESUME_BAD, OP_BAR_READ, OP_BAR_WRITE,
	OP_BAR_CMD, OP_CFG_READ, OP_CFG_WRITE, OP_OTHER_REGION, OP_DBG_BAD,
	OP_MMAP, NR_OPS
};

static const char * const op_names[NR_OPS] = {
	[OP_MAP] = "map", [OP_MAP_BAD] = "map-malformed", [OP_UNMAP] = "unmap",
	[OP_UNMAP_BITMAP] = "unmap-bitmap", [OP_UNMAP_BAD] = "unmap-malformed",
	[OP_UNMAP_ALL] = "unmap-all", [OP_GET] = "get-bitmap",
	[OP_GET_BAD] = "get-bitmap-malformed", [OP_START] = "start",
	[OP_STOP] = "stop", [OP_DIRTY_BAD] = "dirty-pages-malformed",
	[OP_INFO] = "get-info", [OP_DMA] = "dma", [OP_VERIFY] = "verify",
	[OP_HDR_READ] = "header-read", [OP_HDR_WRITE] = "header-write",
	[OP_STATE] = "device-state", [OP_DATA] = "data-section",
	[OP_RESET] = "reset", [OP_SAVE] = "save", [OP_RESUME] = "resume",
	[OP_RESUME_BAD] = "resume-malformed", [OP_BAR_READ] = "bar0-read",
	[OP_BAR_WRITE] = "bar0-write", [OP_BAR_CMD] = "bar0-dma",
	[OP_CFG_READ] = "config-read", [OP_CFG_WRITE] = "config-write",
	[OP_OTHER_REGION] = "other-region", [OP_DBG_BAD] = "debugfs-malformed",
	[OP_MMAP] = "mmap",
};

struct fuzz {
	const char *test;
	uint64_t seed;
	uint64_t state;
	unsigned long iter;
	unsigned long iters;
	double deadline;	/* ms, CLOCK_MONOTONIC; 0: none */
	bool verbose;
	unsigned int failed;
	int op;
	bool compound;		/* the step counts its own success */
	char what[160];		/* the current step, for failures */
	unsigned long count[NR_OPS];
	unsigned long ok[NR_OPS];
	unsigned long err[NERR];	/* by errno; 0: success */
	unsigned long dirty_bits;	/* bits set in reports */
	unsigned long gets_with_bits;
	unsigned long data_checked;	/* bytes compared after DMA */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* splitmix64 */
static uint64_t rnd(struct fuzz *f)
{
	uint64_t z = (f->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(struct fuzz *f, uint64_t n)
{
	return n ? rnd(f) % n : 0;
}

static bool chance(struct fuzz *f, unsigned int percent)
{
	return below(f, 100) < percent;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static uint64_t fz_seed;

/* One seed for the run, chosen before the harness forks the tests. */
static void __attribute__((constructor)) fz_choose_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	fz_seed = env_u64("VFIO_FUZZ_SEED",
			  (uint64_t)ts.tv_sec * 1000003ULL + ts.tv_nsec / 1000);
}

/*
 * Each test draws from its own stream, derived from the seed and the
 * test's name, so that one test reproduces alone (with -f or -r).
 */
static void fz_init(struct fuzz *f, const char *test, unsigned long iters)
{
	uint64_t seed = fz_seed, secs;
	const char *c;

	ksft_print_msg("seed %llu\n", (unsigned long long)seed);
	memset(f, 0, sizeof(*f));
	f->test = test;
	f->seed = seed;
	f->state = seed;
	for (c = test; *c; c++)
		f->state = (f->state ^ (uint8_t)*c) * 0x100000001b3ULL;
	f->iters = env_u64("VFIO_FUZZ_ITERS", iters);
	secs = env_u64("VFIO_FUZZ_SECONDS", 0);
	if (secs)
		f->deadline = now_ms() + secs * 1e3;
	if (secs && !getenv("VFIO_FUZZ_ITERS"))
		f->iters = ULONG_MAX;
	f->verbose = !!getenv("VFIO_FUZZ_VERBOSE");
	ksft_print_msg("%s: seed %llu, up to %lu steps%s\n", test,
		       (unsigned long long)seed, f->iters,
		       secs ? " or the time limit" : "");
}

static bool fz_more(struct fuzz *f)
{
	if (f->failed || f->iter >= f->iters)
		return false;
	if (f->deadline && now_ms() > f->deadline)
		return false;
	f->iter++;
	return true;
}

/* A new step: @op, described by the format. */
static void fz_op(struct fuzz *f, int op, const char *fmt, ...)
{
	va_list ap;

	f->op = op;
	f->compound = false;
	f->count[op]++;
	va_start(ap, fmt);
	vsnprintf(f->what, sizeof(f->what), fmt, ap);
	va_end(ap);
	if (f->verbose)
		ksft_print_msg("%s %lu: %s %s\n", f->test, f->iter, op_names[op],
			       f->what);
}

static void fz_fail(struct fuzz *f, int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (f->failed++ >= 8)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ksft_print_msg("FAIL (VFIO_FUZZ_SEED=%llu, %s step %lu, %s %s, line %d): %s\n",
		       (unsigned long long)f->seed, f->test, f->iter,
		       op_names[f->op], f->what, line, msg);
}

#define CHECK(f, cond, fmt, ...) do {					\
	if (!(cond))							\
		fz_fail(f, __LINE__, "%s: " fmt, #cond, ##__VA_ARGS__);	\
} while (0)

/* Count a result (0 or -errno); it must be @want. */
static void fz_expect(struct fuzz *f, int line, int got, int want)
{
	f->err[-got >= 0 && -got < NERR ? -got : NERR - 1]++;
	if (got == want) {
		if (!got && !f->compound)
			f->ok[f->op]++;
		return;
	}
	fz_fail(f, line, "returned %d (%s), expected %d (%s)", got,
		got ? strerror(-got) : "success", want,
		want ? strerror(-want) : "success");
}

#define EXPECT_RET(f, got, want) fz_expect(f, __LINE__, got, want)

/* Count a result that may be either of two. */
static void fz_expect2(struct fuzz *f, int line, int got, int want1, int want2)
{
	fz_expect(f, line, got, got == want2 ? want2 : want1);
}

#define EXPECT_RET2(f, got, w1, w2) fz_expect2(f, __LINE__, got, w1, w2)

static void fz_report(struct fuzz *f, double ms)
{
	char line[512];
	int i, n;

	ksft_print_msg("%s: seed %llu, %lu steps in %.1f s, %u failures\n",
		       f->test, (unsigned long long)f->seed, f->iter, ms / 1e3,
		       f->failed);
	for (i = 0; i < NR_OPS; i++)
		if (f->count[i])
			ksft_print_msg("  %-22s %7lu, %7lu succeeded\n", op_names[i],
				       f->count[i], f->ok[i]);
	for (i = 0, n = 0; i < NERR; i++)
		if (f->err[i])
			n += snprintf(line + n, sizeof(line) - n, " %s:%lu",
				      i ? strerrorname_np(i) ?: "?" : "ok",
				      f->err[i]);
	ksft_print_msg("  results:%s\n", line);
	ksft_print_msg("  dirty bits reported %lu (in %lu reports), DMA bytes compared %lu\n",
		       f->dirty_bits, f->gets_with_bits, f->data_checked);
}

/*
 * The budget was spent on something: at least @min successes of @op
 * (scaled down for a short budget).
 */
static bool fz_enough(struct fuzz *f, int op, unsigned long min)
{
	unsigned long need = f->iter >= 1000 ? min : (min * f->iter + 999) / 1000;

	if (f->ok[op] >= need || f->failed)
		return true;
	ksft_print_msg("FAIL (VFIO_FUZZ_SEED=%llu, %s): %lu successful %s, expected %lu or more\n",
		       (unsigned long long)f->seed, f->test, f->ok[op],
		       op_names[op], need);
	return false;
}

/* At least @min successes of @op: see fz_enough(). */
struct fz_need {
	int op;
	unsigned long min;
};

/*
 * End of a test: print what it did, then whether it did enough of each
 * @need (a list ended by a zero min).
 */
static bool fz_finish(struct fuzz *f, double t0, const struct fz_need *need)
{
	bool enough = true;

	fz_report(f, now_ms() - t0);
	for (; need->min; need++)
		enough &= fz_enough(f, need->op, need->min);
	return enough;
}

/* ---- the model of a container: mappings, pins, dirty pages ---- */

struct mapping {
	uint64_t iova;
	uint64_t size;
	uint64_t vaddr;
	uint32_t flags;
};

/* User memory a device cannot write: read-only, or not even readable. */
struct bad_mem {
	uint64_t lo, hi;
	bool readable;
};

struct model {
	struct mapping map[MAX_MAPS];
	int nmaps;
	bool tracking;
	bool precise;		/* the device reports what it writes */
	/* pages of the window */
	uint8_t must[WIN_PAGES];	/* must be in the next report: MUST_* */
	uint8_t may[WIN_PAGES];		/* may be: written or pinned */
	uint32_t pinned[WIN_PAGES];	/* times in the working set */
	uint8_t logged[WIN_PAGES];	/* in migdev-precise's log, maybe */
	unsigned long npinned;
	struct bad_mem bad[8];
	int nbad;
	unsigned long wrote_failed;	/* pages a failed command wrote */
};

/* Memory the device cannot write, from @lo to @hi. */
static void m_bad_mem(struct model *m, const void *lo, const void *hi,
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

static int m_find(struct model *m, uint64_t iova)
{
	int i;

	for (i = 0; i < m->nmaps; i++)
		if (iova >= m->map[i].iova && iova - m->map[i].iova < m->map[i].size)
			return i;
	return -1;
}

/* A mapping that overlaps [iova, iova + size), or -1. */
static int m_overlap(struct model *m, uint64_t iova, uint64_t size)
{
	int i;

	for (i = 0; i < m->nmaps; i++)
		if (iova < m->map[i].iova + m->map[i].size &&
		    m->map[i].iova < iova + size)
			return i;
	return -1;
}

static bool in_win(uint64_t iova)
{
	return iova >= WIN_IOVA && iova < WIN_END;
}

static uint64_t pg(uint64_t iova)
{
	return (iova - WIN_IOVA) / VFIO_MIG_PAGE_4K;
}

/* The page at @iova is in a mapping a device may read and write. */
static bool m_rw(struct model *m, uint64_t iova)
{
	int i = m_find(m, iova);

	return i >= 0 && (m->map[i].flags & RW) == RW &&
	       !m_user_kind(m, m->map[i].vaddr + iova - m->map[i].iova);
}

static struct mapping *m_add(struct model *m, uint64_t iova, uint64_t size,
			     uint64_t vaddr, uint32_t flags)
{
	struct mapping *p = &m->map[m->nmaps++];

	p->iova = iova;
	p->size = size;
	p->vaddr = vaddr;
	p->flags = flags;
	return p;
}

/*
 * Drop the pins of [iova, iova + size): migdev unpins on unmap.  An
 * unpin by a driver that does not report its writes marks the page; one
 * by migdev-precise marks nothing (it reported what it wrote).
 */
static void m_unpin(struct model *m, uint64_t iova, uint64_t size)
{
	uint64_t a;

	for (a = WIN_IOVA; a < WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (a < iova || a - iova >= size || !m->pinned[pg(a)])
			continue;
		m->npinned -= m->pinned[pg(a)];
		m->pinned[pg(a)] = 0;
		if (m->tracking && !m->precise)	/* unpinned since the last report */
			m->may[pg(a)] = 1;
	}
}

/* Mapping @i goes away, with its pins and its dirty state. */
static void m_remove(struct model *m, int i)
{
	struct mapping *p = &m->map[i];
	uint64_t a;

	m_unpin(m, p->iova, p->size);
	for (a = WIN_IOVA; a < WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (a >= p->iova && a - p->iova < p->size) {
			m->must[pg(a)] = 0;
			m->may[pg(a)] = 0;
		}
	}
	m->map[i] = m->map[--m->nmaps];
}

/* Why a page must be reported */
enum { MUST_NOT, MUST_WRITTEN, MUST_PART_WRITTEN };

/*
 * The device wrote the page at @iova (@must: MUST_WRITTEN, or
 * MUST_PART_WRITTEN by a command that failed after it), or may have
 * (MUST_NOT).
 */
static void m_dirty(struct model *m, uint64_t iova, int must)
{
	if (!m->tracking || !in_win(iova))
		return;
	m->may[pg(iova)] = 1;
	if (must > m->must[pg(iova)])
		m->must[pg(iova)] = must;
}

/*
 * A report read migdev-precise's log out first: what it held is dirty now
 * (if tracking), in the range reported or not.
 */
static void m_synced(struct model *m)
{
	uint64_t i;

	for (i = 0; i < WIN_PAGES; i++) {
		if (m->logged[i] && m->tracking &&
		    m_find(m, WIN_IOVA + i * VFIO_MIG_PAGE_4K) >= 0)
			m->may[i] = 1;
		m->logged[i] = 0;
	}
}

/*
 * What a report of [iova, iova + size) leaves: the pinned pages, when the
 * driver does not report its writes; none when it does (migdev-precise:
 * its pins are dirty only when it reports a write).
 */
static void m_reported(struct model *m, uint64_t iova, uint64_t size)
{
	uint64_t a;

	for (a = WIN_IOVA; a < WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (a < iova || a - iova >= size)
			continue;
		m->may[pg(a)] = m->pinned[pg(a)] && !m->precise;
		m->must[pg(a)] = m->may[pg(a)];
	}
}

static void m_start(struct model *m)
{
	uint64_t i;

	if (m->tracking)
		return;		/* repeating START is harmless */
	m->tracking = true;
	for (i = 0; i < WIN_PAGES; i++) {
		m->may[i] = m->pinned[i] && !m->precise;
		m->must[i] = m->may[i];
	}
}

static void m_stop(struct model *m)
{
	m->tracking = false;
	memset(m->must, 0, sizeof(m->must));
	memset(m->may, 0, sizeof(m->may));
}

enum { DMA_PIN, DMA_RW, DMA_KEEP, DMA_RELEASE, DMA_KEPT, DMA_BOGUS, NR_DMA };

static const char * const dma_names[NR_DMA] = {
	"pin", "rw", "keep", "release", "kept", "frob",
};

/* migdev's command number for a DMA_* */
static const uint32_t dma_cmds[NR_DMA] = {
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

/* What migdev returns for DMA command @cmd (a DMA_*) of a running device. */
static int m_dma_predict(struct model *m, int cmd, uint64_t iova, uint64_t len)
{
	uint64_t a, bad;

	if (cmd == DMA_RELEASE)
		return 0;
	if (cmd == DMA_BOGUS || !len || len > MAX_DMA || iova + len < iova)
		return -EINVAL;
	if (cmd == DMA_KEPT) {
		for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < iova + len; a += VFIO_MIG_PAGE_4K)
			if (!in_win(a) || !m->pinned[pg(a)])
				return -EFAULT;
		return 0;
	}
	bad = m_first_bad(m, iova, len);
	if (bad == ~0ULL)
		return 0;
	if (m_find(m, bad) < 0)
		return -EINVAL;
	/* not readable and writable for the device, or not for the user */
	return (m->map[m_find(m, bad)].flags & RW) != RW ? -EPERM : -EFAULT;
}

/*
 * Update the model after command @cmd returned @ret.  @wrote, when not
 * NULL, has the pages of the window whose memory the command changed: a
 * command that failed part-way wrote them, and they must be reported
 * (vfio_dma_rw() marks what a partial write wrote, migdev-precise
 * reports a page before it unpins it, and a plain unpin marks it).
 */
static void m_dma_apply(struct model *m, int cmd, uint64_t iova, uint64_t len,
			int ret, const uint8_t *wrote)
{
	uint64_t a, end = iova + len, bad;

	if (cmd == DMA_RELEASE) {
		m_unpin(m, 0, ~0ULL);
		return;
	}
	if (cmd == DMA_BOGUS || !len || len > MAX_DMA || end < iova)
		return;
	if (cmd == DMA_KEPT) {
		for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); !ret && a < end; a += VFIO_MIG_PAGE_4K) {
			m_dirty(m, a, MUST_WRITTEN);
			/* reported when the log is read out, tracking or not */
			if (m->precise)
				m->logged[pg(a)] = 1;
		}
		return;
	}
	bad = m_first_bad(m, iova, len);
	for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < end && a != bad; a += VFIO_MIG_PAGE_4K) {
		if (cmd != DMA_KEEP) {
			/* a failed command wrote a part, maybe */
			bool part = ret && wrote && in_win(a) && wrote[pg(a)];

			m->wrote_failed += part && m->tracking;
			m_dirty(m, a, !ret ? MUST_WRITTEN :
				part ? MUST_PART_WRITTEN : MUST_NOT);
			continue;
		}
		m->pinned[pg(a)]++;
		m->npinned++;
		/* a pin of migdev-precise alone is clean */
		if (!m->precise)
			m_dirty(m, a, MUST_WRITTEN);
	}
}

/* The user address behind @iova, or NULL. */
static uint8_t *m_uaddr(struct model *m, uint64_t iova)
{
	int i = m_find(m, iova);

	return i < 0 ? NULL : (uint8_t *)(m->map[i].vaddr + iova - m->map[i].iova);
}

/*
 * After a successful write of @len bytes at @iova seeded @seed, the user's
 * memory holds the pattern: every byte of a short one, a sample of a long
 * one.  Skipped when two pages of the transfer share user memory.
 */
static void m_check_data(struct fuzz *f, struct model *m, uint64_t iova,
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

/* Check the device's working set against the model's. */
static void m_check_pinned(struct fuzz *f, struct model *m, struct migdev *md)
{
	long n = migdev_pinned(md);

	CHECK(f, n == (long)m->npinned, "the device has %ld pages pinned, the model %lu",
	      n, m->npinned);
}

/* A DMA command through debugfs (one of dma_names): 0 or -errno. */
static int dbg_dma(struct migdev *md, int cmd, uint64_t iova, uint64_t len,
		   uint32_t seed)
{
	return migdev_dma(md, dma_names[cmd], iova, len, seed);
}

/*
 * Into the first page of mapping @p the device cannot write, from the
 * writable page before it, if it has one: the write fails half-way.
 */
static void pick_dma_half(struct fuzz *f, struct model *m, struct mapping *p,
			  uint64_t *iova, uint64_t *len)
{
	uint64_t a;

	for (a = p->iova + VFIO_MIG_PAGE_4K; a - p->iova < p->size &&
	     a < WIN_END; a += VFIO_MIG_PAGE_4K) {
		if (m_rw(m, a))
			continue;
		if (!m_rw(m, a - VFIO_MIG_PAGE_4K))
			return;
		*iova = a - 1 - below(f, VFIO_MIG_PAGE_4K);
		*len = a - *iova + 1 + below(f, VFIO_MIG_PAGE_4K);
		return;
	}
}

/* Random DMA arguments, mostly into mapped memory. */
static void pick_dma(struct fuzz *f, struct model *m, int *cmd, uint64_t *iova,
		     uint64_t *len)
{
	static const int weights[NR_DMA] = { 22, 24, 18, 8, 24, 4 };
	struct mapping *p = m->nmaps ? &m->map[below(f, m->nmaps)] : NULL;
	uint64_t r = below(f, 100);
	int c;

	for (c = 0; c < NR_DMA - 1 && r >= (uint64_t)weights[c]; c++)
		r -= weights[c];
	*cmd = c;
	if (p && p->size <= WIN_SIZE && chance(f, 75))
		*iova = p->iova + below(f, p->size);
	else
		*iova = WIN_IOVA - 2 * VFIO_MIG_PAGE_4K + below(f, WIN_SIZE + 4 * VFIO_MIG_PAGE_4K);

	if (chance(f, 30))
		*iova &= ~(VFIO_MIG_PAGE_4K - 1);
	r = below(f, 100);
	if (r < 55)
		*len = 1 + below(f, 2 * VFIO_MIG_PAGE_4K);
	else if (r < 80)
		*len = (1 + below(f, 3)) * VFIO_MIG_PAGE_4K;
	else if (r < 90)
		*len = 4;
	else if (r < 94)
		*len = 0;
	else if (r < 97)
		*len = MAX_DMA + 1 + below(f, 3);
	else
		*len = VFIO_MIG_PAGE_4K;
	if (r >= 97)	/* past the top of the IOVA space */
		*iova = -VFIO_MIG_PAGE_4K + below(f, VFIO_MIG_PAGE_4K);
	if (p && chance(f, 30))
		pick_dma_half(f, m, p, iova, len);
}

/*
 * The user memory behind the window pages a write of [iova, iova + len)
 * reaches, taken before it: the pages whose bytes changed are those it
 * wrote.  Left out: pages not mapped, not readable, or whose user page
 * the transfer reaches through another IOVA page too.
 */
#define SNAP_PAGES	4

struct snap {
	int n;
	uint64_t iova[SNAP_PAGES];	/* the transfer's part of a page */
	uint64_t len[SNAP_PAGES];
	uint8_t *uaddr[SNAP_PAGES];
	uint8_t old[SNAP_PAGES][VFIO_MIG_PAGE_4K];
};

static void snap_take(struct model *m, struct snap *s, uint64_t iova,
		      uint64_t len)
{
	uint64_t a, lo, hi;
	uint8_t *u;
	int i, j;

	s->n = 0;
	if (!len || len > (SNAP_PAGES - 1) * VFIO_MIG_PAGE_4K || iova + len < iova)
		return;
	for (a = iova & ~(VFIO_MIG_PAGE_4K - 1); a < iova + len; a += VFIO_MIG_PAGE_4K) {
		lo = a > iova ? a : iova;
		hi = a + VFIO_MIG_PAGE_4K < iova + len ? a + VFIO_MIG_PAGE_4K : iova + len;
		u = m_uaddr(m, lo);
		if (!in_win(a) || !u || m_user_kind(m, (uintptr_t)u) == 2)
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

/* The window pages whose memory changed since snap_take(). */
static void snap_diff(const struct snap *s, uint8_t *wrote)
{
	int i;

	memset(wrote, 0, WIN_PAGES);
	for (i = 0; i < s->n; i++)
		if (s->len[i] && memcmp(s->old[i], s->uaddr[i], s->len[i]))
			wrote[pg(s->iova[i])] = 1;
}

/* ---- type1 ---- */

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

static void *anon(uint64_t size, int prot)
{
	return mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

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
	self->s.buf = anon(BUF_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	self->s.ro = anon(16 * VFIO_MIG_PAGE_4K, PROT_READ);
	self->s.none = anon(16 * VFIO_MIG_PAGE_4K, PROT_NONE);
	self->s.edge = anon(2 * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->s.edge);
	ASSERT_EQ(0, mprotect(self->s.edge + VFIO_MIG_PAGE_4K, VFIO_MIG_PAGE_4K, PROT_NONE));
	self->s.mixed = anon(16 * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
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
	uint64_t pages = chance(f, 70) ? 1 + below(f, 4) : 1 + below(f, 32);

	*iova = WIN_IOVA + below(f, WIN_PAGES - pages + 1) * VFIO_MIG_PAGE_4K;
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
	int ret = do_map(container, sizeof(struct vfio_iommu_type1_dma_map), RW,
			 p->iova, p->vaddr, p->size);

	CHECK(f, ret == -EEXIST, "mapping [0x%llx, +0x%llx) is gone: mapping it again returned %d",
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
	uint32_t flags = RW;
	int want, ret;

	if (m->nmaps >= MAX_MAPS - 1)
		return;
	if (chance(f, 4)) {
		iova = HUGE_IOVA;
		size = HUGE_SIZE;
		vaddr = (uintptr_t)self->buf;
	} else if (chance(f, 5)) {
		/*
		 * Memory the user cannot write: an mdev-only container pins
		 * nothing at MAP, so this maps; the device's writes fail.
		 */
		pick_map_range(f, &iova, &size);
		pages = size / VFIO_MIG_PAGE_4K > 16 ? 16 : size / VFIO_MIG_PAGE_4K;
		size = pages * VFIO_MIG_PAGE_4K;
		vaddr = (uintptr_t)(chance(f, 50) ? self->ro : self->none) +
			below(f, 16 - pages + 1) * VFIO_MIG_PAGE_4K;
		mem = " (unwritable)";
	} else if (chance(f, 8)) {
		/*
		 * Memory with pages the device cannot write: a write that
		 * reaches one from a page before it stops part-way.
		 */
		pick_map_range(f, &iova, &size);
		pages = size / VFIO_MIG_PAGE_4K > 16 ? 16 : size / VFIO_MIG_PAGE_4K;
		size = pages * VFIO_MIG_PAGE_4K;
		vaddr = (uintptr_t)self->mixed + below(f, 16 - pages + 1) * VFIO_MIG_PAGE_4K;
		mem = " (holes)";
	} else {
		pick_map_range(f, &iova, &size);
		pages = size / VFIO_MIG_PAGE_4K;
		vaddr = (uintptr_t)self->buf +
			below(f, BUF_PAGES - pages + 1) * VFIO_MIG_PAGE_4K;
		if (chance(f, 8))
			flags = chance(f, 50) ? VFIO_DMA_MAP_FLAG_READ :
						VFIO_DMA_MAP_FLAG_WRITE;
	}
	fz_op(f, OP_MAP, "iova 0x%llx size 0x%llx flags %u vaddr 0x%llx%s",
	      (unsigned long long)iova, (unsigned long long)size, flags,
	      (unsigned long long)vaddr, mem);
	want = m_overlap(m, iova, size) >= 0 ? -EEXIST : 0;
	ret = do_map(self->md.container, chance(f, 10) ?
		     sizeof(struct vfio_iommu_type1_dma_map) + 8 + below(f, 8) :
		     sizeof(struct vfio_iommu_type1_dma_map),
		     flags, iova, vaddr, size);
	EXPECT_RET(f, ret, want);
	if (!ret)
		m_add(m, iova, size, vaddr, flags);
}

static void t1_map_bad(struct t1 *self, struct fuzz *f)
{
	uint32_t argsz = sizeof(struct vfio_iommu_type1_dma_map), flags = RW;
	struct model *m = &self->m;
	uint64_t iova, size, vaddr;
	int kind = below(f, 11), want = -EINVAL, ret;

	pick_map_range(f, &iova, &size);
	vaddr = (uintptr_t)self->buf;
	switch (kind) {
	case 0:
		iova += 1 + below(f, VFIO_MIG_PAGE_4K - 1);
		break;
	case 1:
		size += 1 + below(f, VFIO_MIG_PAGE_4K - 1);
		break;
	case 2:
		vaddr += 1 + below(f, VFIO_MIG_PAGE_4K - 1);
		break;
	case 3:
		size = 0;
		break;
	case 4:		/* the IOVA wraps */
		iova = -(1 + below(f, 4)) * VFIO_MIG_PAGE_4K;
		size = 8 * VFIO_MIG_PAGE_4K;
		break;
	case 5:		/* the user address wraps */
		vaddr = -(1 + below(f, 4)) * VFIO_MIG_PAGE_4K;
		size = 8 * VFIO_MIG_PAGE_4K;
		break;
	case 6:
		flags |= 1U << (3 + below(f, 29));
		break;
	case 7:
		flags = 0;
		break;
	case 8:
		flags = VFIO_DMA_MAP_FLAG_VADDR | (1 + below(f, 3));
		break;
	case 9:		/* a new vaddr for a mapping whose vaddr is valid */
		flags = VFIO_DMA_MAP_FLAG_VADDR;
		want = m_overlap(m, iova, size) >= 0 ? -EINVAL : -ENOENT;
		break;
	default:
		argsz = below(f, MAP_MINSZ);
		break;
	}
	fz_op(f, OP_MAP_BAD, "kind %d argsz %u flags 0x%x iova 0x%llx vaddr 0x%llx size 0x%llx",
	      kind, argsz, flags, (unsigned long long)iova,
	      (unsigned long long)vaddr, (unsigned long long)size);
	ret = do_map(self->md.container, argsz, flags, iova, vaddr, size);
	EXPECT_RET(f, ret, want);
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

	return sizes[below(f, ARRAY_SIZE(sizes))];
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
		int must = MUST_NOT;

		if (lo < WIN_IOVA)
			lo = WIN_IOVA;
		if (hi > WIN_END)
			hi = WIN_END;
		for (a = lo; a < hi; a += VFIO_MIG_PAGE_4K) {
			must = m->must[pg(a)] > must ? m->must[pg(a)] : must;
			may |= m->may[pg(a)] | m->logged[pg(a)];
		}
		set += bit;
		if (must && !bit) {
			fz_fail(f, __LINE__,
				"bit %llu (iova 0x%llx, pgsize 0x%llx) is clear, but a page in it %s",
				(unsigned long long)i,
				(unsigned long long)(iova + i * pgsize),
				(unsigned long long)pgsize,
				must == MUST_PART_WRITTEN ?
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
		CHECK(f, !(bm[nbits / 64] >> (nbits % 64)),
		      "bits past the range are set: word %llu is 0x%llx",
		      (unsigned long long)(nbits / 64),
		      (unsigned long long)bm[nbits / 64]);
	for (i = (nbits + 63) / 64; i < BM_WORDS; i++)
		CHECK(f, !bm[i], "word %llu past the range is 0x%llx",
		      (unsigned long long)i, (unsigned long long)bm[i]);
	for (i = BM_WORDS; i < BM_WORDS + BM_GUARD; i++)
		CHECK(f, bm[i] == CANARY, "written past the bitmap: word %llu",
		      (unsigned long long)i);
	f->dirty_bits += set;
	f->gets_with_bits += !!set;
}

/* Nothing the model must see is in [iova, iova + size). */
static bool m_clean(struct model *m, uint64_t iova, uint64_t size)
{
	uint64_t a;

	for (a = WIN_IOVA; a < WIN_END; a += VFIO_MIG_PAGE_4K)
		if (a >= iova && a - iova < size && m->must[pg(a)])
			return false;
	return true;
}

/* A range for a dirty report, aligned to @pgsize, of at most 4096 bits. */
static void pick_get_range(struct fuzz *f, struct model *m, uint64_t pgsize,
			   uint64_t *iova, uint64_t *size)
{
	uint64_t r = below(f, 100);

	if (r < 8 && pgsize == SZ_1G) {
		*iova = HUGE_IOVA;
		*size = HUGE_SIZE;
		return;
	}
	if (r < 45 && m->nmaps) {	/* one mapping, or a few */
		struct mapping *p = &m->map[below(f, m->nmaps)];

		*iova = p->iova;
		*size = p->size > WIN_SIZE ? WIN_SIZE : p->size;
		if (chance(f, 30))
			*size += below(f, 8) * VFIO_MIG_PAGE_4K;
	} else if (r < 60) {
		*iova = WIN_IOVA;
		*size = WIN_SIZE;
	} else {
		*iova = WIN_IOVA - 4 * VFIO_MIG_PAGE_4K +
			below(f, WIN_PAGES + 8) * VFIO_MIG_PAGE_4K;
		*size = (1 + below(f, WIN_PAGES)) * VFIO_MIG_PAGE_4K;
	}
	*size += *iova & (pgsize - 1);
	*iova &= ~(pgsize - 1);
	*size = (*size + pgsize - 1) & ~(pgsize - 1);
	if (*size / pgsize > BM_WORDS * 64)
		*size = BM_WORDS * 64 * pgsize;
}

static int do_get(int container, uint32_t argsz, uint32_t flags, uint64_t iova,
		  uint64_t size, uint64_t pgsize, uint64_t *bitmap,
		  uint64_t bmsize)
{
	struct vfio_mig_dirty_get arg = {
		.db.argsz = argsz,
		.db.flags = flags,
		.get.iova = iova,
		.get.size = size,
		.get.bitmap.pgsize = pgsize,
		.get.bitmap.size = bmsize,
		.get.bitmap.data = (__u64 *)bitmap,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &arg) ? -errno : 0;
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
	if (chance(f, 25)) {
		bad = 1 + below(f, 12);
		switch (bad) {
		case 1:
			pgsize = VFIO_MIG_PAGE_4K * (3 + 2 * below(f, 4));
			break;
		case 2:
			pgsize = below(f, 2) ? 0 : 1ULL << below(f, 12);
			break;
		case 3:
			pgsize = 2 * SZ_1G << below(f, 4);
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
			bmsize = vfio_mig_bitmap_bytes(size, pgsize) - 8 + below(f, 8);
			break;
		case 8:
			bmsize = 1ULL << (50 + below(f, 8));
			break;
		case 9:
			argsz = sizeof(struct vfio_iommu_type1_dirty_bitmap) +
				below(f, sizeof(struct vfio_iommu_type1_dirty_bitmap_get));
			break;
		case 10:
			flags |= chance(f, 50) ? START : STOP;
			break;
		default:
			kind = 1 + below(f, NR_BM - 1);
			break;
		}
	}
	ptr = bm_ptr(self, kind);
	if (bad == 9 || bad == 10 || !m->tracking)
		want = -EINVAL;
	else
		want = bm_predict(iova, size, pgsize, bmsize, kind);
	fz_op(f, bad ? OP_GET_BAD : OP_GET,
	      "kind %d bitmap %d iova 0x%llx size 0x%llx pgsize 0x%llx bitmap size 0x%llx tracking %d",
	      bad, kind, (unsigned long long)iova, (unsigned long long)size,
	      (unsigned long long)pgsize, (unsigned long long)bmsize, m->tracking);
	ret = do_get(self->md.container, argsz, flags, iova, size, pgsize, ptr,
		     bmsize);
	if (!want && kind != BM_OK) {
		/* nothing to write may succeed; else it must fail, keeping all */
		EXPECT_RET2(f, ret, -EFAULT, 0);
		if (!ret && kind == BM_EDGE)
			ptr = bm_edge(self);
		else
			CHECK(f, ret || m_clean(m, iova, size),
			      "reported dirty pages into a bitmap it cannot write: lost");
	} else {
		EXPECT_RET(f, ret, want);
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
	uint64_t r = below(f, 100);

	if (r < 60 && m->nmaps) {
		struct mapping *p = &m->map[below(f, m->nmaps)];

		*iova = p->iova;
		*size = p->size;
		if (chance(f, 25))
			*size += below(f, 6) * VFIO_MIG_PAGE_4K;
		if (chance(f, 10)) {
			*iova -= below(f, 3) * VFIO_MIG_PAGE_4K;
			*size += 2 * VFIO_MIG_PAGE_4K;
		}
	} else if (r < 70) {
		*iova = WIN_IOVA;
		*size = WIN_SIZE;
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
		else if (chance(f, 20))
			pgsize = pick_pgsize(f);
		bmsize = vfio_mig_bitmap_bytes(size, pgsize);
		if (bmsize > BM_WORDS * 8)
			bmsize = BM_WORDS * 8;
		if (chance(f, 10))
			kind = 1 + below(f, NR_BM - 1);
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
	fz_op(f, bitmap ? OP_UNMAP_BITMAP : OP_UNMAP,
	      "iova 0x%llx size 0x%llx pgsize 0x%llx bitmap %d tracking %d",
	      (unsigned long long)iova, (unsigned long long)size,
	      (unsigned long long)pgsize, kind, m->tracking);
	out = size;
	ret = do_unmap(self->md.container, argsz, flags, iova, &out, pgsize, ptr,
		       bmsize);
	if (!want && kind != BM_OK) {
		EXPECT_RET2(f, ret, -EFAULT, 0);
		if (!ret && kind == BM_EDGE)
			ptr = bm_edge(self);
		else
			CHECK(f, ret || m_clean(m, iova, size),
			      "unmapped dirty pages into a bitmap it cannot write: lost");
		/* the devices dropped their pins before the bits were written */
		if (ret)
			m_unpin(m, iova, size);
	} else {
		EXPECT_RET(f, ret, want);
	}
	if (ret) {
		CHECK(f, out == size, "a failed unmap changed size to 0x%llx",
		      (unsigned long long)out);
		t1_probe_range(f, m, self->md.container, iova, size);
		m_check_pinned(f, m, &self->md);
		return;
	}
	CHECK(f, out == unmapped, "unmapped 0x%llx, expected 0x%llx",
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
	int kind = below(f, 10), ret, want = -EINVAL;

	pick_unmap_range(f, m, &iova, &size);
	bmsize = BM_WORDS * 8;
	switch (kind) {
	case 0:
		argsz = below(f, UNMAP_MINSZ);
		break;
	case 1:
		flags = 1U << (3 + below(f, 29));
		break;
	case 2:
		flags = UNMAP_GET | (chance(f, 50) ? UNMAP_ALL : UNMAP_VADDR);
		break;
	case 3:
		flags = UNMAP_GET;
		argsz = sizeof(struct vfio_iommu_type1_dma_unmap) +
			below(f, sizeof(struct vfio_bitmap));
		break;
	case 4:		/* type1 cannot invalidate vaddrs with an mdev */
		flags = UNMAP_VADDR | (chance(f, 50) ? UNMAP_ALL : 0);
		want = -EBUSY;
		break;
	case 5:
		iova += 1 + below(f, VFIO_MIG_PAGE_4K - 1);
		flags = chance(f, 50) ? UNMAP_GET : 0;
		break;
	case 6:
		size = chance(f, 50) ? 0 : size + 1 + below(f, VFIO_MIG_PAGE_4K - 1);
		flags = chance(f, 50) ? UNMAP_GET : 0;
		break;
	case 7:
		iova = -2 * VFIO_MIG_PAGE_4K;
		size = 4 * VFIO_MIG_PAGE_4K;
		break;
	case 8:		/* UNMAP_ALL takes neither iova nor size */
		flags = UNMAP_ALL;
		if (chance(f, 50))
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
	fz_op(f, OP_UNMAP_BAD, "kind %d argsz %u flags 0x%x iova 0x%llx size 0x%llx",
	      kind, argsz, flags, (unsigned long long)iova,
	      (unsigned long long)size);
	out = size;
	ret = do_unmap(self->md.container, argsz, flags, iova, &out, pgsize,
		       bm_ptr(self, BM_OK), bmsize);
	EXPECT_RET(f, ret, want);
	CHECK(f, out == size, "a failed unmap changed size to 0x%llx",
	      (unsigned long long)out);
	if (!ret)
		return;
	t1_probe_range(f, m, self->md.container, iova, size);
	CHECK(f, !self->bm[0], "a failed unmap wrote a bitmap");
}

/* UNMAP_ALL: everything goes, and how much is exact. */
static void t1_unmap_all(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint64_t total = 0, out = 0;
	int i, ret;

	for (i = 0; i < m->nmaps; i++)
		total += m->map[i].size;
	fz_op(f, OP_UNMAP_ALL, "%d mappings, 0x%llx bytes", m->nmaps,
	      (unsigned long long)total);
	ret = do_unmap(self->md.container, sizeof(struct vfio_iommu_type1_dma_unmap),
		       UNMAP_ALL, 0, &out, 0, NULL, 0);
	EXPECT_RET(f, ret, 0);
	CHECK(f, out == total, "unmapped 0x%llx, expected 0x%llx",
	      (unsigned long long)out, (unsigned long long)total);
	while (m->nmaps)
		m_remove(m, 0);
	m_check_pinned(f, m, &self->md);
	CHECK(f, dma_avail(self->md.container) == self->avail0,
	      "mappings are left: DMA_AVAIL %u, was %u with none",
	      dma_avail(self->md.container), self->avail0);
}

static void t1_dirty(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint32_t flags, argsz = sizeof(struct vfio_iommu_type1_dirty_bitmap);
	struct vfio_iommu_type1_dirty_bitmap db;
	int r = below(f, 10);

	if (r < 5) {
		fz_op(f, OP_START, "tracking %d", m->tracking);
		EXPECT_RET(f, vfio_dirty(self->md.container, START), 0);
		m_start(m);
		return;
	}
	if (r < 7) {
		fz_op(f, OP_STOP, "tracking %d", m->tracking);
		EXPECT_RET(f, vfio_dirty(self->md.container, STOP), 0);
		m_stop(m);
		return;
	}
	switch (below(f, 4)) {
	case 0:
		flags = 0;
		break;
	case 1:
		flags = START | STOP | (chance(f, 50) ? GET : 0);
		break;
	case 2:
		flags = 1U << (3 + below(f, 29));
		break;
	default:
		flags = START;
		argsz = below(f, argsz);
		break;
	}
	fz_op(f, OP_DIRTY_BAD, "argsz %u flags 0x%x", argsz, flags);
	db.argsz = argsz;
	db.flags = flags;
	EXPECT_RET(f, ioctl(self->md.container, VFIO_IOMMU_DIRTY_PAGES, &db) ?
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

	argsz = chance(f, 50) ? sizeof(buf) : below(f, sizeof(buf));
	fz_op(f, OP_INFO, "argsz %u", argsz);
	memset(buf, 0xa5, sizeof(buf));
	info = (void *)buf;
	info->argsz = argsz;
	ret = ioctl(self->md.container, VFIO_IOMMU_GET_INFO, info) ? -errno : 0;
	EXPECT_RET(f, ret, argsz < minsz ? -EINVAL : 0);
	if (ret)
		return;
	CHECK(f, info->flags & VFIO_IOMMU_INFO_PGSIZES, "flags 0x%x", info->flags);
	CHECK(f, info->iova_pgsizes & VFIO_MIG_PAGE_4K, "iova_pgsizes 0x%llx",
	      (unsigned long long)info->iova_pgsizes);
	if (argsz < sizeof(buf))
		return;
	mig = (void *)vfio_iommu_info_cap(info, sizeof(buf),
					  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	CHECK(f, mig, "no migration capability");
	if (mig) {
		CHECK(f, mig->flags == 0 && *(uint32_t *)((char *)mig + 12) == 0,
		      "flags or padding not zero");
		CHECK(f, (mig->pgsize_bitmap & (VFIO_MIG_PAGE_4K | SZ_2M | SZ_1G)) ==
		      (VFIO_MIG_PAGE_4K | SZ_2M | SZ_1G), "pgsize_bitmap 0x%llx",
		      (unsigned long long)mig->pgsize_bitmap);
		CHECK(f, mig->max_dirty_bitmap_size >= SZ_1G, "max 0x%llx",
		      (unsigned long long)mig->max_dirty_bitmap_size);
	}
	avail = dma_avail(self->md.container);
	CHECK(f, avail + self->m.nmaps == self->avail0,
	      "DMA_AVAIL %u with %d mappings, %u with none: mappings lost or leaked",
	      avail, self->m.nmaps, self->avail0);
}

static void t1_dma(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint8_t wrote[WIN_PAGES];
	uint64_t iova, len;
	uint32_t seed = rnd(f);
	int cmd, want, ret;

	if (m->npinned > MAX_PINS) {
		fz_op(f, OP_DMA, "release (%lu pinned)", m->npinned);
		EXPECT_RET(f, dbg_dma(&self->md, DMA_RELEASE, 0, 0, 0), 0);
		m_dma_apply(m, DMA_RELEASE, 0, 0, 0, NULL);
		m_check_pinned(f, m, &self->md);
		return;
	}
	pick_dma(f, m, &cmd, &iova, &len);
	fz_op(f, OP_DMA, "%s 0x%llx 0x%llx 0x%x", dma_names[cmd],
	      (unsigned long long)iova, (unsigned long long)len, seed);
	want = m_dma_predict(m, cmd, iova, len);
	snap_take(m, &self->snap, iova, len);
	ret = dbg_dma(&self->md, cmd, iova, len, seed);
	EXPECT_RET(f, ret, want);
	snap_diff(&self->snap, wrote);
	m_dma_apply(m, cmd, iova, len, ret, wrote);
	if (!ret && cmd != DMA_KEEP && cmd != DMA_RELEASE)
		m_check_data(f, m, iova, len, seed);
	if (cmd == DMA_KEEP || cmd == DMA_RELEASE || chance(f, 10))
		m_check_pinned(f, m, &self->md);
}

/* A report of the whole window holds what the model must see, exactly. */
static void t1_get_all(struct t1 *self, struct fuzz *f)
{
	uint64_t *bm = bm_ptr(self, BM_OK);
	int ret;

	fz_op(f, OP_GET, "the whole window, tracking %d", self->m.tracking);
	ret = do_get(self->md.container, sizeof(struct vfio_mig_dirty_get), GET, WIN_IOVA,
		     WIN_SIZE, VFIO_MIG_PAGE_4K, bm, WIN_PAGES / 8);
	EXPECT_RET(f, ret, self->m.tracking ? 0 : -EINVAL);
	if (ret)
		return;
	m_synced(&self->m);
	t1_check_bits(f, &self->m, bm, WIN_IOVA, WIN_SIZE, VFIO_MIG_PAGE_4K);
	m_reported(&self->m, WIN_IOVA, WIN_SIZE);
}

/* Every mapping of the model is there, and no other. */
static void t1_verify(struct t1 *self, struct fuzz *f)
{
	struct model *m = &self->m;
	uint32_t avail = dma_avail(self->md.container);
	int i;

	fz_op(f, OP_VERIFY, "%d mappings", m->nmaps);
	f->compound = true;
	for (i = 0; i < m->nmaps; i++)
		t1_probe(f, m, self->md.container, i);
	CHECK(f, avail + m->nmaps == self->avail0,
	      "DMA_AVAIL %u with %d mappings, %u with none", avail, m->nmaps,
	      self->avail0);
	m_check_pinned(f, m, &self->md);
	if (!f->failed)
		f->ok[OP_VERIFY]++;
}

static void t1_step(struct t1 *self, struct fuzz *f)
{
	uint64_t r = below(f, 1000);

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
	else if (r < 990)
		t1_dma(self, f);
	else
		t1_verify(self, f);
}

TEST_F_TIMEOUT(type1, fuzz, FUZZ_TIMEOUT)
{
	struct fuzz *f = &self->s.f;
	double t0 = now_ms();
	static const struct fz_need need[] = {
		{ OP_MAP, 50 },
		{ OP_UNMAP, 20 },
		{ OP_UNMAP_BITMAP, 10 },
		{ OP_GET, 40 },
		{ OP_DMA, 80 },
		{ OP_START, 5 },
		{ 0, 0 },
	};

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
	EXPECT_TRUE(fz_finish(f, t0, need));
	ksft_print_msg("  pages written by DMA commands that failed part-way, required: %lu\n",
		       self->s.m.wrote_failed);
	if (f->iter >= 1000) {
		EXPECT_LE(20, f->gets_with_bits);
		EXPECT_LT(0, self->s.m.wrote_failed);
	}
}

/* ---- the migration region ---- */

/* What the fuzzer knows of a device's migration state. */
struct mstate {
	uint32_t state;
	bool loaded;		/* resuming: part of a stream loaded */
	int done;		/* its end record checked: 0, 1, -1 unknown */
};

struct mg {
	struct migdev dev[2];	/* 0: the source of valid streams */
	struct mstate ms[2];
	struct model m[2];
	uint8_t *buf[2];
	uint8_t *stream;	/* chunks: u64 size, then the data */
	size_t len;
	uint8_t *snap;		/* the source's state when it was saved */
	uint8_t *state;
	uint8_t *scratch;
	uint8_t *map;		/* the destination's data section, mmapped */
	struct fuzz f;
};

FIXTURE(mig) {
	struct mg s;
};

FIXTURE_SETUP(mig)
{
	int i, ret;

	for (i = 0; i < 2; i++) {
		self->s.dev[i].fd = -1;
		self->s.dev[i].group = -1;
		self->s.dev[i].container = -1;
		self->s.buf[i] = MAP_FAILED;
	}
	self->s.stream = NULL;
	self->s.map = MAP_FAILED;
	for (i = 0; i < 2; i++) {
		ret = migdev_open(&self->s.dev[i], i);
		if (ret == -ENODEV)
			SKIP(return, "migdev: needs two %s mdevs",
			     MIGDEV_TYPE);
		ASSERT_EQ(0, ret);
		self->s.buf[i] = anon(DEV_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
		ASSERT_NE(MAP_FAILED, self->s.buf[i]);
		ASSERT_EQ(0, vfio_map(self->s.dev[i].container, WIN_IOVA,
				      self->s.buf[i], DEV_PAGES * VFIO_MIG_PAGE_4K));
		memset(&self->s.m[i], 0, sizeof(self->s.m[i]));
		m_add(&self->s.m[i], WIN_IOVA, DEV_PAGES * VFIO_MIG_PAGE_4K,
		      (uintptr_t)self->s.buf[i], RW);
		self->s.ms[i].state = MIGDEV_V1_RUNNING;
		self->s.ms[i].loaded = false;
		self->s.ms[i].done = 0;
	}
	self->s.stream = malloc(STREAM_BYTES);
	self->s.snap = malloc(MIGDEV_STATE_BYTES);
	self->s.state = malloc(MIGDEV_STATE_BYTES);
	self->s.scratch = malloc(MIGDEV_DATA_SIZE + 4096);	/* and 64 more */
	ASSERT_NE(NULL, self->s.stream);
	ASSERT_NE(NULL, self->s.snap);
	ASSERT_NE(NULL, self->s.state);
	ASSERT_NE(NULL, self->s.scratch);
	self->s.len = 0;
	ASSERT_EQ(4096, self->s.dev[0].mmap_offset);
	ASSERT_EQ(4096, self->s.dev[1].mmap_offset);
	ASSERT_LE(MIGDEV_DATA_SIZE, self->s.dev[1].mmap_size);
	self->s.map = mmap(NULL, MIGDEV_DATA_SIZE, PROT_READ | PROT_WRITE,
			   MAP_SHARED, self->s.dev[1].fd,
			   self->s.dev[1].mig + self->s.dev[1].mmap_offset);
	ASSERT_NE(MAP_FAILED, self->s.map);
}

FIXTURE_TEARDOWN(mig)
{
	int i;

	if (self->s.map != MAP_FAILED)
		munmap(self->s.map, MIGDEV_DATA_SIZE);
	for (i = 0; i < 2; i++) {
		migdev_close(&self->s.dev[i]);
		if (self->s.buf[i] != MAP_FAILED)
			munmap(self->s.buf[i], DEV_PAGES * VFIO_MIG_PAGE_4K);
	}
	if (self->s.stream) {
		free(self->s.stream);
		free(self->s.snap);
		free(self->s.state);
		free(self->s.scratch);
	}
}

/*
 * What writing @new to device_state does (migdev's rules): 0 or -errno;
 * @either: the outcome depends on what the fuzzer does not know (whether
 * the stream loaded so far ended), and -EIO is possible too.
 */
static int ms_predict(struct mstate *s, uint32_t new, bool *either)
{
	uint32_t old = s->state;

	*either = false;
	if (new & ~VFIO_DEVICE_STATE_MASK)
		return -EINVAL;
	if (old == MIGDEV_V1_ERROR)
		return -EIO;
	if (!VFIO_DEVICE_STATE_VALID(new) || new == MIGDEV_V1_ERROR)
		return -EINVAL;
	if (((old & MIGDEV_V1_SAVING) && (new & MIGDEV_V1_RESUMING)) ||
	    ((old & MIGDEV_V1_RESUMING) && (new & MIGDEV_V1_SAVING)))
		return -EINVAL;
	if (old == MIGDEV_V1_SAVING && new == (MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING))
		return -EINVAL;
	if ((old & MIGDEV_V1_RESUMING) && !(new & MIGDEV_V1_RESUMING) && s->loaded) {
		if (s->done < 0)
			*either = true;
		else if (!s->done)
			return -EIO;
	}
	return 0;
}

/* Write @new to device_state, check the result and the state after. */
static int mig_write_state(struct fuzz *f, struct migdev *md, struct mstate *s,
			   uint32_t new)
{
	bool either;
	int want = ms_predict(s, new, &either), ret;
	uint32_t now;

	ret = mig_set_state(md, new);
	if (either)
		EXPECT_RET2(f, ret, 0, -EIO);
	else
		EXPECT_RET(f, ret, want);
	if (!ret) {
		if ((new & MIGDEV_V1_RESUMING) && !(s->state & MIGDEV_V1_RESUMING)) {
			s->loaded = false;
			s->done = 0;
		}
		s->state = new;
	} else if (ret == -EIO && s->state != MIGDEV_V1_ERROR) {
		s->state = MIGDEV_V1_ERROR;	/* left a partial stream */
	}
	now = mig_state(md);
	CHECK(f, now == s->state, "device_state reads 0x%x, expected 0x%x", now,
	      s->state);
	return ret;
}

static void mig_reset(struct fuzz *f, struct migdev *md, struct mstate *s,
		      struct model *m)
{
	EXPECT_RET(f, ioctl(md->fd, VFIO_DEVICE_RESET) ? -errno : 0, 0);
	s->state = MIGDEV_V1_RUNNING;
	s->loaded = false;
	s->done = 0;
	m_unpin(m, 0, ~0ULL);
	CHECK(f, mig_state(md) == MIGDEV_V1_RUNNING, "device_state 0x%x after a reset",
	      mig_state(md));
}

/* The device works: its ID, and a DMA that lands. */
static void mig_sane(struct fuzz *f, struct migdev *md, struct model *m)
{
	uint32_t seed = rnd(f);
	uint64_t iova = WIN_IOVA + below(f, DEV_PAGES * VFIO_MIG_PAGE_4K - 64);

	CHECK(f, bar0_read32(md, MIGDEV_REG_ID) == MIGDEV_ID, "MIGDEV_REG_ID 0x%x",
	      bar0_read32(md, MIGDEV_REG_ID));
	EXPECT_RET(f, dbg_dma(md, DMA_RW, iova, 64, seed), 0);
	m_check_data(f, m, iova, 64, seed);
}

/* Random accesses to the region: the header, around it, the data section. */
static void mig_access(struct mg *self, struct fuzz *f, int d)
{
	static const size_t widths[] = { 1, 2, 3, 4, 4, 4, 5, 7, 8, 8, 8, 16 };
	struct migdev *md = &self->dev[d];
	struct mstate *s = &self->ms[d];
	bool write = chance(f, 40), either = false;
	size_t len = widths[below(f, ARRAY_SIZE(widths))];
	uint64_t off, r = below(f, 100), v = rnd(f);
	uint8_t val[16];
	int want = -EINVAL, ret;

	if (r < 60)
		off = below(f, 40);
	else if (r < 70)
		off = 4096 - 8 + below(f, 16);
	else if (r < 80)
		off = md->mig_size - 16 + below(f, 32);
	else if (r < 90)
		off = 4096 + below(f, MIGDEV_DATA_SIZE);
	else
		off = below(f, 2) ? 1ULL << (32 + below(f, 8)) : (1ULL << 40) - 4;
	if (chance(f, 70) && !(len & (len - 1)))
		off &= ~(uint64_t)((len < 8 ? len : 8) - 1);
	if (write && off == MIGDEV_HDR_STATE && len == 4) {
		v = chance(f, 85) ? below(f, 8) : (uint32_t)v;
	} else if (write && off == MIGDEV_HDR_DATA_SIZE && len == 8) {
		r = below(f, 4);
		v = r == 0 ? 0 : r == 1 ? below(f, MIGDEV_DATA_SIZE + 1) :
		    r == 2 ? MIGDEV_DATA_SIZE + 1 + below(f, 1 << 20) : v;
	}
	memcpy(val, &v, 8);
	memcpy(val + 8, &v, 8);
	fz_op(f, write ? OP_HDR_WRITE : OP_HDR_READ,
	      "dev %d state 0x%x off 0x%llx len %zu value 0x%llx", d, s->state,
	      (unsigned long long)off, len, (unsigned long long)v);

	if (off < 32) {
		switch (off) {
		case MIGDEV_HDR_STATE:
			if (len == 4 && write) {
				mig_write_state(f, md, s, v);
				return;
			}
			want = len == 4 ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_RESERVED:
			want = len == 4 ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_PENDING:
			want = len == 8 && !write ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_DATA_OFFSET:
			want = len == 8 && !write &&
			       ((s->state & MIGDEV_V1_SAVING) || s->state == MIGDEV_V1_RESUMING) &&
			       s->state != MIGDEV_V1_ERROR ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_DATA_SIZE:
			if (len != 8 || !write) {
				want = len == 8 ? 0 : -EINVAL;
				break;
			}
			if (s->state != MIGDEV_V1_RESUMING || v > MIGDEV_DATA_SIZE)
				want = -EINVAL;
			else if (!v)
				want = 0;
			else
				either = true;
			break;
		}
	} else if (off >= 4096 && off + len <= md->mig_size) {
		want = 0;
	}
	ret = write ? mig_write(md, off, val, len) : mig_read(md, off, val, len);
	if (!either) {
		EXPECT_RET(f, ret, want);
	} else {
		/* the data section decides; a bad chunk is the error state */
		if (ret != -EIO)
			EXPECT_RET2(f, ret, 0, -EINVAL);
		else
			EXPECT_RET(f, ret, -EIO);
		if (ret) {
			s->state = MIGDEV_V1_ERROR;
		} else {
			s->loaded = true;
			s->done = -1;
		}
		CHECK(f, mig_state(md) == s->state, "device_state 0x%x, expected 0x%x",
		      mig_state(md), s->state);
	}
	if (ret || write)
		return;
	memcpy(&v, val, 8);
	switch (off) {
	case MIGDEV_HDR_STATE:
		CHECK(f, (uint32_t)v == s->state, "device_state 0x%x, expected 0x%x",
		      (uint32_t)v, s->state);
		break;
	case MIGDEV_HDR_RESERVED:
		CHECK(f, (uint32_t)v == 0, "reserved reads 0x%x", (uint32_t)v);
		break;
	case MIGDEV_HDR_PENDING:
		CHECK(f, v <= MAX_PENDING && (v == 0 || (s->state & MIGDEV_V1_SAVING)),
		      "pending_bytes 0x%llx in state 0x%x", (unsigned long long)v,
		      s->state);
		break;
	case MIGDEV_HDR_DATA_OFFSET:
		CHECK(f, v == 4096, "data_offset 0x%llx", (unsigned long long)v);
		break;
	case MIGDEV_HDR_DATA_SIZE:
		CHECK(f, v <= MIGDEV_DATA_SIZE && (v == 0 || (s->state & MIGDEV_V1_SAVING)),
		      "data_size 0x%llx in state 0x%x", (unsigned long long)v, s->state);
		break;
	}
}

/* device_state writes, legal and not, reserved bits included. */
static void mig_state_op(struct mg *self, struct fuzz *f, int d)
{
	uint32_t v = chance(f, 85) ? below(f, 8) : (uint32_t)rnd(f) | 8;

	fz_op(f, OP_STATE, "dev %d 0x%x -> 0x%x", d, self->ms[d].state, v);
	mig_write_state(f, &self->dev[d], &self->ms[d], v);
}

/* Bulk accesses to the data section, in or out of it. */
static void mig_data(struct mg *self, struct fuzz *f, int d)
{
	struct migdev *md = &self->dev[d];
	uint64_t off = 4096 + below(f, MIGDEV_DATA_SIZE + 64) - 32;
	size_t len = chance(f, 50) ? 1 + below(f, 256) :
		     1 + below(f, MIGDEV_DATA_SIZE + 16);
	bool write = chance(f, 50);
	int want, ret;

	if (chance(f, 10))
		off = below(f, 4096 - 32) + 32;
	want = off >= 4096 && off + len <= md->mig_size ? 0 : -EINVAL;
	fz_op(f, OP_DATA, "dev %d %s off 0x%llx len 0x%zx", d,
	      write ? "write" : "read", (unsigned long long)off, len);
	if (write) {
		uint64_t i;

		for (i = 0; i < len; i++)
			self->scratch[i] = rnd(f);
		ret = mig_write(md, off, self->scratch, len);
		/* what was written reads back */
		if (!ret && !want) {
			uint8_t *back = self->scratch + MIGDEV_DATA_SIZE + 16;
			size_t n = len < 64 ? len : 64;

			CHECK(f, !mig_read(md, off + len - n, back, n) &&
			      !memcmp(back, self->scratch + len - n, n),
			      "the data section does not read back what was written");
		}
	} else {
		ret = mig_read(md, off, self->scratch, len);
	}
	EXPECT_RET(f, ret, want);
}

/*
 * mmap of the region: only page-aligned, shared, inside the data section
 * (the sparse mmap area); a write through it reads back through pread.
 */
static void mig_mmap(struct mg *self, struct fuzz *f, int d)
{
	struct migdev *md = &self->dev[d];
	uint64_t r = below(f, 100), off, len, pos;
	bool shared = chance(f, 85);
	uint8_t *p, v = rnd(f), back = ~v;
	int want, ret;

	if (r < 60)
		off = 4096 * (1 + below(f, 17));
	else if (r < 75)
		off = 4096 * below(f, 2);
	else if (r < 90)
		off = 4096 * (1 + below(f, 16)) + 1 + below(f, 4095);
	else
		off = 4096 * (1 + below(f, 4)) - md->mig + below(f, 10) * (1ULL << 40);
	len = 4096 * (1 + below(f, 17));
	want = shared && off >= 4096 && !(off & 4095) && off + len <= md->mig_size ?
	       0 : -EINVAL;
	fz_op(f, OP_MMAP, "dev %d off 0x%llx len 0x%llx %s", d,
	      (unsigned long long)off, (unsigned long long)len,
	      shared ? "shared" : "private");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE,
		 md->fd, md->mig + off);
	ret = p == MAP_FAILED ? -errno : 0;
	EXPECT_RET(f, ret, want);
	if (ret)
		return;
	pos = below(f, len);
	p[pos] = v;
	CHECK(f, !mig_read(md, off + pos, &back, 1) && back == v,
	      "wrote 0x%02x at 0x%llx through the mmap, pread reads 0x%02x", v,
	      (unsigned long long)(off + pos), back);
	munmap(p, len);
}

/*
 * Save a chunk: data_offset, data_size, the data, then pending_bytes; the
 * chunk in the data section.  0 or -errno.
 */
static int save_one(struct migdev *md, uint8_t *stream, size_t *len)
{
	int64_t n = migdev_save_chunk(md, stream, len, STREAM_BYTES, NULL);

	return n < 0 ? n : 0;
}

/*
 * A whole save of the source, the way QEMU does it: a few pre-copy
 * rounds with DMA in between, then stop-and-copy until nothing is pending.
 */
static void mig_save(struct mg *self, struct fuzz *f)
{
	struct migdev *md = &self->dev[0];
	struct mstate *s = &self->ms[0];
	int rounds = below(f, 4), i, n;

	fz_op(f, OP_SAVE, "from 0x%x, %d pre-copy rounds", s->state, rounds);
	f->compound = true;
	if (s->state != MIGDEV_V1_RUNNING)
		mig_reset(f, md, s, &self->m[0]);
	self->len = 0;
	if (mig_write_state(f, md, s, MIGDEV_V1_RUNNING | MIGDEV_V1_SAVING))
		return;
	for (i = 0; i < rounds; i++) {
		if (mig_read64(md, MIGDEV_HDR_PENDING))
			EXPECT_RET(f, save_one(md, self->stream, &self->len), 0);
		EXPECT_RET(f, dbg_dma(md, DMA_RW, WIN_IOVA + below(f, 8 * VFIO_MIG_PAGE_4K),
				      1 + below(f, 4 * VFIO_MIG_PAGE_4K), rnd(f)), 0);
	}
	if (mig_write_state(f, md, s, MIGDEV_V1_SAVING))
		return;
	for (n = 0; n < 100 && mig_read64(md, MIGDEV_HDR_PENDING); n++)
		EXPECT_RET(f, save_one(md, self->stream, &self->len), 0);
	CHECK(f, !mig_read64(md, MIGDEV_HDR_PENDING), "still pending after %d chunks", n);
	EXPECT_RET(f, migdev_state(md, self->snap), 0);
	mig_write_state(f, md, s, MIGDEV_V1_STOP);
	if (!mig_write_state(f, md, s, MIGDEV_V1_RUNNING) && !f->failed)
		f->ok[OP_SAVE]++;
}

/* Bring the destination into RESUMING, from where it is if it can. */
static bool mig_to_resuming(struct mg *self, struct fuzz *f)
{
	struct mstate *s = &self->ms[1];
	bool either;

	if (ms_predict(s, MIGDEV_V1_RESUMING, &either) || s->state == MIGDEV_V1_RESUMING)
		mig_reset(f, &self->dev[1], s, &self->m[1]);
	return !mig_write_state(f, &self->dev[1], s, MIGDEV_V1_RESUMING);
}

/*
 * One chunk into the destination: data_offset, the data (@at bytes off
 * where it belongs; through the mmap of the data section if @map), then
 * data_size.
 */
static int resume_one(struct migdev *md, const uint8_t *data, uint64_t size,
		      uint64_t at, uint8_t *map)
{
	uint64_t off = mig_read64(md, MIGDEV_HDR_DATA_OFFSET), n;
	int ret;

	if (off != 4096)
		return -EPROTO;
	if (size && size <= MIGDEV_DATA_SIZE) {
		n = at + size > MIGDEV_DATA_SIZE ? MIGDEV_DATA_SIZE - at : size;
		if (map) {
			memcpy(map + at, data, n);
		} else {
			ret = mig_write(md, off + at, data, n);
			if (ret)
				return ret;
		}
	}
	return mig_write(md, MIGDEV_HDR_DATA_SIZE, &size, 8);
}

/* The valid stream, replayed as it was saved: the state arrives. */
static void mig_resume(struct mg *self, struct fuzz *f)
{
	struct migdev *md = &self->dev[1];
	struct mstate *s = &self->ms[1];
	uint8_t *map = chance(f, 30) ? self->map : NULL;
	uint64_t size;
	size_t pos;

	fz_op(f, OP_RESUME, "%zu bytes from 0x%x%s", self->len, s->state,
	      map ? " through the mmap" : "");
	f->compound = true;
	if (!mig_to_resuming(self, f))
		return;
	for (pos = 0; pos < self->len && !f->failed; pos += 8 + size) {
		memcpy(&size, self->stream + pos, 8);
		EXPECT_RET(f, resume_one(md, self->stream + pos + 8, size, 0, map), 0);
		s->loaded |= !!size;
	}
	s->done = 1;
	if (mig_write_state(f, md, s, MIGDEV_V1_RUNNING))
		return;
	EXPECT_RET(f, migdev_state(md, self->state), 0);
	CHECK(f, !memcmp(self->snap, self->state, MIGDEV_STATE_BYTES),
	      "the resumed device state differs from the saved one");
	mig_sane(f, md, &self->m[1]);
	if (!f->failed)
		f->ok[OP_RESUME]++;
}

/*
 * A stream gone wrong: random bytes, flipped bytes, cut short, a chunk
 * too large or at the wrong offset, or something after the end.  Each
 * call fails with an errno the protocol allows, a failed chunk leaves the
 * device in the error state, and a reset brings it back, working.
 */
static void mig_resume_bad(struct mg *self, struct fuzz *f)
{
	struct migdev *md = &self->dev[1];
	struct mstate *s = &self->ms[1];
	int kind = below(f, self->len ? 6 : 1), ret = 0, i;
	size_t pos, len = self->len, cut = ~0UL;
	uint64_t size, flips[8] = { 0 }, at;
	uint8_t *chunk = self->scratch;

	if (kind == 1) {
		for (i = 0; i < 8; i++)
			flips[i] = below(f, len);
	} else if (kind == 2) {
		cut = below(f, len);
	}
	fz_op(f, OP_RESUME_BAD, "kind %d from 0x%x, stream %zu bytes, cut %zd",
	      kind, s->state, len, (ssize_t)cut);
	f->compound = true;
	if (!mig_to_resuming(self, f))
		return;
	for (i = kind ? -1 : below(f, 3); i >= 0 && !ret; i--) {
		uint64_t j;

		/* random chunks, some with the right record types */
		size = chance(f, 80) ? below(f, 9000) : below(f, MIGDEV_DATA_SIZE + 2);
		for (j = 0; j < size && j < MIGDEV_DATA_SIZE; j++)
			chunk[j] = chance(f, 50) ? rnd(f) : below(f, 4);
		ret = resume_one(md, chunk, size, 0, NULL);
		if (ret == -EINVAL && size > MIGDEV_DATA_SIZE) {
			/* refused before anything was loaded */
			CHECK(f, mig_state(md) == MIGDEV_V1_RESUMING, "state 0x%x",
			      mig_state(md));
			ret = 0;
		} else if (!ret && size) {
			s->loaded = true;
			s->done = -1;
		}
	}
	for (pos = 0; kind && pos < len && !ret; pos += 8 + size) {
		bool last;

		memcpy(&size, self->stream + pos, 8);
		last = cut >= pos && cut < pos + 8 + size;
		memcpy(chunk, self->stream + pos + 8, size);
		for (i = 0; kind == 1 && i < 8; i++)
			if (flips[i] >= pos + 8 && flips[i] < pos + 8 + size)
				chunk[flips[i] - pos - 8] ^= 1 << below(f, 8);
		at = kind == 4 && chance(f, 40) ? 8 * (1 + below(f, 16)) : 0;
		if (kind == 3 && chance(f, 50)) {
			/* too large: refused, nothing changes; then the real one */
			uint64_t big = MIGDEV_DATA_SIZE + 1 + below(f, 4096);

			ret = resume_one(md, chunk, big, 0, NULL);
			EXPECT_RET(f, ret, -EINVAL);
			CHECK(f, mig_state(md) == MIGDEV_V1_RESUMING,
			      "state 0x%x after a chunk too large", mig_state(md));
		}
		if (last)
			size = cut > pos + 8 ? cut - pos - 8 : 0;
		ret = resume_one(md, chunk, size, at, chance(f, 20) ? self->map : NULL);
		if (!ret && size) {
			s->loaded = true;
			s->done = -1;
		}
		if (last)
			break;
	}
	if ((kind == 3 || kind == 5) && !ret) {
		/* the stream as it was saved, whole */
		s->done = 1;
		EXPECT_RET(f, migdev_state(md, self->state), 0);
		CHECK(f, !memcmp(self->snap, self->state, MIGDEV_STATE_BYTES),
		      "the resumed device state differs from the saved one");
	}
	if (kind == 5 && !ret) {
		/* the stream ended: one more chunk is refused */
		ret = resume_one(md, self->stream + 8, 8 + below(f, 4096), 0, NULL);
		EXPECT_RET(f, ret, -EINVAL);
	} else if (ret) {
		EXPECT_RET2(f, ret, -EINVAL, -EIO);
	}
	if (ret) {
		s->state = MIGDEV_V1_ERROR;
		CHECK(f, mig_state(md) == MIGDEV_V1_ERROR,
		      "device_state 0x%x after a bad chunk, expected the error state",
		      mig_state(md));
	}
	mig_write_state(f, md, s, MIGDEV_V1_RUNNING);
	if (s->state != MIGDEV_V1_RUNNING)
		mig_reset(f, md, s, &self->m[1]);
	mig_sane(f, md, &self->m[1]);
	if (!f->failed)
		f->ok[OP_RESUME_BAD]++;
}

static void mig_dma(struct mg *self, struct fuzz *f, int d)
{
	uint64_t iova = WIN_IOVA + below(f, DEV_PAGES * VFIO_MIG_PAGE_4K - 64);
	uint64_t len = 1 + below(f, 64);
	uint32_t seed = rnd(f);
	int ret;

	fz_op(f, OP_DMA, "dev %d state 0x%x rw 0x%llx 0x%llx", d,
	      self->ms[d].state, (unsigned long long)iova,
	      (unsigned long long)len);
	ret = dbg_dma(&self->dev[d], DMA_RW, iova, len, seed);
	EXPECT_RET(f, ret, self->ms[d].state & MIGDEV_V1_RUNNING ? 0 : -EBUSY);
	if (!ret)
		m_check_data(f, &self->m[d], iova, len, seed);
}

static void mig_step(struct mg *self, struct fuzz *f)
{
	uint64_t r = below(f, 1000);
	int d = below(f, 2);

	if (r < 380) {
		mig_access(self, f, d);
	} else if (r < 400) {
		mig_mmap(self, f, d);
	} else if (r < 550) {
		mig_state_op(self, f, d);
	} else if (r < 620) {
		mig_data(self, f, d);
	} else if (r < 680) {
		mig_dma(self, f, d);
	} else if (r < 720) {
		fz_op(f, OP_RESET, "dev %d state 0x%x", d, self->ms[d].state);
		f->compound = true;
		mig_reset(f, &self->dev[d], &self->ms[d], &self->m[d]);
		mig_sane(f, &self->dev[d], &self->m[d]);
		if (!f->failed)
			f->ok[OP_RESET]++;
	} else if (r < 780 || !self->len) {
		mig_save(self, f);
	} else if (r < 860) {
		mig_resume(self, f);
	} else {
		mig_resume_bad(self, f);
	}
}

TEST_F_TIMEOUT(mig, fuzz, FUZZ_TIMEOUT)
{
	struct fuzz *f = &self->s.f;
	double t0 = now_ms();
	static const struct fz_need need[] = {
		{ OP_SAVE, 30 },
		{ OP_RESUME, 30 },
		{ OP_HDR_READ, 60 },
		{ OP_STATE, 20 },
		{ OP_DMA, 20 },
		{ 0, 0 },
	};
	int d;

	fz_init(f, "migration", 5000);
	while (fz_more(f))
		mig_step(&self->s, f);
	for (d = 0; d < 2 && !f->failed; d++) {
		fz_op(f, OP_RESET, "dev %d at the end", d);
		f->compound = true;
		mig_reset(f, &self->s.dev[d], &self->s.ms[d], &self->s.m[d]);
		mig_sane(f, &self->s.dev[d], &self->s.m[d]);
		if (!f->failed)
			f->ok[OP_RESET]++;
	}
	EXPECT_EQ(0, f->failed);
	EXPECT_TRUE(fz_finish(f, t0, need));
}

/* ---- BAR0 and config space ---- */

struct br {
	struct migdev md;
	uint8_t *buf;
	struct model m;
	uint8_t regs[MIGDEV_BAR0_SIZE];	/* what BAR0 must read */
	uint8_t config[256];
	bool running;
	struct fuzz f;
};

FIXTURE(bar) {
	struct br s;
};

static void bar_model_reset(struct br *self)
{
	uint32_t id = MIGDEV_ID;

	memset(self->regs, 0, sizeof(self->regs));
	memcpy(self->regs + MIGDEV_REG_ID, &id, 4);
	self->running = true;
	m_unpin(&self->m, 0, ~0ULL);
}

FIXTURE_SETUP(bar)
{
	int ret = migdev_open(&self->s.md, 0);

	self->s.buf = MAP_FAILED;
	if (ret == -ENODEV)
		SKIP(return, "migdev: no %s mdev", MIGDEV_TYPE);
	ASSERT_EQ(0, ret);
	self->s.buf = anon(DEV_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->s.buf);
	ASSERT_EQ(0, vfio_map(self->s.md.container, WIN_IOVA, self->s.buf,
			      DEV_PAGES * VFIO_MIG_PAGE_4K));
	memset(&self->s.m, 0, sizeof(self->s.m));
	m_add(&self->s.m, WIN_IOVA, DEV_PAGES * VFIO_MIG_PAGE_4K, (uintptr_t)self->s.buf, RW);
	bar_model_reset(&self->s);
	ASSERT_EQ(256, pread(self->s.md.fd, self->s.config, 256, self->s.md.config));
	ASSERT_EQ(0x1234, self->s.config[0] | self->s.config[1] << 8);
	ASSERT_EQ(0x1e55, self->s.config[2] | self->s.config[3] << 8);
}

FIXTURE_TEARDOWN(bar)
{
	migdev_close(&self->s.md);
	if (self->s.buf != MAP_FAILED)
		munmap(self->s.buf, DEV_PAGES * VFIO_MIG_PAGE_4K);
}

static uint32_t reg32(struct br *self, unsigned int off)
{
	uint32_t v;

	memcpy(&v, self->regs + off, 4);
	return v;
}

/* DMA_* of a command register value */
static int dma_of_cmd(uint32_t cmd)
{
	int c;

	for (c = 0; c < DMA_BOGUS; c++)
		if (dma_cmds[c] == cmd)
			return c;
	return DMA_BOGUS;
}

/* A DMA command ran (the device was running): its result in the registers. */
static void bar_ran(struct br *self, struct fuzz *f, int ret)
{
	uint32_t status = ret, count = reg32(self, MIGDEV_REG_DMA_COUNT) + !ret;

	memcpy(self->regs + MIGDEV_REG_DMA_STATUS, &status, 4);
	memcpy(self->regs + MIGDEV_REG_DMA_COUNT, &count, 4);
}

/*
 * Let a command started through BAR0 finish: the device leaves RUNNING
 * only after it did, and comes back.
 */
static void bar_settle(struct br *self, struct fuzz *f)
{
	int ret = mig_set_state(&self->md, MIGDEV_V1_STOP) ?:
		  mig_set_state(&self->md, MIGDEV_V1_RUNNING);

	CHECK(f, !ret, "stop and run again: %d", ret);
}

/* The BAR0 command register was written: what the device did. */
static void bar_cmd(struct br *self, struct fuzz *f)
{
	uint32_t cmd = reg32(self, MIGDEV_REG_DMA_CMD), seed = reg32(self, MIGDEV_REG_DMA_SEED);
	uint64_t iova, len = reg32(self, MIGDEV_REG_DMA_LEN);
	int c = dma_of_cmd(cmd), want;

	memcpy(&iova, self->regs + MIGDEV_REG_DMA_ADDR, 8);
	want = m_dma_predict(&self->m, c, iova, len);
	bar_settle(self, f);
	m_dma_apply(&self->m, c, iova, len, want, NULL);
	bar_ran(self, f, want);
	CHECK(f, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS) == (uint32_t)want,
	      "command %u at 0x%llx len 0x%llx: status %d, expected %d", cmd,
	      (unsigned long long)iova, (unsigned long long)len,
	      (int)bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS), want);
	if (!want && c != DMA_KEEP && c != DMA_RELEASE && c != DMA_BOGUS)
		m_check_data(f, &self->m, iova, len, seed);
	if (!want)
		f->ok[OP_BAR_CMD]++;
	m_check_pinned(f, &self->m, &self->md);
}

/*
 * A DMA command as a guest driver starts it: address, length and seed,
 * then the command register; random arguments, mostly sensible ones.
 */
static void bar_dma(struct br *self, struct fuzz *f)
{
	uint32_t seed = rnd(f), cmd;
	uint64_t iova, len;
	int c, ret;

	pick_dma(f, &self->m, &c, &iova, &len);
	if (self->m.npinned > MAX_PINS)
		c = DMA_RELEASE;
	cmd = c == DMA_BOGUS ? (chance(f, 50) ? 0 : (uint32_t)rnd(f)) : dma_cmds[c];
	len &= 0xffffffff;
	fz_op(f, OP_BAR_CMD, "cmd %u iova 0x%llx len 0x%llx seed 0x%x running %d",
	      cmd, (unsigned long long)iova, (unsigned long long)len, seed,
	      self->running);
	f->compound = true;
	ret = bar0_dma(&self->md, cmd, iova, len, seed);
	EXPECT_RET(f, ret, self->running ? 0 : -EBUSY);
	if (ret)
		return;
	memcpy(self->regs + MIGDEV_REG_DMA_ADDR, &iova, 8);
	memcpy(self->regs + MIGDEV_REG_DMA_LEN, &len, 4);
	memcpy(self->regs + MIGDEV_REG_DMA_SEED, &seed, 4);
	memcpy(self->regs + MIGDEV_REG_DMA_CMD, &cmd, 4);
	bar_cmd(self, f);
}

/* Random BAR0 accesses; every read is checked against the model. */
static void bar_access(struct br *self, struct fuzz *f)
{
	static const size_t widths[] = { 4, 4, 4, 8, 8, 8, 1, 2, 3, 16 };
	size_t len = widths[below(f, ARRAY_SIZE(widths))];
	uint64_t r = below(f, 100), off, v = rnd(f);
	bool write = chance(f, 50);
	uint8_t val[16];
	int want, ret;

	if (r < 50)
		off = below(f, 0x40);
	else if (r < 80)
		off = 0x100 + below(f, 0x40);
	else if (r < 90)
		off = MIGDEV_BAR0_SIZE - 16 + below(f, 32);
	else
		off = below(f, 1ULL << 40);
	if (chance(f, 85))
		off &= ~(uint64_t)(len == 8 ? 7 : 3);
	if (write && off == MIGDEV_REG_DMA_CMD && chance(f, 90))
		v = below(f, 7);
	else if (write && off == MIGDEV_REG_DMA_ADDR && chance(f, 80))
		v = WIN_IOVA - VFIO_MIG_PAGE_4K + below(f, (DEV_PAGES + 2) * VFIO_MIG_PAGE_4K);
	else if (write && off == MIGDEV_REG_DMA_LEN && chance(f, 80))
		v = chance(f, 10) ? 0 : 1 + below(f, 3 * VFIO_MIG_PAGE_4K);
	memcpy(val, &v, 8);
	memcpy(val + 8, &v, 8);
	want = off + len <= MIGDEV_BAR0_SIZE && (len == 4 || len == 8) &&
	       !(off % len) ? 0 : -EINVAL;
	if (!want && write && !self->running)
		want = -EBUSY;
	fz_op(f, write ? OP_BAR_WRITE : OP_BAR_READ,
	      "off 0x%llx len %zu value 0x%llx running %d",
	      (unsigned long long)off, len, (unsigned long long)v, self->running);
	if (write) {
		ssize_t n = pwrite(self->md.fd, val, len, self->md.bar0 + off);

		ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	} else {
		ssize_t n = pread(self->md.fd, val, len, self->md.bar0 + off);

		ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	}
	EXPECT_RET(f, ret, want);
	if (ret)
		return;
	if (!write) {
		uint64_t exp = 0;

		memcpy(&exp, self->regs + off, len);
		memcpy(&v, val, 8);
		CHECK(f, !memcmp(val, self->regs + off, len),
		      "read 0x%llx, expected 0x%llx",
		      (unsigned long long)(len == 8 ? v : (uint32_t)v),
		      (unsigned long long)exp);
		if (off == MIGDEV_REG_ID)
			CHECK(f, *(uint32_t *)val == MIGDEV_ID, "MIGDEV_REG_ID 0x%x",
			      *(uint32_t *)val);
		return;
	}
	if (off == MIGDEV_REG_DMA_CMD && len == 4) {
		memcpy(self->regs + off, val, 4);
		f->count[OP_BAR_CMD]++;
		bar_cmd(self, f);
	} else if ((off >= MIGDEV_REG_DMA_ADDR && off < MIGDEV_REG_DMA_CMD) ||
		   off >= MIGDEV_REG_SCRATCH) {
		memcpy(self->regs + off, val, len);
	}
}

/* Config space: reads of any size, writes stick only to COMMAND and BAR0. */
static void bar_config(struct br *self, struct fuzz *f)
{
	size_t len = chance(f, 80) ? 1 + below(f, 8) : below(f, 300);
	uint64_t off = chance(f, 90) ? below(f, 256) : 256 + below(f, 1 << 20);
	bool write = chance(f, 50);
	uint8_t val[300];
	int want, ret;
	ssize_t n;
	size_t i;

	if (chance(f, 50))
		off = off & ~3ULL;
	if (chance(f, 20))
		off = chance(f, 50) ? 4 : 0x10, len = off == 4 ? 2 : 4;
	for (i = 0; i < len; i++)
		val[i] = rnd(f);
	want = len && off + len <= 256 ? 0 : -EINVAL;
	fz_op(f, write ? OP_CFG_WRITE : OP_CFG_READ, "off 0x%llx len %zu",
	      (unsigned long long)off, len);
	if (write)
		n = pwrite(self->md.fd, val, len, self->md.config + off);
	else
		n = pread(self->md.fd, val, len, self->md.config + off);
	ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	if (!len && !ret)
		want = 0;	/* a zero-length access may be done before the driver */
	EXPECT_RET(f, ret, want);
	if (ret || !len)
		return;
	if (!write) {
		for (i = 0; i < len; i++)
			CHECK(f, val[i] == self->config[off + i],
			      "config byte 0x%llx reads 0x%02x, expected 0x%02x",
			      (unsigned long long)(off + i), val[i],
			      self->config[off + i]);
		return;
	}
	if (off == 4 && len == 2) {
		memcpy(self->config + 4, val, 2);
	} else if (off == 0x10 && len == 4) {
		uint32_t bar;

		memcpy(&bar, val, 4);
		bar = (bar & ~(uint32_t)(MIGDEV_BAR0_SIZE - 1));
		memcpy(self->config + 0x10, &bar, 4);
	}
}

/* Regions the device does not have, and offsets past any region. */
static void bar_other(struct br *self, struct fuzz *f)
{
	static const unsigned int idx[] = { 1, 2, 3, 4, 5, 6, 8, 10, 11, 200 };
	unsigned int i = idx[below(f, ARRAY_SIZE(idx))];
	uint64_t off = ((uint64_t)i << 40) + below(f, 4096);
	bool write = chance(f, 50);
	uint32_t v = rnd(f);
	ssize_t n;

	fz_op(f, OP_OTHER_REGION, "index %u off 0x%llx %s", i,
	      (unsigned long long)off, write ? "write" : "read");
	n = write ? pwrite(self->md.fd, &v, 4, off) : pread(self->md.fd, &v, 4, off);
	EXPECT_RET(f, n == 4 ? 0 : n < 0 ? -errno : -EIO, -EINVAL);
}

/* debugfs DMA commands, good and garbled. */
static void bar_dbg(struct br *self, struct fuzz *f)
{
	static const char * const junk[] = {
		" ", "keepx 0 1 1", "RW 0x100000 4 1", "0x100000 4 1 rw",
		"rw 0x100000 4 1                                                                                  ",
	};
	uint64_t iova, len;
	uint32_t seed = rnd(f);
	int cmd, want, ret;

	if (chance(f, 15)) {
		const char *s = junk[below(f, ARRAY_SIZE(junk))];

		fz_op(f, OP_DBG_BAD, "\"%s\"", s);
		/* no command: refused before the device sees it */
		EXPECT_RET(f, migdev_ctl(&self->md, "dma", "%s", s), -EINVAL);
		return;
	}
	pick_dma(f, &self->m, &cmd, &iova, &len);
	if (self->m.npinned > MAX_PINS)
		cmd = DMA_RELEASE;
	if (cmd == DMA_BOGUS || self->running)
		want = m_dma_predict(&self->m, cmd, iova, len);
	else
		want = -EBUSY;
	fz_op(f, OP_DMA, "%s 0x%llx 0x%llx 0x%x running %d", dma_names[cmd],
	      (unsigned long long)iova, (unsigned long long)len, seed,
	      self->running);
	ret = dbg_dma(&self->md, cmd, iova, len, seed);
	EXPECT_RET(f, ret, want);
	if (want == -EBUSY || cmd == DMA_BOGUS)
		return;	/* not run: the registers stay */
	m_dma_apply(&self->m, cmd, iova, len, ret, NULL);
	bar_ran(self, f, ret);
	if (!ret && cmd != DMA_KEEP && cmd != DMA_RELEASE)
		m_check_data(f, &self->m, iova, len, seed);
	m_check_pinned(f, &self->m, &self->md);
}

static void bar_step(struct br *self, struct fuzz *f)
{
	uint64_t r = below(f, 1000);

	if (r < 450) {
		bar_access(self, f);
	} else if (r < 520) {
		bar_dma(self, f);
	} else if (r < 700) {
		bar_config(self, f);
	} else if (r < 730) {
		bar_other(self, f);
	} else if (r < 900) {
		bar_dbg(self, f);
	} else if (r < 960) {
		bool run = chance(f, 60);

		fz_op(f, OP_STATE, "%s", run ? "running" : "stop");
		EXPECT_RET(f, mig_set_state(&self->md, run ? MIGDEV_V1_RUNNING : MIGDEV_V1_STOP),
			   0);
		self->running = run;
	} else {
		fz_op(f, OP_RESET, "device reset");
		EXPECT_RET(f, ioctl(self->md.fd, VFIO_DEVICE_RESET) ? -errno : 0, 0);
		bar_model_reset(self);
	}
}

TEST_F_TIMEOUT(bar, fuzz, FUZZ_TIMEOUT)
{
	struct fuzz *f = &self->s.f;
	double t0 = now_ms();
	static const struct fz_need need[] = {
		{ OP_BAR_READ, 100 },
		{ OP_BAR_WRITE, 80 },
		{ OP_BAR_CMD, 5 },
		{ OP_CFG_READ, 50 },
		{ OP_CFG_WRITE, 50 },
		{ OP_DMA, 30 },
		{ 0, 0 },
	};
	uint8_t config[256];

	fz_init(f, "bar0-config", 15000);
	while (fz_more(f))
		bar_step(&self->s, f);
	if (!f->failed) {
		fz_op(f, OP_VERIFY, "at the end");
		f->compound = true;
		EXPECT_EQ(MIGDEV_ID, bar0_read32(&self->s.md, MIGDEV_REG_ID));
		EXPECT_EQ(256, pread(self->s.md.fd, config, 256, self->s.md.config));
		EXPECT_EQ(0, memcmp(config, self->s.config, 256));
		EXPECT_EQ(0x1234, config[0] | config[1] << 8);
		EXPECT_EQ(0x1e55, config[2] | config[3] << 8);
		EXPECT_EQ(0, mig_set_state(&self->s.md, MIGDEV_V1_RUNNING));
		EXPECT_EQ(0, dbg_dma(&self->s.md, DMA_RW, WIN_IOVA + 100, 300, 42));
		m_check_data(f, &self->s.m, WIN_IOVA + 100, 300, 42);
		if (!f->failed)
			f->ok[OP_VERIFY]++;
	}
	EXPECT_EQ(0, f->failed);
	EXPECT_TRUE(fz_finish(f, t0, need));
}

TEST_HARNESS_MAIN
