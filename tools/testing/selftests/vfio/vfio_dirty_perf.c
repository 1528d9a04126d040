// SPDX-License-Identifier: GPL-2.0-only
/*
 * Timings of the type1 dirty page ioctls, printed as plain lines:
 *
 *   <case>: median <value> <unit> (min .., max .., <n> runs)
 *
 * Cases run on an mdev container (nothing dirty, no pinning at MAP time)
 * and on the edu device's container (every IOMMU-mapped page dirty).  A
 * case whose device is missing is skipped with the reason.  The numbers
 * mean most when the same binary runs on two kernels side by side.
 *
 * usage: vfio_dirty_perf [-r RUNS] [-m MAPPINGS]
 */
#include <time.h>
#include "vfio_util.h"

#define SZ_1G		0x40000000ULL
#define SZ_1T		(1024 * SZ_1G)
#define MAX_RUNS	101

static int runs = 11;
static int nmaps = 20000;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *t, int n, double scale,
		   const char *unit)
{
	qsort(t, n, sizeof(*t), cmp_double);
	printf("%s: median %.3f %s (min %.3f, max %.3f, %d runs)\n", name,
	       t[n / 2] / scale, unit, t[0] / scale, t[n - 1] / scale, n);
	fflush(stdout);
}

static void *anon(uint64_t size, int prot)
{
	void *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static int open_mdev(int *container, int *group)
{
	int id = vfio_find_mdev_group("mtty-2", 0, NULL, 0);

	if (id < 0) {
		printf("# SKIP mdev cases: no mtty-2 mdev\n");
		return -1;
	}
	if (vfio_open_container(id, VFIO_TYPE1v2_IOMMU, container, group)) {
		printf("# SKIP mdev cases: cannot open group %d\n", id);
		return -1;
	}
	return 0;
}

static void close_container(int container, int group)
{
	close(group);
	close(container);
}

static void get_once(int container, uint64_t iova, uint64_t size,
		     uint64_t *bitmap, uint64_t bytes)
{
	int ret = vfio_get_bitmap(container, iova, size, 4096, bitmap, bytes);

	if (ret) {
		printf("GET_BITMAP: %s\n", strerror(-ret));
		exit(1);
	}
}

static void mdev_cases(void)
{
	uint64_t iova = 1ULL << 42, nbits = SZ_1T / 4096, *bitmap, i;
	int container, group, r;
	double t[MAX_RUNS];
	void *va;

	if (open_mdev(&container, &group))
		return;
	vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	bitmap = anon(nbits / 8, PROT_READ | PROT_WRITE);
	memset(bitmap, 0, nbits / 8);

	for (r = 0; r < runs; r++) {
		t[r] = now_us();
		get_once(container, 0, 1ULL << 30, bitmap, 1ULL << 15);
		t[r] = now_us() - t[r];
	}
	report("get, no mappings, 1 GiB range", t, runs, 1, "us");

	va = anon(SZ_1T, PROT_NONE);
	if (vfio_map(container, iova, va, SZ_1T)) {
		printf("MAP 1 TiB failed\n");
		exit(1);
	}
	for (r = 0; r < runs; r++) {
		vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
		t[r] = now_us();
		vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
		t[r] = now_us() - t[r];
	}
	report("start, one 1 TiB mapping", t, runs, 1e3, "ms");
	for (r = 0; r < runs; r++) {
		t[r] = now_us();
		get_once(container, iova, SZ_1T, bitmap, nbits / 8);
		t[r] = now_us() - t[r];
	}
	report("get, 1 TiB mapping, nothing dirty", t, runs, 1e3, "ms");
	vfio_unmap(container, iova, SZ_1T);
	munmap(va, SZ_1T);

	/* many small mappings: one GET per mapping, then one GET over all */
	va = anon((uint64_t)nmaps * 4096, PROT_READ | PROT_WRITE);
	for (i = 0; i < (uint64_t)nmaps; i++) {
		if (vfio_map(container, (i + 1) * 4096, (char *)va + i * 4096, 4096)) {
			printf("MAP %llu failed\n", (unsigned long long)i);
			exit(1);
		}
	}
	for (r = 0; r < 3; r++) {
		t[r] = now_us();
		for (i = 0; i < (uint64_t)nmaps; i++)
			get_once(container, (i + 1) * 4096, 4096, bitmap, 8);
		t[r] = now_us() - t[r];
	}
	printf("# %d mappings of 4 KiB\n", nmaps);
	report("get per mapping, all mappings, total", t, 3, 1e6, "s");
	for (r = 0; r < runs; r++) {
		t[r] = now_us();
		get_once(container, 4096, (uint64_t)nmaps * 4096, bitmap,
			 ((uint64_t)nmaps + 63) / 64 * 8);
		t[r] = now_us() - t[r];
	}
	report("get, one call over all mappings", t, runs, 1e3, "ms");
	munmap(bitmap, nbits / 8);
	close_container(container, group);
}

static void edu_cases(void)
{
	uint64_t size = 256ULL << 20, nbits = size / 4096, iova = 1ULL << 32;
	int id = vfio_find_pci_group(EDU_VENDOR, EDU_DEVICE);
	int container, group, r;
	double t[MAX_RUNS];
	uint64_t *bitmap;
	char *va;

	if (id < 0 || vfio_open_container(id, VFIO_TYPE1v2_IOMMU, &container, &group)) {
		printf("# SKIP edu cases: no edu device on vfio-pci\n");
		return;
	}
	va = anon(size, PROT_READ | PROT_WRITE);
	if (vfio_map(container, iova, va, size)) {
		printf("MAP 256 MiB failed\n");
		exit(1);
	}
	vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	bitmap = anon(nbits / 8, PROT_READ | PROT_WRITE);
	for (r = 0; r < runs; r++) {
		memset(bitmap, 0, nbits / 8);
		t[r] = now_us();
		get_once(container, iova, size, bitmap, nbits / 8);
		t[r] = now_us() - t[r];
	}
	report("get, 256 MiB all dirty", t, runs, 1, "us");
	for (r = 0; r < runs; r++) {
		t[r] = now_us();
		memset(bitmap, 0xff, nbits / 8);
		t[r] = now_us() - t[r];
	}
	report("memset of the same bitmap (user space)", t, runs, 1, "us");

	for (r = 0; r < runs; r++) {
		if (vfio_map(container, 1ULL << 36, va, 64 * 4096))
			exit(1);
		t[r] = now_us();
		if (vfio_unmap_bitmap(container, 1ULL << 36, 64 * 4096, 4096,
				      bitmap, 8, NULL))
			exit(1);
		t[r] = now_us() - t[r];
	}
	report("unmap with bitmap, 64 pages", t, runs, 1, "us");
	close_container(container, group);
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "r:m:")) != -1) {
		if (opt == 'r')
			runs = atoi(optarg) > MAX_RUNS ? MAX_RUNS : atoi(optarg);
		else if (opt == 'm')
			nmaps = atoi(optarg);
	}
	if (runs < 3)
		runs = 3;
	mdev_cases();
	edu_cases();
	return 0;
}
