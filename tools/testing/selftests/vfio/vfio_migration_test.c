// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VFIO v1 migration region, driven as a VMM drives it, against the
 * migdev sample driver: region discovery, states and transitions, access
 * rules, saving into a buffer and resuming a second instance from it, and
 * removing an instance while it is open.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "migdev.h"

#define MAX_STREAM	(8 << 20)

FIXTURE(mig) {
	struct migdev a;	/* source */
	struct migdev b;	/* destination */
	uint8_t *stream;	/* saved chunks: u64 size, then data */
	size_t len;
	uint8_t *sa, *sb;	/* device states */
};

FIXTURE_SETUP(mig)
{
	int ret = migdev_open(&self->a, 0);

	self->b.fd = -1;
	self->b.group = -1;
	self->b.container = -1;
	self->stream = NULL;
	if (ret == -ENODEV)
		VFIO_SKIP_OR_FAIL("migdev", return,
				  "no " MIGDEV_TYPE " mdev (CONFIG_SAMPLE_VFIO_MDEV_MIGDEV)");
	ASSERT_EQ(0, ret);
	ret = migdev_open(&self->b, 1);
	if (ret == -ENODEV)
		VFIO_SKIP_OR_FAIL("migdev", return, "needs two " MIGDEV_TYPE " mdevs");
	ASSERT_EQ(0, ret);
	self->stream = malloc(MAX_STREAM);
	self->sa = malloc(MIGDEV_STATE_BYTES);
	self->sb = malloc(MIGDEV_STATE_BYTES);
	ASSERT_NE(NULL, self->stream);
	ASSERT_NE(NULL, self->sa);
	ASSERT_NE(NULL, self->sb);
	self->len = 0;
}

FIXTURE_TEARDOWN(mig)
{
	migdev_close(&self->a);
	migdev_close(&self->b);
	free(self->stream);
}

/*
 * Save one chunk as QEMU 7.2 does: data_offset, data_size, the data (from
 * the mmap when @map is set), then pending_bytes, which acknowledges it.
 * Returns the chunk's size, or -errno.
 */
static int64_t save_chunk(struct migdev *md, uint8_t *stream, size_t *len,
			  void *map)
{
	uint64_t off = mig_read64(md, MIG_DATA_OFFSET);
	uint64_t size = mig_read64(md, MIG_DATA_SIZE);

	if (off == ~0ULL || size == ~0ULL || off + size > md->mig_size)
		return -EINVAL;
	if (*len + 8 + size > MAX_STREAM)
		return -ENOSPC;
	memcpy(stream + *len, &size, 8);
	if (map && off >= md->mmap_offset &&
	    off + size <= md->mmap_offset + md->mmap_size)
		memcpy(stream + *len + 8, (char *)map + off - md->mmap_offset, size);
	else if (mig_read(md, off, stream + *len + 8, size))
		return -EIO;
	*len += 8 + size;
	mig_read64(md, MIG_PENDING);
	return size;
}

/* Stop-and-copy: fetch chunks until nothing is pending; 0 or -errno. */
static int save_rest(struct migdev *md, uint8_t *stream, size_t *len)
{
	int64_t n;

	do {
		n = save_chunk(md, stream, len, NULL);
		if (n < 0)
			return n;
	} while (n && mig_read64(md, MIG_PENDING));
	return 0;
}

/* Resume every chunk of @stream into @md. */
static int resume_stream(struct migdev *md, const uint8_t *stream, size_t len)
{
	size_t pos = 0;
	int ret;

	while (pos < len) {
		uint64_t size, off;

		memcpy(&size, stream + pos, 8);
		off = mig_read64(md, MIG_DATA_OFFSET);
		if (off == ~0ULL)
			return -EIO;
		ret = mig_write(md, off, stream + pos + 8, size);
		if (ret)
			return ret;
		ret = mig_write(md, MIG_DATA_SIZE, &size, 8);
		if (ret)
			return ret;
		pos += 8 + size;
	}
	return 0;
}

static void *map_data(struct migdev *md)
{
	void *p = mmap(NULL, md->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       md->fd, md->mig + md->mmap_offset);

	return p == MAP_FAILED ? NULL : p;
}

/* The region as QEMU 7.2 finds it, and the device around it. */
TEST_F(mig, region_and_device_info)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	uint8_t config[256];
	uint32_t reserved = 1;

	ASSERT_EQ(0, ioctl(self->a.fd, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_GE(info.num_regions, VFIO_PCI_NUM_REGIONS + 1);
	EXPECT_GE(info.num_irqs, 3);
	EXPECT_EQ(3, VFIO_REGION_TYPE_MIGRATION);
	EXPECT_EQ(1, VFIO_REGION_SUBTYPE_MIGRATION);
	EXPECT_GT(self->a.mig_size, 4096);
	EXPECT_EQ(4096, self->a.mmap_offset);
	EXPECT_EQ(self->a.mig_size - 4096, self->a.mmap_size);
	ASSERT_EQ(256, pread(self->a.fd, config, 256,
			     (uint64_t)VFIO_PCI_CONFIG_REGION_INDEX << 40));
	EXPECT_EQ(0x1234, config[0] | config[1] << 8);
	EXPECT_EQ(0x1e55, config[2] | config[3] << 8);
	EXPECT_EQ(0, config[0x3d]);	/* no interrupt pin */
	EXPECT_EQ(V1_RUNNING, mig_state(&self->a));
	ASSERT_EQ(0, mig_read(&self->a, MIG_RESERVED, &reserved, 4));
	EXPECT_EQ(0, reserved);
	/* not saving: nothing pending */
	EXPECT_EQ(0, mig_read64(&self->a, MIG_PENDING));
}

/* Every transition a VMM performs; each read back. */
TEST_F(mig, legal_transitions)
{
	static const uint32_t seq[] = {
		V1_STOP, V1_RUNNING,				/* pause, resume */
		V1_SAVING | V1_RUNNING, V1_SAVING, V1_STOP,	/* live */
		V1_RUNNING, V1_SAVING, V1_STOP,			/* save */
		V1_RUNNING, V1_SAVING | V1_RUNNING, V1_RUNNING,	/* cancel */
		V1_SAVING | V1_RUNNING, V1_SAVING, V1_RUNNING,	/* fail late */
		V1_STOP, V1_SAVING, V1_STOP,			/* paused save */
		V1_RUNNING, V1_RESUMING, V1_RUNNING,		/* destination */
		V1_STOP, V1_RESUMING, V1_STOP, V1_RUNNING,
		V1_RUNNING,					/* same again */
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(seq); i++) {
		EXPECT_EQ(0, mig_set_state(&self->a, seq[i])) {
			ksft_print_msg("step %u: to %u\n", i, seq[i]);
		}
		EXPECT_EQ(seq[i], mig_state(&self->a));
	}
	/* reserved bits are kept as written */
	EXPECT_EQ(0, mig_set_state(&self->a, V1_RUNNING | 0x100));
	EXPECT_EQ(V1_RUNNING | 0x100, mig_state(&self->a));
}

/* Invalid states and forbidden transitions: EINVAL, state unchanged. */
TEST_F(mig, illegal_transitions)
{
	static const struct { uint32_t from, to; } bad[] = {
		{ V1_RUNNING, V1_RESUMING | V1_RUNNING },		/* 101b */
		{ V1_RUNNING, V1_RESUMING | V1_SAVING | V1_RUNNING },	/* 111b */
		{ V1_RUNNING, V1_RESUMING | V1_SAVING },		/* error */
		{ V1_STOP, V1_RESUMING | V1_RUNNING },
		{ V1_SAVING | V1_RUNNING, V1_RESUMING },
		{ V1_SAVING, V1_RESUMING },
		{ V1_RESUMING, V1_SAVING },
		{ V1_RESUMING, V1_SAVING | V1_RUNNING },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_EQ(0, mig_set_state(&self->a, V1_RUNNING));
		if (bad[i].from != V1_RUNNING)
			ASSERT_EQ(0, mig_set_state(&self->a, bad[i].from));
		EXPECT_EQ(-EINVAL, mig_set_state(&self->a, bad[i].to)) {
			ksft_print_msg("%u -> %u\n", bad[i].from, bad[i].to);
		}
		EXPECT_EQ(bad[i].from, mig_state(&self->a));
	}
}

/* The header takes natural-width accesses to whole fields only. */
TEST_F(mig, natural_width_only)
{
	uint64_t v = 0;
	uint8_t b[32];

	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_STATE, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_STATE, &v, 2));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_STATE + 1, &v, 1));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_PENDING, &v, 4));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_PENDING + 4, &v, 4));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_DATA_OFFSET + 1, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_DATA_SIZE, &v, 2));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, 0, b, sizeof(b)));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, 32, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, 4088, &v, 8));
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIG_PENDING, &v, 8));
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIG_DATA_OFFSET, &v, 8));
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIG_STATE, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, self->a.mig_size - 4, &v, 8));
	/* data_size is written only when resuming */
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIG_DATA_SIZE, &v, 8));
	/* data_offset means nothing outside saving and resuming */
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIG_DATA_OFFSET, &v, 8));
	EXPECT_EQ(V1_RUNNING, mig_state(&self->a));
}

/*
 * Live migration from A to B: pre-copy rounds (one chunk each, half from
 * the mmap, half trapped) while A keeps changing, stop-and-copy until
 * nothing is pending, then B resumes the stream; B's state equals A's
 * byte for byte.
 */
TEST_F(mig, save_and_resume_byte_for_byte)
{
	void *map = map_data(&self->a);
	unsigned int round = 0;
	int64_t n;

	ASSERT_NE(NULL, map);
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 200));
	ASSERT_EQ(0, mig_set_state(&self->a, V1_SAVING | V1_RUNNING));
	while (mig_read64(&self->a, MIG_PENDING) && round < 64) {
		n = save_chunk(&self->a, self->stream, &self->len,
			       round % 2 ? map : NULL);
		ASSERT_GE(n, 0);
		if (round++ < 8)		/* the device keeps running */
			ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 3));
	}
	EXPECT_GT(round, 4);
	ASSERT_EQ(0, mig_set_state(&self->a, V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	EXPECT_EQ(0, mig_read64(&self->a, MIG_PENDING));
	ASSERT_EQ(0, mig_set_state(&self->a, V1_STOP));
	ksft_print_msg("%u pre-copy rounds, %zu bytes\n", round, self->len);

	ASSERT_EQ(0, migdev_state(&self->a, self->sa));
	ASSERT_EQ(0, migdev_state(&self->b, self->sb));
	ASSERT_NE(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));

	ASSERT_EQ(0, mig_set_state(&self->b, V1_RESUMING));
	ASSERT_EQ(0, resume_stream(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, V1_RUNNING));
	ASSERT_EQ(0, migdev_state(&self->b, self->sb));
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
	munmap(map, self->a.mmap_size);
}

/*
 * Reads without side effects: data_offset and data_size twice give the
 * same chunk until pending_bytes acknowledges it; pending_bytes twice
 * gives the same.  A short read of the data leaves the protocol working.
 */
TEST_F(mig, repeated_and_short_reads)
{
	uint64_t size1, size2, p1, p2;
	uint8_t *c1 = self->stream, *c2 = self->stream + 65536;

	ASSERT_EQ(0, mig_set_state(&self->a, V1_SAVING));
	p1 = mig_read64(&self->a, MIG_PENDING);
	p2 = mig_read64(&self->a, MIG_PENDING);
	EXPECT_EQ(p1, p2);
	EXPECT_GT(p1, 0);
	mig_read64(&self->a, MIG_DATA_OFFSET);
	size1 = mig_read64(&self->a, MIG_DATA_SIZE);
	ASSERT_EQ(0, mig_read(&self->a, 4096, c1, size1));
	mig_read64(&self->a, MIG_DATA_OFFSET);
	size2 = mig_read64(&self->a, MIG_DATA_SIZE);
	ASSERT_EQ(size1, size2);
	ASSERT_EQ(0, mig_read(&self->a, 4096, c2, size2));
	EXPECT_EQ(0, memcmp(c1, c2, size1));
	/* a short read, then the acknowledgment: the stream goes on */
	ASSERT_EQ(0, mig_read(&self->a, 4096, c1, 16));
	EXPECT_EQ(p1 - size1, mig_read64(&self->a, MIG_PENDING));
	EXPECT_EQ(p1 - size1, mig_read64(&self->a, MIG_PENDING));
}

/* A save cancelled half-way, then a whole one: the whole one resumes. */
TEST_F(mig, interrupted_save_then_complete)
{
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 50));
	ASSERT_EQ(0, mig_set_state(&self->a, V1_SAVING | V1_RUNNING));
	ASSERT_GT(save_chunk(&self->a, self->stream, &self->len, NULL), 0);
	ASSERT_EQ(0, mig_set_state(&self->a, V1_RUNNING));	/* cancel */
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 5));
	self->len = 0;
	ASSERT_EQ(0, mig_set_state(&self->a, V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->a, V1_STOP));

	/* resuming can be interrupted too, and started again */
	ASSERT_EQ(0, mig_set_state(&self->b, V1_RESUMING));
	ASSERT_EQ(0, mig_set_state(&self->b, V1_STOP));
	ASSERT_EQ(0, mig_set_state(&self->b, V1_RESUMING));
	ASSERT_EQ(0, resume_stream(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, V1_RUNNING));
	ASSERT_EQ(0, migdev_state(&self->a, self->sa));
	ASSERT_EQ(0, migdev_state(&self->b, self->sb));
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
}

/* Bad data puts the device in the error state; only reset leaves it. */
TEST_F(mig, error_state_and_reset)
{
	uint8_t junk[64] = { 0x7f };
	uint64_t size = sizeof(junk);

	ASSERT_EQ(0, mig_set_state(&self->b, V1_RESUMING));
	ASSERT_EQ(0, mig_write(&self->b, mig_read64(&self->b, MIG_DATA_OFFSET),
			       junk, size));
	EXPECT_EQ(-EINVAL, mig_write(&self->b, MIG_DATA_SIZE, &size, 8));
	EXPECT_EQ(V1_SAVING | V1_RESUMING, mig_state(&self->b));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, V1_RUNNING));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, V1_STOP));
	EXPECT_EQ(V1_SAVING | V1_RESUMING, mig_state(&self->b));
	ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(V1_RUNNING, mig_state(&self->b));
	/* oversized data_size: EINVAL before anything is consumed */
	ASSERT_EQ(0, mig_set_state(&self->b, V1_RESUMING));
	size = self->b.mig_size;
	EXPECT_EQ(-EINVAL, mig_write(&self->b, MIG_DATA_SIZE, &size, 8));
	EXPECT_EQ(V1_RESUMING, mig_state(&self->b));
}

/* A stream whose end record does not match what was resumed: EIO, error. */
TEST_F(mig, resume_checks_the_checksum)
{
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 9));
	ASSERT_EQ(0, mig_set_state(&self->a, V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	/* the end record is the stream's last 8 bytes: flip its checksum */
	self->stream[self->len - 1] ^= 0x01;
	ASSERT_EQ(0, mig_set_state(&self->b, V1_RESUMING));
	EXPECT_EQ(-EIO, resume_stream(&self->b, self->stream, self->len));
	EXPECT_EQ(V1_SAVING | V1_RESUMING, mig_state(&self->b));
}

/*
 * An instance removed while it is open, with a page pinned: the removal
 * waits for the user to close it, then completes.
 */
TEST(removal_while_open)
{
	const char *types = "/sys/class/mdev_bus/migdev/mdev_supported_types/";
	const char *uuid = "6a0a2a3e-0000-4000-8000-00000000b0ff";
	char path[512];
	struct migdev md;
	void *page;
	int fd, status, nth;
	pid_t pid;

	snprintf(path, sizeof(path), "%s" MIGDEV_TYPE "/create", types);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		VFIO_SKIP_OR_FAIL("migdev", return,
				  "no migdev parent (CONFIG_SAMPLE_VFIO_MDEV_MIGDEV)");
	ASSERT_EQ(strlen(uuid), write(fd, uuid, strlen(uuid)));
	close(fd);
	for (nth = 0; ; nth++) {
		ASSERT_EQ(0, migdev_open(&md, nth));
		if (!strcmp(md.uuid, uuid))
			break;
		migdev_close(&md);
	}
	page = mmap(NULL, PAGE_4K, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, vfio_map(md.container, 0x100000, page, PAGE_4K));
	ASSERT_EQ(0, migdev_ctl(&md, "dma", "keep 0x100000 1 0"));
	EXPECT_EQ(1, migdev_pinned(&md));

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* the parent's descriptors keep the device open, not ours */
		close(md.fd);
		close(md.group);
		close(md.container);
		snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/remove", uuid);
		fd = open(path, O_WRONLY);
		_exit(fd < 0 || write(fd, "1", 1) != 1);
	}
	sleep(1);
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG));	/* still waiting */
	migdev_close(&md);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", uuid);
	EXPECT_EQ(-1, access(path, F_OK));
	munmap(page, PAGE_4K);
}

TEST_HARNESS_MAIN
