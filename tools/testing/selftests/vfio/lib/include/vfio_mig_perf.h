/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for the VFIO timing programs (*_perf.c): a clock, anonymous
 * memory and one line per case,
 *
 *   <case>: median <value> <unit> (min .., max .., <n> runs)
 *
 * which tooling that compares kernels parses.
 */
#ifndef __SELFTESTS_VFIO_MIG_PERF_H
#define __SELFTESTS_VFIO_MIG_PERF_H

#include <vfio_mig_util.h>

#define PERF_SZ_1G	0x40000000ULL
#define PERF_SZ_1T	(1024 * PERF_SZ_1G)
#define PERF_MAX_RUNS	101

/* CLOCK_MONOTONIC in microseconds. */
double perf_now_us(void);

/* Print the median, minimum and maximum of @n timings, divided by @scale. */
void perf_report(const char *name, double *t, int n, double scale,
		 const char *unit);

/* Anonymous memory that is not reserved up front; exits on failure. */
void *perf_anon(uint64_t size, int prot);

/* Exit with a message when a call returned non-zero (-errno or -1). */
void perf_must(int ret, const char *what);

/*
 * Kernel memory that allocations of a kernel subsystem show up in:
 * unreclaimable slab plus vmalloc, in KiB, from /proc/meminfo; -1 when it
 * cannot be read.
 */
long perf_kernel_mem_kib(void);

/*
 * The references of a dense GET of @bytes of bitmap, @runs times each:
 * "@name", a memset of @bitmap, and (when @words_name is set)
 * "@words_name", the same bytes stored a u64 at a time.
 */
void perf_memset_ref(uint64_t *bitmap, uint64_t bytes, int runs,
		     const char *name, const char *words_name);

/*
 * "@name": @runs GET_BITMAPs of [@iova, @iova + @size) at @pgsize into
 * @bitmap, zeroed before each; @mark(@arg), when set, makes the range
 * dirty again before each.  Every bit must come back set, or the program
 * exits 1.
 */
void perf_dense_get(int container, uint64_t iova, uint64_t size,
		    uint64_t pgsize, uint64_t *bitmap, int runs,
		    const char *name, void (*mark)(void *arg), void *arg);

#endif /* __SELFTESTS_VFIO_MIG_PERF_H */
