/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A bounded, seeded fuzzer for the type1 ioctls of a container with a
 * migdev sample device, for the device's v1 migration region, and for its
 * BAR0 and config space: its engine (vfio_mig_fuzz.c: the seed, the
 * budget, the counts, the failures) and its model of a container
 * (vfio_mig_fuzz_model.c: mappings, pins, dirty pages, DMA commands),
 * shared by one test file per target (vfio_fuzz_*_test.c).
 *
 * Each step is checked against the model: the return value is what the
 * UAPI (and migdev) says for that input, a call that fails changes
 * nothing, the mappings are the model's, and every dirty report holds at
 * least the pages the model says were written or are pinned, and nothing
 * that was neither written nor pinned.  The pages a DMA command wrote
 * before it failed (its user memory changed: vfio_dma_rw() copied part of
 * a chunk into memory with a read-only page, a pin-write-unpin command
 * wrote the pages before one it cannot pin) must be reported like those
 * of one that succeeded.  With migdev-precise, a pin alone makes nothing
 * dirty, nor does an unpin: its pages are dirty when it reports a write
 * (vfio_mark_dirty(), its log read out by sync) or writes with
 * vfio_dma_rw().
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
#ifndef __SELFTESTS_VFIO_MIG_FUZZ_H
#define __SELFTESTS_VFIO_MIG_FUZZ_H

#include <vfio_mig_migdev.h>

#define FZ_TIMEOUT	86400	/* the budget bounds a run, not the harness */
#define FZ_WIN_IOVA	0x100000ULL	/* the IOVA window the fuzzer maps in */
#define FZ_WIN_PAGES	128ULL
#define FZ_WIN_SIZE	(FZ_WIN_PAGES * VFIO_MIG_PAGE_4K)
#define FZ_WIN_END		(FZ_WIN_IOVA + FZ_WIN_SIZE)
#define FZ_MAX_MAPS	64
#define FZ_MAX_DMA		(4ULL << 20)	/* migdev's longest command */
#define FZ_MAX_PINS	512		/* below migdev's working set limit */
#define FZ_DEV_PAGES	16ULL		/* mapped for the migration and BAR tests */
#define FZ_NERR		160
#define FZ_RW	(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/* ---- the fuzzer: seed, budget, counts, failures ---- */

enum {
	FZ_OP_MAP, FZ_OP_MAP_BAD, FZ_OP_UNMAP, FZ_OP_UNMAP_BITMAP, FZ_OP_UNMAP_BAD, FZ_OP_UNMAP_ALL,
	FZ_OP_GET, FZ_OP_GET_BAD, FZ_OP_START, FZ_OP_STOP, FZ_OP_DIRTY_BAD, FZ_OP_INFO, FZ_OP_DMA,
	FZ_OP_VERIFY, FZ_OP_HDR_READ, FZ_OP_HDR_WRITE, FZ_OP_STATE, FZ_OP_DATA, FZ_OP_RESET,
	FZ_OP_SAVE, FZ_OP_RESUME, FZ_OP_RESUME_BAD, FZ_OP_BAR_READ, FZ_OP_BAR_WRITE,
	FZ_OP_BAR_CMD, FZ_OP_CFG_READ, FZ_OP_CFG_WRITE, FZ_OP_OTHER_REGION, FZ_OP_DBG_BAD,
	FZ_OP_MMAP, FZ_OP_REPORT, FZ_NR_OPS
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
	unsigned long count[FZ_NR_OPS];
	unsigned long ok[FZ_NR_OPS];
	unsigned long err[FZ_NERR];	/* by errno; 0: success */
	unsigned long dirty_bits;	/* bits set in reports */
	unsigned long gets_with_bits;
	unsigned long data_checked;	/* bytes compared after DMA */
};

double fz_now_ms(void);

/* splitmix64 */
uint64_t fz_rnd(struct fuzz *f);

uint64_t fz_below(struct fuzz *f, uint64_t n);

bool fz_chance(struct fuzz *f, unsigned int percent);

/*
 * Each test draws from its own stream, derived from the seed and the
 * test's name, so that one test reproduces alone (with -f or -r).
 */
void fz_init(struct fuzz *f, const char *test, unsigned long iters);

bool fz_more(struct fuzz *f);

/* A new step: @op, described by the format. */
void fz_op(struct fuzz *f, int op, const char *fmt, ...);

void fz_fail(struct fuzz *f, int line, const char *fmt, ...);

#define FZ_CHECK(f, cond, fmt, ...) do {					\
	if (!(cond))							\
		fz_fail(f, __LINE__, "%s: " fmt, #cond, ##__VA_ARGS__);	\
} while (0)

/* Count a result (0 or -errno); it must be @want. */
void fz_expect(struct fuzz *f, int line, int got, int want);

#define FZ_EXPECT_RET(f, got, want) fz_expect(f, __LINE__, got, want)

/* Count a result that may be either of two. */
void fz_expect2(struct fuzz *f, int line, int got, int want1, int want2);

#define FZ_EXPECT_RET2(f, got, w1, w2) fz_expect2(f, __LINE__, got, w1, w2)

/* At least @min successes of @op: see fz_enough(). */
struct fz_need {
	int op;
	unsigned long min;
};

/*
 * End of a test: print what it did, then whether it did enough of each
 * @need (a list ended by a zero min).
 */
bool fz_finish(struct fuzz *f, double t0, const struct fz_need *need);

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
	struct mapping map[FZ_MAX_MAPS];
	int nmaps;
	bool tracking;
	bool precise;		/* the device reports what it writes */
	/* pages of the window */
	uint8_t must[FZ_WIN_PAGES];	/* must be in the next report: MUST_* */
	uint8_t may[FZ_WIN_PAGES];		/* may be: written or pinned */
	uint32_t pinned[FZ_WIN_PAGES];	/* times in the working set */
	uint8_t logged[FZ_WIN_PAGES];	/* in migdev-precise's log, maybe */
	unsigned long npinned;
	struct bad_mem bad[8];
	int nbad;
	unsigned long wrote_failed;	/* pages a failed command wrote */
};

/* Memory the device cannot write, from @lo to @hi. */
void m_bad_mem(struct model *m, const void *lo, const void *hi,
	       bool readable);

int m_find(struct model *m, uint64_t iova);

/* A mapping that overlaps [iova, iova + size), or -1. */
int m_overlap(struct model *m, uint64_t iova, uint64_t size);

uint64_t fz_pg(uint64_t iova);

struct mapping *m_add(struct model *m, uint64_t iova, uint64_t size,
		      uint64_t vaddr, uint32_t flags);

/*
 * Drop the pins of [iova, iova + size): migdev unpins on unmap.  An
 * unpin by a driver that does not report its writes marks the page; one
 * by migdev-precise marks nothing (it reported what it wrote).
 */
void m_unpin(struct model *m, uint64_t iova, uint64_t size);

/* Mapping @i goes away, with its pins and its dirty state. */
void m_remove(struct model *m, int i);

/* Why a page must be reported */
enum { FZ_MUST_NOT, FZ_MUST_WRITTEN, FZ_MUST_PART_WRITTEN };

/*
 * A report read migdev-precise's log out first: what it held is dirty now
 * (if tracking), in the range reported or not.
 */
void m_synced(struct model *m);

/*
 * What a report of [iova, iova + size) leaves: the pinned pages, when the
 * driver does not report its writes; none when it does (migdev-precise:
 * its pins are dirty only when it reports a write).
 */
void m_reported(struct model *m, uint64_t iova, uint64_t size);

void m_start(struct model *m);

void m_stop(struct model *m);

enum { FZ_DMA_PIN, FZ_DMA_RW, FZ_DMA_KEEP, FZ_DMA_RELEASE, FZ_DMA_KEPT, FZ_DMA_BOGUS, FZ_NR_DMA };

extern const char * const fz_dma_names[];

extern const uint32_t fz_dma_cmds[];

/* What migdev returns for DMA command @cmd (a DMA_*) of a running device. */
int m_dma_predict(struct model *m, int cmd, uint64_t iova, uint64_t len);

/*
 * Update the model after command @cmd returned @ret.  @wrote, when not
 * NULL, has the pages of the window whose memory the command changed: a
 * command that failed part-way wrote them, and they must be reported
 * (vfio_dma_rw() marks what a partial write wrote, migdev-precise
 * reports a page before it unpins it, and a plain unpin marks it).
 */
void m_dma_apply(struct model *m, int cmd, uint64_t iova, uint64_t len,
		 int ret, const uint8_t *wrote);

/*
 * After a successful write of @len bytes at @iova seeded @seed, the user's
 * memory holds the pattern: every byte of a short one, a sample of a long
 * one.  Skipped when two pages of the transfer share user memory.
 */
void m_check_data(struct fuzz *f, struct model *m, uint64_t iova,
		  uint64_t len, uint32_t seed);

/* Check the device's working set against the model's. */
void m_check_pinned(struct fuzz *f, struct model *m, struct migdev *md);

/*
 * What migdev-precise's debugfs "report" of [iova, iova + len) returns:
 * vfio_mark_dirty()'s result, whether tracking is on or not.
 */
int m_report_predict(struct model *m, uint64_t iova, uint64_t len);

/*
 * After a report of [iova, iova + len) returned @ret: every page the
 * range touches must be in the next dirty report, if tracking.
 */
void m_report_apply(struct model *m, uint64_t iova, uint64_t len, int ret);

/* The device reports a write of [iova, iova + len) (debugfs): 0 or -errno. */
int fz_report_write(struct migdev *md, uint64_t iova, uint64_t len);

/* A DMA command through debugfs (one of dma_names): 0 or -errno. */
int fz_dma(struct migdev *md, int cmd, uint64_t iova, uint64_t len,
	   uint32_t seed);

/* Random DMA arguments, mostly into mapped memory. */
void fz_pick_dma(struct fuzz *f, struct model *m, int *cmd, uint64_t *iova,
		 uint64_t *len);

/*
 * The user memory behind the window pages a write of [iova, iova + len)
 * reaches, taken before it: the pages whose bytes changed are those it
 * wrote.  Left out: pages not mapped, not readable, or whose user page
 * the transfer reaches through another IOVA page too.
 */
#define FZ_SNAP_PAGES	4

struct snap {
	int n;
	uint64_t iova[FZ_SNAP_PAGES];	/* the transfer's part of a page */
	uint64_t len[FZ_SNAP_PAGES];
	uint8_t *uaddr[FZ_SNAP_PAGES];
	uint8_t old[FZ_SNAP_PAGES][VFIO_MIG_PAGE_4K];
};

void fz_snap_take(struct model *m, struct snap *s, uint64_t iova,
		  uint64_t len);

/* The window pages whose memory changed since fz_snap_take(). */
void fz_snap_diff(const struct snap *s, uint8_t *wrote);

/* Anonymous memory for the mappings, or MAP_FAILED. */
void *fz_anon(uint64_t size, int prot);

#endif /* __SELFTESTS_VFIO_MIG_FUZZ_H */
