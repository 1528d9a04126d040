// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fuzzer's engine: the seed, each test's stream of random numbers, the
 * budget, the counts and the failures.  See vfio_mig_fuzz.h.
 */
#include <stdarg.h>
#include <time.h>

#include "../../kselftest.h"
#include <vfio_mig_fuzz.h>

static const char * const fz_op_names[FZ_NR_OPS] = {
	[FZ_OP_MAP] = "map", [FZ_OP_MAP_BAD] = "map-malformed", [FZ_OP_UNMAP] = "unmap",
	[FZ_OP_UNMAP_BITMAP] = "unmap-bitmap", [FZ_OP_UNMAP_BAD] = "unmap-malformed",
	[FZ_OP_UNMAP_ALL] = "unmap-all", [FZ_OP_GET] = "get-bitmap",
	[FZ_OP_GET_BAD] = "get-bitmap-malformed", [FZ_OP_START] = "start",
	[FZ_OP_STOP] = "stop", [FZ_OP_DIRTY_BAD] = "dirty-pages-malformed",
	[FZ_OP_INFO] = "get-info", [FZ_OP_DMA] = "dma", [FZ_OP_VERIFY] = "verify",
	[FZ_OP_HDR_READ] = "header-read", [FZ_OP_HDR_WRITE] = "header-write",
	[FZ_OP_STATE] = "device-state", [FZ_OP_DATA] = "data-section",
	[FZ_OP_RESET] = "reset", [FZ_OP_SAVE] = "save", [FZ_OP_RESUME] = "resume",
	[FZ_OP_RESUME_BAD] = "resume-malformed", [FZ_OP_BAR_READ] = "bar0-read",
	[FZ_OP_BAR_WRITE] = "bar0-write", [FZ_OP_BAR_CMD] = "bar0-dma",
	[FZ_OP_CFG_READ] = "config-read", [FZ_OP_CFG_WRITE] = "config-write",
	[FZ_OP_OTHER_REGION] = "other-region", [FZ_OP_DBG_BAD] = "debugfs-malformed",
	[FZ_OP_MMAP] = "mmap", [FZ_OP_REPORT] = "report",
};

double fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

uint64_t fz_rnd(struct fuzz *f)
{
	uint64_t z = (f->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t fz_below(struct fuzz *f, uint64_t n)
{
	return n ? fz_rnd(f) % n : 0;
}

bool fz_chance(struct fuzz *f, unsigned int percent)
{
	return fz_below(f, 100) < percent;
}

static uint64_t fz_env_u64(const char *name, uint64_t def)
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
	fz_seed = fz_env_u64("VFIO_FUZZ_SEED",
			     (uint64_t)ts.tv_sec * 1000003ULL + ts.tv_nsec / 1000);
}

void fz_init(struct fuzz *f, const char *test, unsigned long iters)
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
	f->iters = fz_env_u64("VFIO_FUZZ_ITERS", iters);
	secs = fz_env_u64("VFIO_FUZZ_SECONDS", 0);
	if (secs)
		f->deadline = fz_now_ms() + secs * 1e3;
	if (secs && !getenv("VFIO_FUZZ_ITERS"))
		f->iters = ULONG_MAX;
	f->verbose = !!getenv("VFIO_FUZZ_VERBOSE");
	ksft_print_msg("%s: seed %llu, up to %lu steps%s\n", test,
		       (unsigned long long)seed, f->iters,
		       secs ? " or the time limit" : "");
}

bool fz_more(struct fuzz *f)
{
	if (f->failed || f->iter >= f->iters)
		return false;
	if (f->deadline && fz_now_ms() > f->deadline)
		return false;
	f->iter++;
	return true;
}

void fz_op(struct fuzz *f, int op, const char *fmt, ...)
{
	va_list ap;

	f->op = op;
	f->compound = false;
	f->count[op]++;
	va_start(ap, fmt);
	vsnprintf(f->what, sizeof(f->what), fmt, ap);
	va_end(ap);
	if (f->verbose)
		ksft_print_msg("%s %lu: %s %s\n", f->test, f->iter, fz_op_names[op],
			       f->what);
}

void fz_fail(struct fuzz *f, int line, const char *fmt, ...)
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
		       fz_op_names[f->op], f->what, line, msg);
}

void fz_expect(struct fuzz *f, int line, int got, int want)
{
	f->err[-got >= 0 && -got < FZ_NERR ? -got : FZ_NERR - 1]++;
	if (got == want) {
		if (!got && !f->compound)
			f->ok[f->op]++;
		return;
	}
	fz_fail(f, line, "returned %d (%s), expected %d (%s)", got,
		got ? strerror(-got) : "success", want,
		want ? strerror(-want) : "success");
}

void fz_expect2(struct fuzz *f, int line, int got, int want1, int want2)
{
	fz_expect(f, line, got, got == want2 ? want2 : want1);
}

static void fz_report(struct fuzz *f, double ms)
{
	char line[512];
	int i, n;

	ksft_print_msg("%s: seed %llu, %lu steps in %.1f s, %u failures\n",
		       f->test, (unsigned long long)f->seed, f->iter, ms / 1e3,
		       f->failed);
	for (i = 0; i < FZ_NR_OPS; i++)
		if (f->count[i])
			ksft_print_msg("  %-22s %7lu, %7lu succeeded\n", fz_op_names[i],
				       f->count[i], f->ok[i]);
	for (i = 0, n = 0; i < FZ_NERR; i++)
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
		       fz_op_names[op], need);
	return false;
}

bool fz_finish(struct fuzz *f, double t0, const struct fz_need *need)
{
	bool enough = true;

	fz_report(f, fz_now_ms() - t0);
	for (; need->min; need++)
		enough &= fz_enough(f, need->op, need->min);
	return enough;
}
