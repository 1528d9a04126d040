// SPDX-License-Identifier: GPL-2.0-only
/*
 * The clock, memory and report line of the timing programs: see
 * vfio_mig_perf.h.
 */
#include <time.h>

#include <vfio_mig_perf.h>

/* CLOCK_MONOTONIC in microseconds. */
double perf_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int perf_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Print the median, minimum and maximum of @n timings, divided by @scale. */
void perf_report(const char *name, double *t, int n, double scale,
		 const char *unit)
{
	qsort(t, n, sizeof(*t), perf_cmp_double);
	printf("%s: median %.3f %s (min %.3f, max %.3f, %d runs)\n", name,
	       t[n / 2] / scale, unit, t[0] / scale, t[n - 1] / scale, n);
	fflush(stdout);
}

/* Anonymous memory that is not reserved up front; exits on failure. */
void *perf_anon(uint64_t size, int prot)
{
	void *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* Exit with a message when a call returned non-zero (-errno or -1). */
void perf_must(int ret, const char *what)
{
	if (ret) {
		printf("%s: %s\n", what, strerror(ret < 0 && ret != -1 ? -ret : errno));
		exit(1);
	}
}

/*
 * Kernel memory that allocations of a kernel subsystem show up in:
 * unreclaimable slab plus vmalloc, in KiB, from /proc/meminfo; -1 when it
 * cannot be read.
 */
long perf_kernel_mem_kib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	long sum = 0, v, seen = 0;
	char line[128];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "SUnreclaim: %ld kB", &v) == 1 ||
		    sscanf(line, "VmallocUsed: %ld kB", &v) == 1) {
			sum += v;
			seen++;
		}
	}
	fclose(f);
	return seen == 2 ? sum : -1;
}
