// SPDX-License-Identifier: GPL-2.0-only
/*
 * LD_PRELOAD into an unmodified QEMU: count the type1 ioctls it makes and
 * the time they take, measured around the system call with
 * CLOCK_MONOTONIC (vDSO, nothing outside the bracket is counted).  The
 * bench kernels have no tracing, and this measures both kernels of an A/B
 * the same way.  At exit it writes one line per kind to the file named by
 * VFIO_IOCTL_STATS:
 *   <kind> <calls> <nanoseconds> <slowest call in nanoseconds>
 * kinds: map, unmap, unmap-bitmap (UNMAP_DMA with GET_DIRTY_BITMAP),
 * get-bitmap (DIRTY_PAGES GET_BITMAP), dirty-other (START, STOP).
 *
 * Built by tooling/build: gcc -shared -fPIC (see there).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <linux/vfio.h>

enum { MAP, UNMAP, UNMAP_BITMAP, GET_BITMAP, DIRTY_OTHER, KINDS };

static const char *const names[KINDS] = {
	"map", "unmap", "unmap-bitmap", "get-bitmap", "dirty-other",
};

static struct {
	uint64_t calls, ns, max;
} stats[KINDS];

static int (*real_ioctl)(int fd, unsigned long req, ...);

static int kind(unsigned long req, void *arg)
{
	switch (req) {
	case VFIO_IOMMU_MAP_DMA:
		return MAP;
	case VFIO_IOMMU_UNMAP_DMA:
		return ((struct vfio_iommu_type1_dma_unmap *)arg)->flags &
		       VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP ? UNMAP_BITMAP : UNMAP;
	case VFIO_IOMMU_DIRTY_PAGES:
		return ((struct vfio_iommu_type1_dirty_bitmap *)arg)->flags &
		       VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP ? GET_BITMAP : DIRTY_OTHER;
	}
	return -1;
}

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int ioctl(int fd, unsigned long req, ...)
{
	uint64_t t, old;
	va_list ap;
	void *arg;
	int k, ret;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real_ioctl)
		real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	k = kind(req, arg);
	if (k < 0)
		return real_ioctl(fd, req, arg);
	t = now();
	ret = real_ioctl(fd, req, arg);
	t = now() - t;
	__atomic_add_fetch(&stats[k].calls, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&stats[k].ns, t, __ATOMIC_RELAXED);
	old = __atomic_load_n(&stats[k].max, __ATOMIC_RELAXED);
	while (t > old && !__atomic_compare_exchange_n(&stats[k].max, &old, t, 0,
						       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return ret;
}

static void __attribute__((destructor)) report(void)
{
	const char *path = getenv("VFIO_IOCTL_STATS");
	FILE *f;
	int k;

	if (!path || !(f = fopen(path, "w")))
		return;
	for (k = 0; k < KINDS; k++)
		fprintf(f, "%s %llu %llu %llu\n", names[k],
			(unsigned long long)stats[k].calls,
			(unsigned long long)stats[k].ns,
			(unsigned long long)stats[k].max);
	fclose(f);
}
