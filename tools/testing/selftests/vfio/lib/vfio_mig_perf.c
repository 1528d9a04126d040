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

/*
 * The references of a dense GET, each in a loop of its own (in a TCG guest
 * a memset right after the kernel wrote the bitmap runs several times
 * slower, which would flatter the GET): memset of its bitmap, and the
 * same bytes written a u64 at a time, as the kernel writes bitmaps.  In a
 * TCG guest glibc's memset of a large buffer (rep stosb) costs several
 * times the u64 stores, so the second shows how much of that a GET hides.
 */
void perf_memset_ref(uint64_t *bitmap, uint64_t bytes, int runs,
		     const char *name, const char *words_name)
{
	double t[PERF_MAX_RUNS];
	uint64_t i;
	int r;

	for (r = 0; r < runs; r++) {
		t[r] = perf_now_us();
		memset(bitmap, 0xff, bytes);
		t[r] = perf_now_us() - t[r];
	}
	perf_report(name, t, runs, 1, "us");
	if (!words_name)
		return;
	for (r = 0; r < runs; r++) {
		t[r] = perf_now_us();
		for (i = 0; i < bytes / 8; i++) {
			bitmap[i] = ~0ULL;
			/* a store per word: the compiler may not make a memset */
			asm volatile("" : : : "memory");
		}
		t[r] = perf_now_us() - t[r];
	}
	perf_report(words_name, t, runs, 1, "us");
}

/* GETs of a wholly dirty range: see vfio_mig_perf.h. */
void perf_dense_get(int container, uint64_t iova, uint64_t size,
		    uint64_t pgsize, uint64_t *bitmap, int runs,
		    const char *name, void (*mark)(void *arg), void *arg)
{
	uint64_t bytes = vfio_mig_bitmap_bytes(size, pgsize);
	uint64_t nbits = size / pgsize, set;
	double t[PERF_MAX_RUNS];
	int r;

	for (r = 0; r < runs; r++) {
		if (mark)
			mark(arg);
		memset(bitmap, 0, bytes);
		t[r] = perf_now_us();
		perf_must(vfio_get_bitmap(container, iova, size, pgsize, bitmap,
					  bytes), name);
		t[r] = perf_now_us() - t[r];
		set = vfio_mig_bitmap_weight(bitmap, nbits);
		if (set != nbits) {
			printf("%s: %llu of %llu bits set\n", name,
			       (unsigned long long)set, (unsigned long long)nbits);
			exit(1);
		}
	}
	perf_report(name, t, runs, 1, "us");
}
