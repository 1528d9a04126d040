// SPDX-License-Identifier: GPL-2.0-only
/*
 * Timings of the type1 dirty page ioctls, printed as plain lines:
 *
 *   <case>: median <value> <unit> (min .., max .., <n> runs)
 *
 * Cases run on an mdev container (nothing dirty, no pinning at MAP time)
 * and on the edu device's container (every IOMMU-mapped page dirty).  A
 * case whose device or feature is missing is skipped with the reason.  The
 * numbers mean most when the same binary runs on two kernels side by side
 * (tooling/bench); "ref:" cases are references measured in the same boot,
 * against which the others can be normalised.
 *
 * usage: vfio_dirty_perf [-r RUNS] [-m MAPPINGS] [-p PASSES] [-o GROUPS]
 *   -r  runs of each short case (median of them)
 *   -m  number of 4 KiB mappings of the many-mapping cases
 *   -p  passes of "one GET per mapping over all mappings" (slow on 6.12)
 *   -o  only these groups of cases (for profiling one of them), any of
 *       "fixed", "sparse", "many", "dense" (default: all)
 */
#include <vfio_mig_perf.h>

static int runs = 11;
static int nmaps = 60000;
static int passes = 1;
static const char *only;

static bool want(const char *group)
{
	return !only || strstr(only, group);
}

/* short calls are timed in batches of this many */
#define BATCH		1000

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

static void get_pg(int container, uint64_t iova, uint64_t size,
		   uint64_t pgsize, uint64_t *bitmap)
{
	int ret = vfio_get_bitmap(container, iova, size, pgsize, bitmap,
				  vfio_mig_bitmap_bytes(size, pgsize));

	if (ret) {
		printf("GET_BITMAP: %s\n", strerror(-ret));
		exit(1);
	}
}

static void get_once(int container, uint64_t iova, uint64_t size,
		     uint64_t *bitmap)
{
	get_pg(container, iova, size, 4096, bitmap);
}

/* Does the kernel take bitmaps at 2 MiB pages?  6.12 supports 4 KiB only. */
static bool big_pages(int container)
{
	uint64_t word = 0;
	int ret = vfio_get_bitmap(container, 0, 64 * (2ULL << 20), 2ULL << 20,
				  &word, sizeof(word));

	if (ret)
		printf("# SKIP 2 MiB bitmap page cases: GET_BITMAP: %s\n",
		       strerror(-ret));
	return !ret;
}

/*
 * Fixed costs: calls that find nothing, against a trivial ioctl timed in
 * the batch just before, so that both see the same conditions; the ratio
 * is taken per pair of batches.
 */
static void fixed_cost_cases(int container, uint64_t *bitmap)
{
	double ref[PERF_MAX_RUNS], t[PERF_MAX_RUNS], ratio[PERF_MAX_RUNS];
	int r, i;

	for (r = 0; r < runs; r++) {
		ref[r] = perf_now_us();
		for (i = 0; i < BATCH; i++)
			ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
		ref[r] = perf_now_us() - ref[r];
		t[r] = perf_now_us();
		for (i = 0; i < BATCH; i++)
			get_once(container, 0, 1ULL << 30, bitmap);
		t[r] = perf_now_us() - t[r];
		ratio[r] = t[r] / ref[r];
	}
	perf_report("ref: CHECK_EXTENSION, per call", ref, runs, BATCH, "us");
	perf_report("get, no mappings, 1 GiB range, per call", t, runs, BATCH, "us");
	perf_report("get, no mappings / CHECK_EXTENSION", ratio, runs, 1, "x");
}

/* One sparse 1 TiB mapping: nothing is dirty, nothing pinned. */
static void sparse_cases(int container, uint64_t *bitmap, bool big)
{
	uint64_t iova = 1ULL << 42;
	double t[PERF_MAX_RUNS];
	void *va;
	int r;

	va = perf_anon(PERF_SZ_1T, PROT_NONE);
	perf_must(vfio_map(container, iova, va, PERF_SZ_1T), "MAP 1 TiB");
	for (r = 0; r < runs; r++) {
		t[r] = perf_now_us();
		perf_must(vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), "STOP");
		perf_must(vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START");
		t[r] = perf_now_us() - t[r];
	}
	perf_report("start+stop, one 1 TiB mapping", t, runs, 1, "us");
	for (r = 0; r < runs; r++) {
		long before;

		perf_must(vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), "STOP");
		before = perf_kernel_mem_kib();
		perf_must(vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START");
		t[r] = perf_kernel_mem_kib() - before;
	}
	perf_report("memory held by START, one 1 TiB mapping", t, runs, 1, "KiB");
	for (r = 0; r < runs; r++) {
		t[r] = perf_now_us();
		get_once(container, iova, PERF_SZ_1T, bitmap);
		t[r] = perf_now_us() - t[r];
	}
	perf_report("get, 1 TiB mapping, nothing dirty", t, runs, 1, "us");
	for (r = 0; big && r < runs; r++) {
		t[r] = perf_now_us();
		get_pg(container, iova, PERF_SZ_1T, 2ULL << 20, bitmap);
		t[r] = perf_now_us() - t[r];
	}
	if (big)
		perf_report("get, 1 TiB mapping, nothing dirty, 2 MiB pages", t, runs, 1, "us");
	perf_must(vfio_unmap(container, iova, PERF_SZ_1T), "UNMAP 1 TiB");
	munmap(va, PERF_SZ_1T);
}

/*
 * Many small mappings, as QEMU holds behind a vIOMMU: a GET per mapping, a
 * GET over all of them, and unmapping one 4 KiB mapping among them with and
 * without a bitmap.
 */
static void many_cases(int container, uint64_t *bitmap)
{
	uint64_t spare = ((uint64_t)nmaps + 2) * 4096, i;
	double t[PERF_MAX_RUNS], ref[PERF_MAX_RUNS], ratio[PERF_MAX_RUNS];
	char *va;
	int r;

	va = perf_anon(((uint64_t)nmaps + 1) * 4096, PROT_READ | PROT_WRITE);
	for (i = 0; i < (uint64_t)nmaps; i++)
		perf_must(vfio_map(container, (i + 1) * 4096, va + i * 4096, 4096), "MAP");
	printf("# %d mappings of 4 KiB\n", nmaps);
	for (r = 0; r < passes; r++) {
		t[r] = perf_now_us();
		for (i = 0; i < (uint64_t)nmaps; i++)
			get_once(container, (i + 1) * 4096, 4096, bitmap);
		t[r] = perf_now_us() - t[r];
	}
	perf_report("get per mapping, all mappings, total", t, passes, 1e3, "ms");
	for (r = 0; r < runs; r++) {
		t[r] = perf_now_us();
		get_once(container, 4096, (uint64_t)nmaps * 4096, bitmap);
		t[r] = perf_now_us() - t[r];
	}
	perf_report("get, one call over all mappings", t, runs, 1e3, "ms");

	/*
	 * The spare page past the others, mapped and unmapped again, with and
	 * without a bitmap in turn; the ratio is taken per pair.
	 */
	for (r = 0; r < PERF_MAX_RUNS; r++) {
		perf_must(vfio_map(container, spare, va + (uint64_t)nmaps * 4096, 4096), "MAP");
		ref[r] = perf_now_us();
		perf_must(vfio_unmap(container, spare, 4096), "UNMAP");
		ref[r] = perf_now_us() - ref[r];
		perf_must(vfio_map(container, spare, va + (uint64_t)nmaps * 4096, 4096), "MAP");
		t[r] = perf_now_us();
		perf_must(vfio_unmap_bitmap(container, spare, 4096, 4096, bitmap, 8, NULL),
			  "UNMAP with bitmap");
		t[r] = perf_now_us() - t[r];
		ratio[r] = t[r] / ref[r];
	}
	perf_report("ref: unmap, 4 KiB mapping", ref, PERF_MAX_RUNS, 1, "us");
	perf_report("unmap with bitmap, 4 KiB mapping", t, PERF_MAX_RUNS, 1, "us");
	perf_report("unmap with bitmap / unmap, 4 KiB mapping", ratio, PERF_MAX_RUNS, 1, "x");
	for (i = 0; i < (uint64_t)nmaps; i++)
		perf_must(vfio_unmap(container, (i + 1) * 4096, 4096), "UNMAP");
	munmap(va, ((uint64_t)nmaps + 1) * 4096);
}

static void mdev_cases(void)
{
	uint64_t nbits = PERF_SZ_1T / 4096, *bitmap;
	int container, group;
	bool big;

	if (open_mdev(&container, &group))
		return;
	perf_must(vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START");
	bitmap = perf_anon(nbits / 8, PROT_READ | PROT_WRITE);
	memset(bitmap, 0, nbits / 8);
	big = big_pages(container);
	if (want("fixed"))
		fixed_cost_cases(container, bitmap);
	if (want("sparse"))
		sparse_cases(container, bitmap, big);
	if (want("many"))
		many_cases(container, bitmap);
	munmap(bitmap, nbits / 8);
	close_container(container, group);
}

static void dense_get(int container, uint64_t iova, uint64_t size,
		      uint64_t pgsize, uint64_t *bitmap, const char *name)
{
	perf_dense_get(container, iova, size, pgsize, bitmap, runs, name,
		       NULL, NULL);
}

/* 16 GiB of IOVA in the edu container, all of it dirty */
#define DENSE_16G_IOVA	(128 * PERF_SZ_1G)	/* in intel-iommu's 39 bits */
#define DENSE_16G	(16 * PERF_SZ_1G)

/*
 * 16 GiB of IOMMU-mapped IOVA with the guest's memory: the same 256 MiB
 * of process memory (@va) mapped 64 times side by side.  type1 pins each
 * mapping, so the pages are pinned 64 times over, but nothing more is
 * allocated than the 256 MiB and the IOMMU's page tables (32 MiB).
 */
static void dense_16g_cases(int container, char *va, uint64_t size)
{
	uint64_t n = DENSE_16G / size, i, *bitmap;
	uint64_t bytes = vfio_mig_bitmap_bytes(DENSE_16G, 4096);

	bitmap = perf_anon(bytes, PROT_READ | PROT_WRITE);
	for (i = 0; i < n; i++)
		perf_must(vfio_map(container, DENSE_16G_IOVA + i * size, va, size),
			  "MAP 256 MiB of 16 GiB");
	perf_memset_ref(bitmap, bytes, runs,
			"ref: memset of the same bitmap (user space), 16 GiB",
			"ref: u64 stores over the same bitmap (user space), 16 GiB");
	dense_get(container, DENSE_16G_IOVA, DENSE_16G, 4096, bitmap,
		  "get, 16 GiB all dirty");
	perf_must(vfio_unmap(container, DENSE_16G_IOVA, DENSE_16G), "UNMAP 16 GiB");
	munmap(bitmap, bytes);
}

static void edu_cases(void)
{
	uint64_t size = 256ULL << 20, nbits = size / 4096, iova = 1ULL << 32;
	int id = vfio_find_pci_group(VFIO_MIG_EDU_VENDOR, VFIO_MIG_EDU_DEVICE);
	int container, group, r;
	double t[PERF_MAX_RUNS];
	uint64_t *bitmap;
	char *va;

	if (!want("dense"))
		return;
	if (id < 0 || vfio_open_container(id, VFIO_TYPE1v2_IOMMU, &container, &group)) {
		printf("# SKIP edu cases: no edu device on vfio-pci\n");
		return;
	}
	va = perf_anon(size, PROT_READ | PROT_WRITE);
	perf_must(vfio_map(container, iova, va, size), "MAP 256 MiB");
	perf_must(vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START");
	bitmap = perf_anon(nbits / 8, PROT_READ | PROT_WRITE);
	perf_memset_ref(bitmap, nbits / 8, runs,
			"ref: memset of the same bitmap (user space)", NULL);
	dense_get(container, iova, size, 4096, bitmap, "get, 256 MiB all dirty");
	if (big_pages(container))
		dense_get(container, iova, size, 2ULL << 20, bitmap,
			  "get, 256 MiB all dirty, 2 MiB pages");

	for (r = 0; r < runs; r++) {
		perf_must(vfio_map(container, 1ULL << 36, va, 64 * 4096), "MAP");
		t[r] = perf_now_us();
		perf_must(vfio_unmap_bitmap(container, 1ULL << 36, 64 * 4096, 4096,
					    bitmap, 8, NULL), "UNMAP with bitmap");
		t[r] = perf_now_us() - t[r];
	}
	perf_report("unmap with bitmap, 64 pages, IOMMU-backed", t, runs, 1, "us");
	munmap(bitmap, nbits / 8);
	dense_16g_cases(container, va, size);
	close_container(container, group);
	munmap(va, size);
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "r:m:p:o:")) != -1) {
		if (opt == 'r')
			runs = atoi(optarg) > PERF_MAX_RUNS ? PERF_MAX_RUNS : atoi(optarg);
		else if (opt == 'm')
			nmaps = atoi(optarg);
		else if (opt == 'p')
			passes = atoi(optarg);
		else if (opt == 'o')
			only = optarg;
	}
	if (runs < 3)
		runs = 3;
	if (passes < 1 || passes > PERF_MAX_RUNS)
		passes = 1;
	mdev_cases();
	edu_cases();
	return 0;
}
