// SPDX-License-Identifier: GPL-2.0-only
/*
 * Costs of dirty tracking seen by a vendor driver, measured through the
 * migdev sample (samples/vfio-mdev/migdev.c) and its debugfs files:
 *
 *  - pinning and unpinning 4 KiB pages with tracking off and on;
 *  - the kernel memory tracking holds after the device wrote 1, 1,000,
 *    10,000, 100,000 (up to -n, by tens) pages scattered over a 1 TiB
 *    mapping: it grows with what is dirty, not with the size of the
 *    mapping.  The device writes them with debugfs "stride", thousands of
 *    pages a command;
 *  - a GET_BITMAP over that whole mapping (a 32 MiB bitmap) with those
 *    pages dirty, once checked bit for bit against what was written: a
 *    bitmap that differs fails the program (exit 1);
 *  - a GET_BITMAP over a 1 TiB mapping that a migdev-precise device
 *    reports it wrote whole before each GET (debugfs "report"), every
 *    bit checked, beside a memset and u64 stores of its 32 MiB bitmap.
 *
 * Output lines as vfio_dirty_perf's (see lib/include/vfio_mig_perf.h).
 * Needs a "migdev-1" mdev; without one it says so and exits 4
 * (kselftest's skip).
 *
 * usage: vfio_migdev_perf [-r RUNS] [-n PAGES]
 */
#include <sys/mount.h>
#include <sys/stat.h>

#include <vfio_mig_perf.h>
#include <vfio_mig_migdev.h>

#define CG_PERF		VFIO_MIG_CG_ROOT "/vfio_migdev_perf"

static int runs = 11;
static long most_pages = 100000;
static bool in_cgroup;

/*
 * Run in a memory cgroup of our own: type1 charges tracking memory to the
 * cgroup of the mapping's owner, object by object, so the cgroup's slab
 * counter shows it to the byte.  Without one, /proc/meminfo (whole slabs).
 */
static void enter_cgroup(void)
{
	if (access(VFIO_MIG_CG_ROOT "/cgroup.controllers", F_OK))
		mount("none", VFIO_MIG_CG_ROOT, "cgroup2", 0, NULL);
	sysfs_write(VFIO_MIG_CG_ROOT "/cgroup.subtree_control", "+memory");
	mkdir(CG_PERF, 0755);
	in_cgroup = !sysfs_write(CG_PERF "/cgroup.procs", "0") &&
		    !access(CG_PERF "/memory.stat", R_OK);
	if (!in_cgroup)
		printf("# no memory cgroup: tracking memory from /proc/meminfo\n");
}

static void leave_cgroup(void)
{
	if (in_cgroup && !sysfs_write(VFIO_MIG_CG_ROOT "/cgroup.procs", "0"))
		rmdir(CG_PERF);
}

/* Unreclaimable slab and vmalloc memory charged to us, in KiB. */
static double tracking_kib(void)
{
	long long slab, vmalloc;

	if (!in_cgroup)
		return perf_kernel_mem_kib();
	slab = cg_key(CG_PERF, "memory.stat", "slab_unreclaimable");
	vmalloc = cg_key(CG_PERF, "memory.stat", "vmalloc");
	return (slab + (vmalloc > 0 ? vmalloc : 0)) / 1024.0;
}

/*
 * A vendor driver pinning and unpinning pages: migdev keeps 1024 pages
 * pinned and releases them, one vfio_pin_pages() and one vfio_unpin_pages()
 * per page.  Runs with tracking on and off alternate, so that drift in the
 * boot hits both alike.
 */
static void pin_cases(struct migdev *md)
{
	uint64_t iova = 1ULL << 32, size = 4ULL << 20;
	double t[2][PERF_MAX_RUNS], ratio[PERF_MAX_RUNS];
	void *va;
	int r, on;

	va = perf_anon(size, PROT_READ | PROT_WRITE);
	memset(va, 1, size);
	perf_must(vfio_map(md->container, iova, va, size), "MAP");
	for (r = 0; r < runs; r++) {
		for (on = 1; on >= 0; on--) {
			perf_must(vfio_dirty(md->container, on ?
					     VFIO_IOMMU_DIRTY_PAGES_FLAG_START :
					     VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), "START/STOP");
			t[on][r] = perf_now_us();
			perf_must(migdev_ctl(md, "dma", "keep 0x%llx 0x%llx",
					     (unsigned long long)iova,
					     (unsigned long long)size), "keep");
			perf_must(migdev_ctl(md, "dma", "release"), "release");
			t[on][r] = perf_now_us() - t[on][r];
		}
		ratio[r] = t[1][r] / t[0][r];
	}
	perf_report("pin+unpin 4 KiB, tracking off, per page", t[0], runs, size / 4096, "us");
	perf_report("pin+unpin 4 KiB, tracking on, per page", t[1], runs, size / 4096, "us");
	perf_report("pin+unpin 4 KiB, tracking on / off", ratio, runs, 1, "x");
	perf_must(vfio_unmap(md->container, iova, size), "UNMAP");
	munmap(va, size);
}

/* Pages written per debugfs "stride", between givebacks of their memory */
#define STRIDE_BATCH	4096

/*
 * Memory for [@va, @va + @size) that is not reserved up front, in small
 * pages: a write of the device into a huge page would take 2 MiB.
 */
static void small_pages(char *va, uint64_t size)
{
	if (mmap(va, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		perf_must(-1, "mmap");
	perf_must(madvise(va, size, MADV_NOHUGEPAGE), "MADV_NOHUGEPAGE");
}

/*
 * The device writes 8 bytes into each of @npages pages, @stride bytes
 * apart from @iova, whose memory is at @va.  The process memory behind the
 * written pages (and its page tables) is given back every STRIDE_BATCH
 * pages, so that only what tracking holds stays.
 */
static void dirty_scattered(struct migdev *md, char *va, uint64_t iova,
			    uint64_t npages, uint64_t stride, uint32_t seed)
{
	uint64_t i, batch;

	for (i = 0; i < npages; i += batch) {
		batch = npages - i < STRIDE_BATCH ? npages - i : STRIDE_BATCH;
		perf_must(migdev_stride(md, iova + i * stride, batch, stride,
					(uint32_t)(seed + i)), "stride");
		/* give the written pages and their page tables back */
		small_pages(va + i * stride, batch * stride);
	}
}

/*
 * The bitmap of a GET over the mapping must hold exactly the written
 * pages, bit for bit: every page k * @stride (k < @npages) set, nothing
 * else.  Prints the first differences and exits 1 when it does not.
 */
static void check_bitmap(const uint64_t *bitmap, uint64_t nbits,
			 uint64_t npages, uint64_t stride)
{
	uint64_t pg_stride = stride / 4096, k, w, missing = 0, extra = 0;

	for (k = 0; k < npages; k++) {
		uint64_t b = k * pg_stride;

		if (bitmap[b / 64] & (1ULL << (b % 64)))
			continue;
		if (!missing++)
			printf("# %llu pages: page %llu (write %llu) not reported\n",
			       (unsigned long long)npages, (unsigned long long)b,
			       (unsigned long long)k);
	}
	for (w = 0; w < nbits / 64; w++) {
		uint64_t word = bitmap[w];

		while (word) {
			uint64_t b = w * 64 + __builtin_ctzll(word);

			word &= word - 1;
			if (b % pg_stride == 0 && b / pg_stride < npages)
				continue;
			if (!extra++)
				printf("# %llu pages: page %llu reported, not written\n",
				       (unsigned long long)npages,
				       (unsigned long long)b);
		}
	}
	if (missing || extra) {
		printf("FAIL: GET over %llu scattered pages: %llu not reported, %llu not written\n",
		       (unsigned long long)npages, (unsigned long long)missing,
		       (unsigned long long)extra);
		exit(1);
	}
	printf("# GET over %llu scattered pages: the bitmap is what was written\n",
	       (unsigned long long)npages);
}

/*
 * @npages pages spread evenly over a 1 TiB mapping, written by the
 * device: the tracking memory they cost, then GET_BITMAP over the whole
 * mapping (the bitmap zeroed before each call, the same pages written
 * again between calls, neither timed).  The first GET's bitmap is checked
 * bit for bit.
 */
static void memory_case(struct migdev *md, long npages)
{
	uint64_t iova = 1ULL << 44, stride = PERF_SZ_1T / npages & ~4095ULL;
	uint64_t nbits = PERF_SZ_1T / 4096, bytes = nbits / 8, *bitmap;
	double before, kib, t[PERF_MAX_RUNS];
	char name[96];
	char *va;
	int r;

	if (npages < 1 || !stride) {
		printf("-n %ld: from 1 to %llu pages\n", npages,
		       (unsigned long long)nbits);
		exit(1);
	}
	va = perf_anon(PERF_SZ_1T, PROT_READ | PROT_WRITE);
	small_pages(va, PERF_SZ_1T);
	bitmap = perf_anon(bytes, PROT_READ | PROT_WRITE);
	perf_must(vfio_map(md->container, iova, va, PERF_SZ_1T), "MAP 1 TiB");
	perf_must(vfio_dirty(md->container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START");
	/*
	 * What the case before freed shows in the counters up to seconds
	 * later (7.8 KiB at once, 3.6 KiB three seconds later, seen after the
	 * 1,000 pages case): let the baseline settle.
	 */
	sleep(3);
	before = tracking_kib();
	dirty_scattered(md, va, iova, npages, stride, 0);
	kib = tracking_kib() - before;
	snprintf(name, sizeof(name),
		 "tracking memory, %ld scattered pages dirty in 1 TiB", npages);
	perf_report(name, &kib, 1, 1, "KiB");
	for (r = 0; r < runs; r++) {
		if (r)
			dirty_scattered(md, va, iova, npages, stride, r);
		memset(bitmap, 0, bytes);
		t[r] = perf_now_us();
		perf_must(vfio_get_bitmap(md->container, iova, PERF_SZ_1T, 4096,
					  bitmap, bytes), "GET_BITMAP 1 TiB");
		t[r] = perf_now_us() - t[r];
		if (!r)
			check_bitmap(bitmap, nbits, npages, stride);
	}
	snprintf(name, sizeof(name),
		 "get, %ld scattered pages dirty in 1 TiB", npages);
	perf_report(name, t, runs, 1, "us");
	perf_must(vfio_dirty(md->container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), "STOP");
	perf_must(vfio_unmap(md->container, iova, PERF_SZ_1T), "UNMAP 1 TiB");
	munmap(bitmap, bytes);
	munmap(va, PERF_SZ_1T);
}

/* The device reports it wrote all of [iova, iova + size). */
struct report_arg {
	struct migdev *md;
	uint64_t iova, size;
};

static void report_all(void *arg)
{
	struct report_arg *a = arg;

	perf_must(migdev_ctl(a->md, "report", "0x%llx 0x%llx",
			     (unsigned long long)a->iova,
			     (unsigned long long)a->size), "report");
}

/*
 * 1 TiB all dirty: a 1 TiB mapping of unreserved memory in the container
 * of a migdev-precise mdev, which reports before each GET that it wrote
 * all of it (debugfs "report": vfio_mark_dirty(), nothing touched).  6.12
 * has no such device and cannot make 1 TiB dirty in a guest of 3 GiB: an
 * IOMMU-backed mapping is pinned.
 */
static void report_case(void)
{
	uint64_t iova = 1ULL << 42, bytes = vfio_mig_bitmap_bytes(PERF_SZ_1T, 4096);
	struct report_arg arg;
	struct migdev md;
	uint64_t *bitmap;
	void *va;

	if (migdev_open_type(&md, MIGDEV_PRECISE_TYPE, 0, -1)) {
		printf("# SKIP 1 TiB all dirty: no usable %s mdev\n", MIGDEV_PRECISE_TYPE);
		return;
	}
	va = perf_anon(PERF_SZ_1T, PROT_NONE);
	perf_must(vfio_map(md.container, iova, va, PERF_SZ_1T), "MAP 1 TiB");
	perf_must(vfio_dirty(md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START");
	bitmap = perf_anon(bytes, PROT_READ | PROT_WRITE);
	perf_memset_ref(bitmap, bytes, runs,
			"ref: memset of the same bitmap (user space), 1 TiB",
			"ref: u64 stores over the same bitmap (user space), 1 TiB");
	arg = (struct report_arg){ .md = &md, .iova = iova, .size = PERF_SZ_1T };
	perf_dense_get(md.container, iova, PERF_SZ_1T, 4096, bitmap, runs,
		       "get, 1 TiB all dirty", report_all, &arg);
	perf_must(vfio_dirty(md.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), "STOP");
	perf_must(vfio_unmap(md.container, iova, PERF_SZ_1T), "UNMAP 1 TiB");
	munmap(bitmap, bytes);
	munmap(va, PERF_SZ_1T);
	migdev_close(&md);
}

int main(int argc, char **argv)
{
	struct migdev md;
	long n;
	int opt;

	while ((opt = getopt(argc, argv, "r:n:")) != -1) {
		if (opt == 'r')
			runs = atoi(optarg) > PERF_MAX_RUNS ? PERF_MAX_RUNS : atoi(optarg);
		else if (opt == 'n')
			most_pages = atol(optarg);
	}
	if (runs < 3)
		runs = 3;
	if (migdev_open(&md, 0)) {
		printf("# SKIP: no usable %s mdev\n", MIGDEV_TYPE);
		return 4;
	}
	pin_cases(&md);
	enter_cgroup();
	for (n = 1; n <= most_pages; n *= n < 1000 ? 1000 : 10)
		memory_case(&md, n);
	migdev_close(&md);
	leave_cgroup();
	report_case();
	return 0;
}
