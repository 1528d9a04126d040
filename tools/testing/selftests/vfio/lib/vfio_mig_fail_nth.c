// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-task fault injection through /proc/<pid>/task/<tid>/fail-nth: see
 * vfio_mig_fail_nth.h.
 */
#include <vfio_mig_util.h>
#include <vfio_mig_fail_nth.h>

int fail_nth_setup(void)
{
	return sysfs_write("/sys/kernel/debug/failslab/ignore-gfp-wait", "N") ?:
	       sysfs_write("/sys/kernel/debug/failslab/verbose", "0");
}

int fail_nth_arm(int tid, int n)
{
	char path[64], val[16];
	int fd;

	if (!tid)
		tid = syscall(SYS_gettid);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/fail-nth", tid, tid);
	fd = open(path, O_RDWR);
	snprintf(val, sizeof(val), "%d", n);
	if (fd >= 0 && write(fd, val, strlen(val)) != (ssize_t)strlen(val)) {
		close(fd);
		return -1;
	}
	return fd;
}

bool fail_nth_disarm(int fd)
{
	char val[16] = "";
	bool injected = pread(fd, val, sizeof(val) - 1, 0) > 0 && !atoi(val);

	if (write(fd, "0", 1) != 1)
		injected = false;
	close(fd);
	return injected;
}
