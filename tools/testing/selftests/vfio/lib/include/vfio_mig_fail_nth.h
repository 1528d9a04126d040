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

#ifdef __KSELFTEST_HARNESS_H
/* In a test: fail-nth is there, or the test is skipped ("failslab"). */
static inline bool fail_nth_ready(struct __test_metadata *_metadata)
{
	if (fail_nth_setup())
		SKIP(return false,
		     "failslab: no failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)");
	return true;
}
#endif

#endif /* __SELFTESTS_VFIO_MIG_FAIL_NTH_H */
