// SPDX-License-Identifier: GPL-2.0-only
/*
 * The migdev sample driver as a module: unloaded with instances present,
 * loaded again, instances created, used and removed, a few times over; an
 * instance that is open keeps the module in, and so does an open debugfs
 * file whose code is the module's.  The module file comes from $MIGDEV_KO.
 * The instances present at the start are there again at the end, for the
 * tests that run after this one.
 */
#include <sys/syscall.h>

#include "../kselftest_harness.h"
#include <vfio_mig_migdev.h>

#define TYPES	"/sys/class/mdev_bus/migdev/mdev_supported_types/"
#define MAX_UUIDS	8

static int load(const char *ko)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int unload(void)
{
	return syscall(__NR_delete_module, "migdev", O_NONBLOCK) ? -errno : 0;
}

static int create_instance(const char *type, const char *uuid)
{
	char path[256];

	snprintf(path, sizeof(path), TYPES "%s/create", type);
	return sysfs_write(path, uuid);
}

static int remove_instance(const char *uuid)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/remove", uuid);
	return sysfs_write(path, "1");
}

static bool exists(const char *fmt, const char *arg)
{
	char path[256];

	snprintf(path, sizeof(path), fmt, arg);
	return !access(path, F_OK);
}

/* The names of the instances of @type there are now; how many. */
static int instances(const char *type, char uuids[][64])
{
	int n;

	for (n = 0; n < MAX_UUIDS; n++)
		if (vfio_find_mdev_group(type, n, uuids[n], 64) < 0)
			break;
	return n;
}

/*
 * Whether migdev can be unloaded and loaded again from @ko; if not, the
 * test skips with the reason.
 */
static bool module_ready(struct __test_metadata *_metadata, const char *ko)
{
	if (!exists("/sys/module/%s/refcnt", "migdev"))
		SKIP(return false,
		     "migdev-module: migdev is not a loaded module (CONFIG_SAMPLE_VFIO_MDEV_MIGDEV=m)");
	if (!ko || access(ko, R_OK))
		SKIP(return false,
		     "migdev-module: no module file: set MIGDEV_KO");
	return true;
}

/* The instances there were, again, after a reload: 0 or -errno. */
static int recreate(char before[][64], int n, char precise[][64], int np)
{
	int j, ret = 0;

	for (j = 0; j < n && !ret; j++)
		ret = create_instance(MIGDEV_TYPE, before[j]);
	for (j = 0; j < np && !ret; j++)
		ret = create_instance(MIGDEV_PRECISE_TYPE, precise[j]);
	return ret;
}

TEST(load_use_unload)
{
	static const char * const ours[] = {
		"6a0a2a3e-0000-4000-8000-00000000c001",
		"6a0a2a3e-0000-4000-8000-00000000c002",
		"6a0a2a3e-0000-4000-8000-00000000c003",
	};
	char before[MAX_UUIDS][64], precise[MAX_UUIDS][64], buf[64];
	const char *ko = getenv("MIGDEV_KO");
	int i, j, n, np, fd;
	struct migdev md;

	if (!module_ready(_metadata, ko))
		return;
	n = instances(MIGDEV_TYPE, before);
	np = instances(MIGDEV_PRECISE_TYPE, precise);

	for (i = 0; i < 3; i++) {
		/* out with the instances still there: they go with it */
		ASSERT_EQ(0, unload()) {
			ksft_print_msg("iteration %d\n", i);
		}
		EXPECT_FALSE(exists("%s", "/sys/class/mdev_bus/migdev"));
		EXPECT_FALSE(exists("%s", MIGDEV_DEBUGFS));
		EXPECT_FALSE(exists("/sys/module/%s", "migdev"));
		EXPECT_EQ(-ENOENT, unload());
		ASSERT_EQ(0, load(ko));
		EXPECT_EQ(-EEXIST, load(ko));
		EXPECT_TRUE(exists("%s", MIGDEV_DEBUGFS));
		for (j = 0; j < 3; j++) {
			ASSERT_EQ(0, create_instance(MIGDEV_TYPE, ours[j]));
			EXPECT_TRUE(exists(MIGDEV_DEBUGFS "/%s/state", ours[j]));
		}
		/* one used, and open while the module is asked to go */
		ASSERT_EQ(0, migdev_open(&md, 0));
		ASSERT_EQ(0, migdev_ctl(&md, "step", "%d", 5));
		ASSERT_EQ(0, mig_set_state(&md, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
		EXPECT_EQ(-EWOULDBLOCK, unload());
		EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, mig_state(&md));
		migdev_close(&md);
		/* one removed: its debugfs directory goes with it */
		ASSERT_EQ(0, remove_instance(ours[i]));
		EXPECT_FALSE(exists(MIGDEV_DEBUGFS "/%s", ours[i]));
	}
	/* as it was: the module in, the instances there were before */
	ASSERT_EQ(0, unload());
	ASSERT_EQ(0, load(ko));
	EXPECT_EQ(0, recreate(before, n, precise, np));
	fd = open(TYPES MIGDEV_TYPE "/available_instances", O_RDONLY);
	ASSERT_GE(fd, 0);
	memset(buf, 0, sizeof(buf));
	ASSERT_LT(0, read(fd, buf, sizeof(buf) - 1));
	close(fd);
	EXPECT_EQ(8 - n - np, atoi(buf));
}

/*
 * A debugfs file of an instance held open across an unload.  The files
 * whose code is migdev's (dma, step, hold, state, checksum) keep the
 * module in: the unload fails with EWOULDBLOCK (the module is in use),
 * the file still works, and once it is closed the module unloads and
 * loads again.  The files debugfs implements itself (pinned, logged,
 * saved, worker) do not: the module goes, a read of the open file fails
 * with EIO, and closing it is harmless.
 */
TEST(debugfs_file_open_across_unload)
{
	static const struct {
		const char *name;
		int flags;
		const char *write;	/* changes nothing: refused input */
		int err;		/* what the write returns */
	} own[] = {
		{ "dma", O_WRONLY, "nothing", EINVAL },
		{ "step", O_WRONLY, "many", EINVAL },
		{ "hold", O_WRONLY, "maybe", EINVAL },
		{ "state", O_RDONLY },
		{ "checksum", O_RDONLY },
	};
	static const char * const core[] = { "pinned", "logged", "saved", "worker" };
	char before[MAX_UUIDS][64], precise[MAX_UUIDS][64], path[512], buf[64];
	const char *ko = getenv("MIGDEV_KO");
	unsigned int i;
	int n, np, fd;

	if (!module_ready(_metadata, ko))
		return;
	n = instances(MIGDEV_TYPE, before);
	np = instances(MIGDEV_PRECISE_TYPE, precise);
	ASSERT_GT(n, 0);

	for (i = 0; i < ARRAY_SIZE(own); i++) {
		snprintf(path, sizeof(path), MIGDEV_DEBUGFS "/%s/%s", before[0],
			 own[i].name);
		fd = open(path, own[i].flags);
		ASSERT_GE(fd, 0) {
			ksft_print_msg("%s: %s\n", path, strerror(errno));
		}
		EXPECT_EQ(-EWOULDBLOCK, unload()) {
			ksft_print_msg("%s open\n", own[i].name);
		}
		ASSERT_TRUE(exists("/sys/module/%s", "migdev"));
		if (own[i].write) {
			EXPECT_EQ(-1, write(fd, own[i].write, strlen(own[i].write)));
			EXPECT_EQ(own[i].err, errno);
		} else {
			EXPECT_LT(0, read(fd, buf, sizeof(buf)));
		}
		close(fd);
	}
	/* closed: out it goes, and in again */
	ASSERT_EQ(0, unload());
	ASSERT_EQ(0, load(ko));
	ASSERT_EQ(0, recreate(before, n, precise, np));

	for (i = 0; i < ARRAY_SIZE(core); i++) {
		snprintf(path, sizeof(path), MIGDEV_DEBUGFS "/%s/%s", before[0],
			 core[i]);
		fd = open(path, O_RDONLY);
		ASSERT_GE(fd, 0) {
			ksft_print_msg("%s: %s\n", path, strerror(errno));
		}
		ASSERT_EQ(0, unload()) {
			ksft_print_msg("%s open\n", core[i]);
		}
		EXPECT_EQ(-1, read(fd, buf, sizeof(buf)));
		EXPECT_EQ(EIO, errno);
		close(fd);
		ASSERT_EQ(0, load(ko));
		ASSERT_EQ(0, recreate(before, n, precise, np));
	}
}

TEST_HARNESS_MAIN
