/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fail-nth (fault injection, failslab): the n-th slab allocation a task
 * makes after fail_nth_arm() fails.  fail_nth_disarm() says whether it
 * did: false when the task made fewer than n allocations meanwhile.
 * Skips carry the tag "failslab" (see vfio_mig_util.h).
 */
#ifndef __SELFTESTS_VFIO_MIG_FAIL_NTH_H
#define __SELFTESTS_VFIO_MIG_FAIL_NTH_H

#include <stdbool.h>

/* Make failslab fail sleeping allocations too, quietly; 0 or -errno. */
int fail_nth_setup(void);

/*
 * Arm fail-nth for task @tid (a thread id; 0: the calling thread), whose
 * @n-th slab allocation from now on fails.  Returns the file to give
 * fail_nth_disarm(), or -1.
 */
int fail_nth_arm(int tid, int n);

/* Disarm; whether the armed allocation was made (and failed). */
bool fail_nth_disarm(int fd);

/*
 * A sweep: an operation run again and again with its n-th allocation
 * failing, for n = 1, 2, ... until a run makes fewer than n allocations.
 * It counts the injection points (the runs in which an allocation failed)
 * and, of them, those the call absorbed: it succeeded although an
 * allocation failed.  A sweep of an operation that allocates must have
 * points, or it tested nothing (fail_nth_sweep_print() checks it); an
 * operation that allocates nothing is checked to be so
 * (fail_nth_none_arm(), fail_nth_none_check()) rather than swept.
 */
struct fail_nth_sweep {
	const char *name;
	int tid;		/* whose allocations fail; 0: this thread */
	int n;			/* the allocation that fails in this run */
	int fd;
	bool injected;		/* it did fail */
	int calls;		/* runs, for sweeps of many operations */
	int points;		/* runs in which an allocation failed */
	int absorbed;		/* of those, runs in which the call succeeded */
	int more;		/* of those, runs that reported more than needed */
};

#ifdef __KSELFTEST_HARNESS_H
/* In a test: fail-nth is there, or the test is skipped ("failslab"). */
static inline bool fail_nth_ready(struct __test_metadata *_metadata)
{
	if (fail_nth_setup())
		SKIP(return false,
		     "failslab: no failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
	return true;
}

/*
 * FAIL_NTH_SWEEP(sw, max) body: run the body for n = 1, 2, ... @max, and
 * in it FAIL_NTH(sw, call) once: @call (a statement: "ret = ...") with
 * the n-th allocation of task sw->tid failing.  The loop ends after the
 * body of the first run in which the call made fewer than n allocations
 * (sw->injected false): what that run left is what the operation does
 * when nothing fails.  sw->points counts the runs in which an allocation
 * failed.
 */
#define FAIL_NTH_SWEEP(sw, max)						\
	for (struct fail_nth_sweep *__sweep = fail_nth_sweep_start(sw);	\
	     fail_nth_sweep_more(__sweep, max);)

#define FAIL_NTH(sw, call) do {						\
	struct fail_nth_sweep *__armed = (sw);				\
									\
	fail_nth_sweep_arm(_metadata, __armed);				\
	call;								\
	fail_nth_sweep_hit(__armed);					\
} while (0)

static inline struct fail_nth_sweep *
fail_nth_sweep_start(struct fail_nth_sweep *sw)
{
	sw->n = 0;
	sw->injected = true;
	return sw;
}

/* Another run: the last one had an allocation fail, and n < @max. */
static inline bool fail_nth_sweep_more(const struct fail_nth_sweep *sw,
				       int max)
{
	return sw->injected && sw->n < max;
}

/* Arm the next allocation of @sw... */
static inline void fail_nth_sweep_arm(struct __test_metadata *_metadata,
				      struct fail_nth_sweep *sw)
{
	sw->fd = fail_nth_arm(sw->tid, ++sw->n);
	ASSERT_GE(sw->fd, 0);
}

/* ...and disarm it: whether it failed (then counted). */
static inline void fail_nth_sweep_hit(struct fail_nth_sweep *sw)
{
	sw->injected = fail_nth_disarm(sw->fd);
	sw->points += sw->injected;
}

/*
 * The sweep's counts; it must have had points.  The first time, what
 * "absorbed" means.
 */
static inline void fail_nth_sweep_print(struct __test_metadata *_metadata,
					const struct fail_nth_sweep *sw)
{
	static bool explained;

	EXPECT_GT(sw->points, 0) {
		ksft_print_msg("%s: no allocation failed: the sweep tested nothing\n",
			       sw->name);
	}
	if (sw->more)
		ksft_print_msg("%s: %d allocations failed in turn (%d absorbed, %d report more)\n",
			       sw->name, sw->points, sw->absorbed, sw->more);
	else
		ksft_print_msg("%s: %d allocations failed in turn (%d absorbed)\n",
			       sw->name, sw->points, sw->absorbed);
	if (explained)
		return;
	explained = true;
	ksft_print_msg("absorbed: the call succeeded although an allocation failed:\n");
	ksft_print_msg("  the tracker recorded more, or the allocation was kmemleak's\n");
	ksft_print_msg("  own object tracking (CONFIG_DEBUG_KMEMLEAK), which it tolerates\n");
}

/* Arm fail-nth at 1 for @tid (0: this thread) before a call... */
static inline int fail_nth_none_arm(struct __test_metadata *_metadata, int tid)
{
	int fd = fail_nth_arm(tid, 1);

	ASSERT_GE(fd, 0);
	return fd;
}

/* ...that allocates nothing: its first allocation was not made. */
static inline void fail_nth_none_check(struct __test_metadata *_metadata,
				       int fd, const char *what)
{
	bool injected = fail_nth_disarm(fd);

	EXPECT_FALSE(injected) {
		ksft_print_msg("%s allocates\n", what);
	}
	if (!injected)
		ksft_print_msg("%s: allocates nothing (fail-nth=1 not consumed)\n",
			       what);
}
#endif

#endif /* __SELFTESTS_VFIO_MIG_FAIL_NTH_H */
