// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VFIO v1 migration region, driven as a VMM drives it, against the
 * migdev sample driver: region discovery, states and transitions, access
 * rules, saving into a buffer and resuming a second instance from it, and
 * removing an instance while it is open.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include <vfio_mig_fail_nth.h>
#include <vfio_mig_migdev.h>

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
		SKIP(return,
		     "migdev: no " MIGDEV_TYPE " mdev (CONFIG_SAMPLE_VFIO_MDEV_MIGDEV)");
	ASSERT_EQ(0, ret);
	ret = migdev_open(&self->b, 1);
	if (ret == -ENODEV)
		SKIP(return, "migdev: needs two " MIGDEV_TYPE " mdevs");
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

/* Save one chunk into a stream of up to MAX_STREAM bytes (see the lib). */
static int64_t save_chunk(struct migdev *md, uint8_t *stream, size_t *len,
			  void *map)
{
	return migdev_save_chunk(md, stream, len, MAX_STREAM, map);
}

static int save_rest(struct migdev *md, uint8_t *stream, size_t *len)
{
	return migdev_save_rest(md, stream, len, MAX_STREAM);
}

static void *map_data(struct migdev *md)
{
	void *p = mmap(NULL, md->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       md->fd, md->mig + md->mmap_offset);

	return p == MAP_FAILED ? NULL : p;
}

/* Both devices hold the same state: registers and internal state. */
#define EXPECT_SAME_STATE() do {					\
	ASSERT_EQ(0, migdev_state(&self->a, self->sa));			\
	ASSERT_EQ(0, migdev_state(&self->b, self->sb));			\
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));	\
} while (0)

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
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
	ASSERT_EQ(0, mig_read(&self->a, MIGDEV_HDR_RESERVED, &reserved, 4));
	EXPECT_EQ(0, reserved);
	/* not saving: nothing pending */
	EXPECT_EQ(0, mig_read64(&self->a, MIGDEV_HDR_PENDING));
}

/*
 * What migdev does not have: no interrupt vector behind INTx, no error or
 * request interrupt, no vfio-pci ioctl beyond the basic ones.
 */
TEST_F(mig, irqs_and_unknown_ioctls)
{
	struct vfio_irq_info irq = {
		.argsz = sizeof(irq), .index = VFIO_PCI_INTX_IRQ_INDEX,
	};
	struct vfio_device_ioeventfd ioeventfd = { .argsz = sizeof(ioeventfd) };

	ASSERT_EQ(0, ioctl(self->a.fd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	EXPECT_EQ(VFIO_IRQ_INFO_EVENTFD, irq.flags);
	EXPECT_EQ(0, irq.count);
	irq.index = VFIO_PCI_ERR_IRQ_INDEX;
	EXPECT_EQ(-1, ioctl(self->a.fd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->a.fd, VFIO_DEVICE_IOEVENTFD, &ioeventfd));
	EXPECT_EQ(ENOTTY, errno);
}

/*
 * User memory that faults: a region write from it and region info whose
 * capability chain cannot be written are EFAULT, and change nothing.
 */
TEST_F(mig, user_memory_faults)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct vfio_region_info *ri;
	uint8_t *mem;

	mem = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, mprotect(mem + pg, pg, PROT_NONE));
	/* a bulk write (bounced) from memory that is not there */
	EXPECT_EQ(-1, pwrite(self->a.fd, mem + pg, 16, self->a.mig + self->a.mmap_offset));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
	/* the info fits, its capabilities fall on the page that is not there */
	ri = (struct vfio_region_info *)(mem + pg - sizeof(*ri));
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri) + 256;
	ri->index = self->a.mig >> 40;
	EXPECT_EQ(-1, ioctl(self->a.fd, VFIO_DEVICE_GET_REGION_INFO, ri));
	EXPECT_EQ(EFAULT, errno);
	/* the same with room for them: the migration region and its caps */
	ASSERT_EQ(0, mprotect(mem + pg, pg, PROT_READ | PROT_WRITE));
	ri->argsz = sizeof(*ri) + 256;
	ASSERT_EQ(0, ioctl(self->a.fd, VFIO_DEVICE_GET_REGION_INFO, ri));
	EXPECT_EQ(self->a.mig_size, ri->size);
	EXPECT_TRUE(ri->flags & VFIO_REGION_INFO_FLAG_CAPS);
	munmap(mem, 2 * pg);
}

/* Every transition a VMM performs; each read back. */
TEST_F(mig, legal_transitions)
{
	static const uint32_t seq[] = {
		/* pause, resume */
		MIGDEV_V1_STOP, MIGDEV_V1_RUNNING,
		/* live */
		MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING, MIGDEV_V1_STOP,
		/* save */
		MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING, MIGDEV_V1_STOP,
		/* cancel */
		MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, MIGDEV_V1_RUNNING,
		/* fail late */
		MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING, MIGDEV_V1_RUNNING,
		/* paused save */
		MIGDEV_V1_STOP, MIGDEV_V1_SAVING, MIGDEV_V1_STOP,
		/* destination */
		MIGDEV_V1_RUNNING, MIGDEV_V1_RESUMING, MIGDEV_V1_RUNNING,
		MIGDEV_V1_STOP, MIGDEV_V1_RESUMING, MIGDEV_V1_STOP, MIGDEV_V1_RUNNING,
		MIGDEV_V1_RUNNING,					/* same again */
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(seq); i++) {
		EXPECT_EQ(0, mig_set_state(&self->a, seq[i])) {
			ksft_print_msg("step %u: to %u\n", i, seq[i]);
		}
		EXPECT_EQ(seq[i], mig_state(&self->a));
	}
	/* a reserved bit set: refused, nothing changes (reserved_state_bits) */
	EXPECT_EQ(-EINVAL, mig_set_state(&self->a, MIGDEV_V1_STOP | 0x100));
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
}

/*
 * Bits 3-31 of device_state are reserved: a write that sets any of them
 * fails with EINVAL and changes nothing, and they read as 0, so that a
 * user's read-modify-write of the state keeps working.
 */
TEST_F(mig, reserved_state_bits)
{
	uint64_t pending;
	uint32_t v;
	int bit;

	for (bit = 3; bit < 32; bit++) {
		EXPECT_EQ(-EINVAL, mig_set_state(&self->a, MIGDEV_V1_STOP | 1U << bit)) {
			ksft_print_msg("bit %d\n", bit);
		}
		EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
	}
	/* nothing of a refused write happens: the stream does not restart */
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 10));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	ASSERT_GT(save_chunk(&self->a, self->stream, &self->len, NULL), 0);
	pending = mig_read64(&self->a, MIGDEV_HDR_PENDING);
	EXPECT_EQ(-EINVAL, mig_set_state(&self->a, MIGDEV_V1_SAVING | 0x80000000U));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, mig_state(&self->a));
	EXPECT_EQ(pending, mig_read64(&self->a, MIGDEV_HDR_PENDING));
	/* QEMU's read-modify-write: keep the other bits, change the low ones */
	v = mig_state(&self->a);
	EXPECT_EQ(0, v & ~7U);
	EXPECT_EQ(0, mig_set_state(&self->a, (v & ~7U) | MIGDEV_V1_SAVING));
	EXPECT_EQ(MIGDEV_V1_SAVING, mig_state(&self->a));
	v = mig_state(&self->a);
	EXPECT_EQ(0, mig_set_state(&self->a, (v & ~7U) | MIGDEV_V1_RUNNING));
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
}

/* Invalid states and forbidden transitions: EINVAL, state unchanged. */
TEST_F(mig, illegal_transitions)
{
	static const struct { uint32_t from, to; } bad[] = {
		/* 101b */
		{ MIGDEV_V1_RUNNING, MIGDEV_V1_RESUMING | MIGDEV_V1_RUNNING },
		/* 111b */
		{ MIGDEV_V1_RUNNING,
		  MIGDEV_V1_RESUMING | MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING },
		/* error */
		{ MIGDEV_V1_RUNNING, MIGDEV_V1_RESUMING | MIGDEV_V1_SAVING },
		{ MIGDEV_V1_STOP, MIGDEV_V1_RESUMING | MIGDEV_V1_RUNNING },
		{ MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, MIGDEV_V1_RESUMING },
		{ MIGDEV_V1_SAVING, MIGDEV_V1_RESUMING },
		{ MIGDEV_V1_RESUMING, MIGDEV_V1_SAVING },
		{ MIGDEV_V1_RESUMING, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_RUNNING));
		if (bad[i].from != MIGDEV_V1_RUNNING)
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

	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_STATE, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_STATE, &v, 2));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_STATE + 1, &v, 1));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_PENDING, &v, 4));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_PENDING + 4, &v, 4));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_DATA_OFFSET + 1, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_DATA_SIZE, &v, 2));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, 0, b, sizeof(b)));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, 32, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, 4088, &v, 8));
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIGDEV_HDR_PENDING, &v, 8));
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIGDEV_HDR_DATA_OFFSET, &v, 8));
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIGDEV_HDR_STATE, &v, 8));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, self->a.mig_size - 4, &v, 8));
	/* data_size is written only when resuming */
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIGDEV_HDR_DATA_SIZE, &v, 8));
	/* data_offset means nothing outside saving and resuming */
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_DATA_OFFSET, &v, 8));
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
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
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	while (mig_read64(&self->a, MIGDEV_HDR_PENDING) && round < 64) {
		n = save_chunk(&self->a, self->stream, &self->len,
			       round % 2 ? map : NULL);
		ASSERT_GE(n, 0);
		if (round++ < 8)		/* the device keeps running */
			ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 3));
	}
	EXPECT_GT(round, 4);
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	EXPECT_EQ(0, mig_read64(&self->a, MIGDEV_HDR_PENDING));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));
	ksft_print_msg("%u pre-copy rounds, %zu bytes\n", round, self->len);

	ASSERT_EQ(0, migdev_state(&self->a, self->sa));
	ASSERT_EQ(0, migdev_state(&self->b, self->sb));
	ASSERT_NE(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));

	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	ASSERT_EQ(0, migdev_state(&self->b, self->sb));
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
	munmap(map, self->a.mmap_size);
}

/*
 * A stream whose first record, a block, names the block past the last
 * (migdev's records: le32 type, le32 arg; type 1 is a block of
 * MIGDEV_BLOCK bytes numbered by arg, bit 31 starts a stream): EINVAL, the
 * error state, and the destination's state is untouched.
 */
TEST_F(mig, forged_block_index_refused)
{
	uint32_t rec[2];

	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));
	memcpy(rec, self->stream + 8, sizeof(rec));
	ASSERT_EQ((1U << 31) | 1, rec[0]);	/* the first record, a block */
	ASSERT_GT(MIGDEV_BLOCKS, rec[1]);
	rec[1] = MIGDEV_BLOCKS;
	memcpy(self->stream + 8, rec, sizeof(rec));

	ASSERT_EQ(0, migdev_state(&self->b, self->sb));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	EXPECT_EQ(-EINVAL, migdev_resume(&self->b, self->stream, self->len));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));
	ASSERT_EQ(0, migdev_state(&self->b, self->sa));
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
	ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
}

/*
 * pending_bytes is what the stream still holds: with the device idle, the
 * chunks read until it reaches 0 add up to it, in pre-copy (every block)
 * and in stop-and-copy (the registers and the end record).
 */
TEST_F(mig, pending_bytes_counts_the_whole_stream)
{
	static const uint32_t states[] = {
		MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING,
	};
	uint64_t pending, total;
	unsigned int i, chunks;
	int64_t n;

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		ASSERT_EQ(0, mig_set_state(&self->a, states[i]));
		pending = mig_read64(&self->a, MIGDEV_HDR_PENDING);
		EXPECT_LT(0, pending);
		total = 0;
		for (chunks = 0; mig_read64(&self->a, MIGDEV_HDR_PENDING) && chunks < 1024;
		     chunks++) {
			n = save_chunk(&self->a, self->stream, &self->len, NULL);
			ASSERT_LT(0, n);
			total += n;
		}
		EXPECT_EQ(pending, total) {
			ksft_print_msg("state %u: %u chunks\n", states[i], chunks);
		}
	}
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));
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

	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	p1 = mig_read64(&self->a, MIGDEV_HDR_PENDING);
	p2 = mig_read64(&self->a, MIGDEV_HDR_PENDING);
	EXPECT_EQ(p1, p2);
	EXPECT_GT(p1, 0);
	/* reading data_offset makes a chunk: a non-empty one, in the section */
	EXPECT_EQ(4096, mig_read64(&self->a, MIGDEV_HDR_DATA_OFFSET));
	size1 = mig_read64(&self->a, MIGDEV_HDR_DATA_SIZE);
	ASSERT_GT(size1, 0);
	ASSERT_LE(size1, self->a.mmap_size);
	ASSERT_LE(size1, p1);
	ASSERT_EQ(0, mig_read(&self->a, 4096, c1, size1));
	EXPECT_EQ(4096, mig_read64(&self->a, MIGDEV_HDR_DATA_OFFSET));
	size2 = mig_read64(&self->a, MIGDEV_HDR_DATA_SIZE);
	ASSERT_EQ(size1, size2);
	ASSERT_EQ(0, mig_read(&self->a, 4096, c2, size2));
	EXPECT_EQ(0, memcmp(c1, c2, size1));
	/* a short read, then the acknowledgment: the stream goes on */
	ASSERT_EQ(0, mig_read(&self->a, 4096, c1, 16));
	EXPECT_EQ(p1 - size1, mig_read64(&self->a, MIGDEV_HDR_PENDING));
	EXPECT_EQ(p1 - size1, mig_read64(&self->a, MIGDEV_HDR_PENDING));
}

/* A save cancelled half-way, then a whole one: the whole one resumes. */
TEST_F(mig, interrupted_save_then_complete)
{
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 50));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	ASSERT_GT(save_chunk(&self->a, self->stream, &self->len, NULL), 0);
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_RUNNING));	/* cancel */
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 5));
	self->len = 0;
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));

	/* resuming can be interrupted too, and started again */
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_STOP));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
}

/* Bad data puts the device in the error state; only reset leaves it. */
TEST_F(mig, error_state_and_reset)
{
	uint8_t junk[64] = { 0x7f };
	uint64_t size = sizeof(junk);

	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, mig_write(&self->b, mig_read64(&self->b, MIGDEV_HDR_DATA_OFFSET),
			       junk, size));
	EXPECT_EQ(-EINVAL, mig_write(&self->b, MIGDEV_HDR_DATA_SIZE, &size, 8));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_STOP));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_SAVING));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));
	ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->b));
	/* oversized data_size: EINVAL before anything is consumed */
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	size = self->b.mig_size;
	EXPECT_EQ(-EINVAL, mig_write(&self->b, MIGDEV_HDR_DATA_SIZE, &size, 8));
	EXPECT_EQ(MIGDEV_V1_RESUMING, mig_state(&self->b));
}

/* A stream whose end record does not match what was resumed: EIO, error. */
TEST_F(mig, resume_checks_the_checksum)
{
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 9));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	/* the end record is the stream's last 8 bytes: flip its checksum */
	self->stream[self->len - 1] ^= 0x01;
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	EXPECT_EQ(-EIO, migdev_resume(&self->b, self->stream, self->len));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));
}

/*
 * Stop-and-copy back to pre-copy (010b -> 011b) would continue a stream
 * whose registers were sent already: refused, the state and the stream
 * unchanged, and the stream still resumes byte for byte.
 */
TEST_F(mig, stop_and_copy_back_to_pre_copy_refused)
{
	uint64_t pending;

	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 20));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	ASSERT_GT(save_chunk(&self->a, self->stream, &self->len, NULL), 0);
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	/* part of the rest, then try to go back */
	ASSERT_GT(save_chunk(&self->a, self->stream, &self->len, NULL), 0);
	pending = mig_read64(&self->a, MIGDEV_HDR_PENDING);
	EXPECT_EQ(-EINVAL, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	EXPECT_EQ(MIGDEV_V1_SAVING, mig_state(&self->a));
	EXPECT_EQ(pending, mig_read64(&self->a, MIGDEV_HDR_PENDING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	/* the whole stream sent: still refused */
	EXPECT_EQ(-EINVAL, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	EXPECT_EQ(MIGDEV_V1_SAVING, mig_state(&self->a));
	EXPECT_EQ(0, mig_read64(&self->a, MIGDEV_HDR_PENDING));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));

	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
}

/* Offset of the last chunk of a saved stream. */
static size_t last_chunk(const uint8_t *stream, size_t len)
{
	size_t pos = 0, last = 0;
	uint64_t size;

	while (pos < len) {
		last = pos;
		memcpy(&size, stream + pos, 8);
		pos += 8 + size;
	}
	return last;
}

/*
 * A resume that did not receive a whole stream (no end record) must not
 * leave resuming as if it had: the transition fails with EIO and the
 * device is in the error state.  After the end record, a chunk that does
 * not start a new stream is refused (EINVAL, the error state); one that
 * does starts it, and leaving before its end is EIO again.
 */
TEST_F(mig, truncated_resume_fails)
{
	uint64_t size, size2;
	size_t last;

	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 30));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));
	last = last_chunk(self->stream, self->len);
	memcpy(&size, self->stream + last, 8);
	ASSERT_GE(size, 8);

	/* all but the end record (the stream's last 8 bytes), then running */
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	size -= 8;
	memcpy(self->stream + last, &size, 8);
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len - 8));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	size += 8;
	memcpy(self->stream + last, &size, 8);

	/* the first chunk only, then stopped */
	ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	memcpy(&size, self->stream, 8);
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, 8 + size));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_STOP));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));

	/* the whole stream, then its second chunk again: EINVAL, error state */
	ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	memcpy(&size, self->stream, 8);
	ASSERT_LT(8 + size, last);	/* the second chunk is not the last */
	memcpy(&size2, self->stream + 8 + size, 8);
	EXPECT_EQ(-EINVAL, migdev_resume(&self->b, self->stream + 8 + size,
					 8 + size2));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));

	/* the whole stream, then its first chunk again: a new stream, cut */
	ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	EXPECT_EQ(0, migdev_resume(&self->b, self->stream, 8 + size));
	EXPECT_EQ(-EIO, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->b));

	/* and the whole stream alone resumes */
	ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
}

/*
 * QEMU 7.2's set_state(): read device_state, keep the bits of @mask, set
 * those of @value, refuse an invalid result, write it.
 */
static int qemu_set_state(struct migdev *md, uint32_t mask, uint32_t value)
{
	uint32_t state = mig_state(md);

	if (state == ~0U)
		return -EIO;
	state = (state & mask) | value;
	if (!VFIO_DEVICE_STATE_VALID(state))
		return -EINVAL;
	return mig_set_state(md, state);
}

/*
 * One chunk from @src to @dst as QEMU 7.2 moves it: vfio_save_buffer() on
 * the source (data_offset, data_size, the data), vfio_v1_load_buffer() on
 * the destination (data_offset, the data, data_size) when it is not empty.
 * The chunk's size, or -errno.
 */
static int64_t relay_chunk(struct migdev *src, struct migdev *dst, uint8_t *buf)
{
	uint64_t off = mig_read64(src, MIGDEV_HDR_DATA_OFFSET);
	uint64_t size = mig_read64(src, MIGDEV_HDR_DATA_SIZE);
	int ret;

	if (off == ~0ULL || size == ~0ULL || off + size > src->mig_size)
		return -EINVAL;
	if (size && mig_read(src, off, buf, size))
		return -EIO;
	if (!size)
		return 0;
	off = mig_read64(dst, MIGDEV_HDR_DATA_OFFSET);
	if (off == ~0ULL || off + size > dst->mig_size)
		return -EINVAL;
	ret = mig_write(dst, off, buf, size) ?: mig_write(dst, MIGDEV_HDR_DATA_SIZE, &size, 8);
	return ret ?: (int64_t)size;
}

#define KEEP_ALL	(~0U)
#define V1_MASK		VFIO_DEVICE_STATE_MASK

/*
 * The migration of a VM that is paused when it starts and continued
 * before the switchover, exactly as QEMU 7.2 drives its devices
 * (hw/vfio/migration.c): the pause 001b -> 000b; on the destination,
 * load setup -> 100b; save setup keeps the state and adds SAVING: 010b,
 * stop-and-copy; pre-copy iterations move @first chunks of that stream
 * (all of them, its registers and end record included, when @first is
 * KEEP_ALL); "cont" -> 001b, the device runs and changes; the iterations
 * find nothing pending; the switchover stops the VM (000b) and completes
 * pre-copy: 010b, a second stream, drained, then 000b.  The destination
 * then runs (001b); the callers check that it holds the source's state.
 */
static void paused_then_continued(struct __test_metadata *_metadata,
				  struct migdev *a, struct migdev *b,
				  uint8_t *buf, unsigned int first)
{
	unsigned int chunks = 0, rounds;
	uint64_t pending;
	int64_t n;

	ASSERT_EQ(0, migdev_ctl(a, "step", "%d", 30));
	ASSERT_EQ(0, bar0_write(a, MIGDEV_REG_SCRATCH, 0x1111, 8));
	/* "stop": vfio_vmstate_change(running = false) */
	ASSERT_EQ(0, qemu_set_state(a, ~MIGDEV_V1_RUNNING, 0));
	ASSERT_EQ(MIGDEV_V1_STOP, mig_state(a));
	/* the destination's load setup */
	ASSERT_EQ(0, qemu_set_state(b, ~V1_MASK, MIGDEV_V1_RESUMING));
	/* save setup: the VM is paused, so stop-and-copy */
	ASSERT_EQ(0, qemu_set_state(a, V1_MASK, MIGDEV_V1_SAVING));
	ASSERT_EQ(MIGDEV_V1_SAVING, mig_state(a));
	/* pre-copy iterations: state_pending, then save_iterate */
	while ((pending = mig_read64(a, MIGDEV_HDR_PENDING)) && chunks < first) {
		n = relay_chunk(a, b, buf);
		ASSERT_GT(n, 0) {
			ksft_print_msg("first stream, chunk %u: %lld\n", chunks,
				       (long long)n);
		}
		chunks++;
	}
	if (first == KEEP_ALL)
		ASSERT_EQ(0, pending);	/* registers and end record sent */
	ksft_print_msg("first stream: %u chunks relayed, %llu bytes left\n",
		       chunks, (unsigned long long)pending);

	/* "cont": vfio_vmstate_change(running = true) */
	ASSERT_EQ(0, qemu_set_state(a, ~V1_MASK, MIGDEV_V1_RUNNING));
	ASSERT_EQ(MIGDEV_V1_RUNNING, mig_state(a));
	ASSERT_EQ(0, migdev_ctl(a, "step", "%d", 5));
	ASSERT_EQ(0, bar0_write(a, MIGDEV_REG_SCRATCH, 0x2222, 8));
	for (rounds = 0; rounds < 3; rounds++)	/* not saving: nothing */
		EXPECT_EQ(0, mig_read64(a, MIGDEV_HDR_PENDING));

	/* switchover: vm_stop(), then save_live_complete_precopy */
	ASSERT_EQ(0, qemu_set_state(a, ~MIGDEV_V1_RUNNING, 0));
	ASSERT_EQ(0, qemu_set_state(a, ~MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING));
	ASSERT_EQ(MIGDEV_V1_SAVING, mig_state(a));
	chunks = 0;
	for (pending = mig_read64(a, MIGDEV_HDR_PENDING); pending;
	     pending = mig_read64(a, MIGDEV_HDR_PENDING)) {
		n = relay_chunk(a, b, buf);
		ASSERT_GE(n, 0) {
			ksft_print_msg("second stream, chunk %u: %lld, destination state %u\n",
				       chunks, (long long)n, mig_state(b));
		}
		if (!n)
			break;
		chunks++;
	}
	ASSERT_GT(chunks, 0);
	ASSERT_EQ(0, qemu_set_state(a, ~MIGDEV_V1_SAVING, 0));
	ksft_print_msg("second stream: %u chunks relayed\n", chunks);

	/* the destination VM starts */
	ASSERT_EQ(0, qemu_set_state(b, ~V1_MASK, MIGDEV_V1_RUNNING));
}

/*
 * The first stream whole, end record included, then a second: the
 * destination starts over at the second stream's first record.
 */
TEST_F(mig, paused_vm_continued_after_its_stream_ended)
{
	paused_then_continued(_metadata, &self->a, &self->b, self->stream,
			      KEEP_ALL);
	EXPECT_SAME_STATE();
}

/* The first stream cut short by "cont", then a second, whole. */
TEST_F(mig, paused_vm_continued_mid_stream)
{
	paused_then_continued(_metadata, &self->a, &self->b, self->stream, 1);
	EXPECT_SAME_STATE();
}

/*
 * The device state does not change while the device is not running:
 * debugfs "step" fails with EBUSY in stopped, stop-and-copy, resuming and
 * the error state, and the state reads the same byte for byte; in running
 * and pre-copy it changes the state.
 */
TEST_F(mig, step_refused_unless_running)
{
	static const uint32_t frozen[] = { MIGDEV_V1_STOP, MIGDEV_V1_SAVING, MIGDEV_V1_RESUMING };
	uint8_t junk[16] = { 0x7f };
	uint64_t size = sizeof(junk), pending;
	uint32_t count;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(frozen); i++) {
		ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_RUNNING));
		ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 3));
		ASSERT_EQ(0, mig_set_state(&self->a, frozen[i]));
		pending = mig_read64(&self->a, MIGDEV_HDR_PENDING);
		count = bar0_read32(&self->a, MIGDEV_REG_DMA_COUNT);
		ASSERT_EQ(0, migdev_state(&self->a, self->sa));
		EXPECT_EQ(-EBUSY, migdev_ctl(&self->a, "step", "%d", 5)) {
			ksft_print_msg("in state %u\n", frozen[i]);
		}
		EXPECT_EQ(-EBUSY, migdev_ctl(&self->a, "step", "%d", 0));
		ASSERT_EQ(0, migdev_state(&self->a, self->sb));
		EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES)) {
			ksft_print_msg("state %u: the device state changed\n", frozen[i]);
		}
		EXPECT_EQ(count, bar0_read32(&self->a, MIGDEV_REG_DMA_COUNT));
		EXPECT_EQ(pending, mig_read64(&self->a, MIGDEV_HDR_PENDING));
		EXPECT_EQ(frozen[i], mig_state(&self->a));
	}
	/* the error state */
	ASSERT_EQ(0, mig_write(&self->a, mig_read64(&self->a, MIGDEV_HDR_DATA_OFFSET),
			       junk, size));
	ASSERT_EQ(-EINVAL, mig_write(&self->a, MIGDEV_HDR_DATA_SIZE, &size, 8));
	ASSERT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->a));
	ASSERT_EQ(0, migdev_state(&self->a, self->sa));
	EXPECT_EQ(-EBUSY, migdev_ctl(&self->a, "step", "%d", 5));
	ASSERT_EQ(0, migdev_state(&self->a, self->sb));
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
	/* running and pre-copy: the state changes, one command more */
	ASSERT_EQ(0, ioctl(self->a.fd, VFIO_DEVICE_RESET));
	for (i = 0; i < 2; i++) {
		if (i)
			ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
		count = bar0_read32(&self->a, MIGDEV_REG_DMA_COUNT);
		ASSERT_EQ(0, migdev_state(&self->a, self->sa));
		EXPECT_EQ(0, migdev_ctl(&self->a, "step", "%d", 5));
		ASSERT_EQ(0, migdev_state(&self->a, self->sb));
		EXPECT_NE(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
		EXPECT_EQ(count + 1, bar0_read32(&self->a, MIGDEV_REG_DMA_COUNT));
	}
}

#define LATCH_IOVA	0x4000000ULL
#define LATCH_PAGES	4

/*
 * A BAR0 command is what the registers held when MIGDEV_REG_DMA_CMD was written:
 * the guest programs the next address, length and seed while the command
 * waits (debugfs "hold" keeps the engine from starting it), and a second
 * doorbell meanwhile is refused (MIGDEV_REG_DMA_STATUS -EBUSY) without replacing
 * it.  Then exactly the first command's bytes are written, nothing else.
 * Leaving running lets a held command go: it completes before the state
 * write returns.
 */
TEST_F(mig, bar0_command_latched_at_the_doorbell)
{
	const size_t size = LATCH_PAGES * VFIO_MIG_PAGE_4K;
	const uint64_t at = 0x10, len = 0x1800;		/* straddles a page */
	const uint32_t seed = 0x1000;
	struct migdev *md = &self->a;
	uint32_t count, bad = 0;
	uint8_t *mem;
	size_t i;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	memset(mem, 0, size);
	ASSERT_EQ(0, vfio_map(md->container, LATCH_IOVA, mem, size));

	count = bar0_read32(md, MIGDEV_REG_DMA_COUNT);
	ASSERT_EQ(0, migdev_ctl(md, "hold", "1"));
	ASSERT_EQ(0, bar0_dma(md, MIGDEV_CMD_WRITE_RW, LATCH_IOVA + at, len, seed));
	/* the next command, programmed while this one waits */
	ASSERT_EQ(0, bar0_write(md, MIGDEV_REG_DMA_ADDR, LATCH_IOVA + 3 * VFIO_MIG_PAGE_4K + 0x20,
				8));
	ASSERT_EQ(0, bar0_write(md, MIGDEV_REG_DMA_LEN, 0x200, 4));
	ASSERT_EQ(0, bar0_write(md, MIGDEV_REG_DMA_SEED, 0x5000, 4));
	ASSERT_EQ(0, bar0_write(md, MIGDEV_REG_DMA_CMD, MIGDEV_CMD_WRITE_PIN, 4));
	EXPECT_EQ((uint32_t)-EBUSY, bar0_read32(md, MIGDEV_REG_DMA_STATUS));
	EXPECT_EQ(count, bar0_read32(md, MIGDEV_REG_DMA_COUNT));
	for (i = 0; i < size; i++)
		bad += mem[i] != 0;
	EXPECT_EQ(0, bad);		/* nothing ran yet */

	ASSERT_EQ(0, migdev_ctl(md, "hold", "0"));
	ASSERT_TRUE(bar0_poll(md, count, (uint32_t)-EBUSY));
	EXPECT_EQ(count + 1, bar0_read32(md, MIGDEV_REG_DMA_COUNT));
	EXPECT_EQ(0, bar0_read32(md, MIGDEV_REG_DMA_STATUS));
	for (i = 0, bad = 0; i < size; i++) {
		uint8_t want = i >= at && i < at + len ?
			       migdev_pattern(i - at, seed) : 0;

		if (mem[i] != want && bad++ < 4)
			ksft_print_msg("byte 0x%zx: 0x%02x, expected 0x%02x\n",
				       i, mem[i], want);
	}
	EXPECT_EQ(0, bad);
	/* the registers hold what the guest wrote last, but the refused CMD */
	EXPECT_EQ(LATCH_IOVA + 3 * VFIO_MIG_PAGE_4K + 0x20,
		  bar0_read32(md, MIGDEV_REG_DMA_ADDR) |
		  (uint64_t)bar0_read32(md, MIGDEV_REG_DMA_ADDR + 4) << 32);
	EXPECT_EQ(0x200, bar0_read32(md, MIGDEV_REG_DMA_LEN));
	EXPECT_EQ(0x5000, bar0_read32(md, MIGDEV_REG_DMA_SEED));
	EXPECT_EQ(MIGDEV_CMD_WRITE_RW, bar0_read32(md, MIGDEV_REG_DMA_CMD));

	/* held, then the device stops: the command runs first */
	memset(mem, 0, size);
	ASSERT_EQ(0, migdev_ctl(md, "hold", "1"));
	ASSERT_EQ(0, bar0_dma(md, MIGDEV_CMD_WRITE_PIN, LATCH_IOVA, 8, 0x77));
	ASSERT_EQ(0, bar0_write(md, MIGDEV_REG_DMA_ADDR, LATCH_IOVA + VFIO_MIG_PAGE_4K, 8));
	EXPECT_EQ(count + 1, bar0_read32(md, MIGDEV_REG_DMA_COUNT));
	ASSERT_EQ(0, mig_set_state(md, MIGDEV_V1_STOP));
	EXPECT_EQ(count + 2, bar0_read32(md, MIGDEV_REG_DMA_COUNT));
	EXPECT_EQ(0, bar0_read32(md, MIGDEV_REG_DMA_STATUS));
	for (i = 0, bad = 0; i < size; i++)
		bad += mem[i] != (i < 8 ? migdev_pattern(i, 0x77) : 0);
	EXPECT_EQ(0, bad);
	ASSERT_EQ(0, mig_set_state(md, MIGDEV_V1_RUNNING));
	munmap(mem, size);
}

/*
 * fail-nth over the migration region: the accesses of a save and a resume
 * (QEMU's sequence), counted by kind.  The header accesses (device_state,
 * pending_bytes, data_offset, data_size) allocate nothing: each one is
 * made with its first allocation armed to fail, which must not be used.
 * The data section is read and written in pieces of at most 8 KiB, so
 * that migdev's bounce buffer (kvmalloc) comes from kmalloc, which
 * failslab reaches: each piece is swept on its own, its n-th allocation
 * failing for n = 1, 2, ... (the access made again after each failure)
 * until it makes fewer than n.
 */
enum {
	MS_STATE, MS_PENDING, MS_OFFSET, MS_SIZE_READ, MS_SIZE_WRITE,
	MS_DATA_READ, MS_DATA_WRITE, MS_NR
};

#define MS_HEADER_NR	MS_DATA_READ	/* the kinds before it: header */

/*
 * Data pieces of 8 KiB and 4 KiB in turn: kvmalloc() falls back to
 * vmalloc when an 8 KiB kmalloc fails (the failure is absorbed), not when
 * a 4 KiB one does (the access fails with -ENOMEM).
 */
#define MS_PIECE(i)	((i) % 2 ? 4096 : 8192)

static const char * const ms_names[MS_NR] = {
	"device_state write", "pending_bytes read", "data_offset read",
	"data_size read", "data_size write", "data read", "data write",
};

/*
 * Access @len bytes at @off of the region as step @op.  A header access
 * is made once, armed at 1: it must allocate nothing.  A data access is
 * swept: an injected failure is -ENOMEM with the device state unchanged,
 * and the access is made again with the next n; it may also be absorbed
 * (the access succeeds, see mig_sweep_print()).  Returns what the last
 * access returned.
 */
static int mig_step(struct __test_metadata *_metadata, struct fail_nth_sweep *sw,
		    int op, struct migdev *md, uint64_t off, void *buf,
		    size_t len)
{
	bool write = op == MS_STATE || op == MS_DATA_WRITE || op == MS_SIZE_WRITE;
	struct fail_nth_sweep *s = &sw[op];
	int ret = -EINVAL;

	s->calls++;
	FAIL_NTH_SWEEP(s, INT_MAX) {
		uint32_t before = mig_state(md);

		FAIL_NTH(s, ret = write ? mig_write(md, off, buf, len) :
			 mig_read(md, off, buf, len));
		if (op < MS_HEADER_NR) {
			EXPECT_FALSE(s->injected) {
				ksft_print_msg("%s allocates (access %d returned %d)\n",
					       ms_names[op], s->calls, ret);
			}
			return ret;
		}
		if (!s->injected)
			return ret;	/* fewer than n: every n was tried */
		if (!ret) {
			s->absorbed++;
			continue;
		}
		ASSERT_EQ(-ENOMEM, ret) {
			ksft_print_msg("%s: allocation %d failed\n", ms_names[op], s->n);
		}
		ASSERT_EQ(before, mig_state(md));
	}
	return ret;
}

/* @len bytes of the data section at @off, in pieces (MS_PIECE()). */
static int mig_step_data(struct __test_metadata *_metadata,
			 struct fail_nth_sweep *sw, int op, struct migdev *md,
			 uint64_t off, uint8_t *buf, size_t len)
{
	size_t done, piece;
	unsigned int i;
	int ret;

	for (done = 0, i = 0; done < len; done += piece, i++) {
		piece = len - done < MS_PIECE(i) ? len - done : MS_PIECE(i);
		ret = mig_step(_metadata, sw, op, md, off + done, buf + done, piece);
		if (ret)
			return ret;
	}
	return 0;
}

static int mig_step_state(struct __test_metadata *_metadata,
			  struct fail_nth_sweep *sw, struct migdev *md, uint32_t state)
{
	return mig_step(_metadata, sw, MS_STATE, md, MIGDEV_HDR_STATE, &state, 4);
}

static uint64_t mig_step_pending(struct __test_metadata *_metadata,
				 struct fail_nth_sweep *sw, struct migdev *md)
{
	uint64_t v = ~0ULL;

	EXPECT_EQ(0, mig_step(_metadata, sw, MS_PENDING, md, MIGDEV_HDR_PENDING, &v, 8));
	return v;
}

/* save_chunk() step by step; the chunk's size. */
static uint64_t sweep_save_chunk(struct __test_metadata *_metadata,
				 struct fail_nth_sweep *sw, struct migdev *md,
				 uint8_t *stream, size_t *len, void *map)
{
	uint64_t off = ~0ULL, size = ~0ULL;

	ASSERT_EQ(0, mig_step(_metadata, sw, MS_OFFSET, md, MIGDEV_HDR_DATA_OFFSET, &off, 8));
	ASSERT_EQ(0, mig_step(_metadata, sw, MS_SIZE_READ, md, MIGDEV_HDR_DATA_SIZE, &size, 8));
	ASSERT_LE(off + size, md->mig_size);
	ASSERT_LE(*len + 8 + size, MAX_STREAM);
	memcpy(stream + *len, &size, 8);
	if (map && off >= md->mmap_offset &&
	    off + size <= md->mmap_offset + md->mmap_size)
		memcpy(stream + *len + 8, (char *)map + off - md->mmap_offset, size);
	else
		ASSERT_EQ(0, mig_step_data(_metadata, sw, MS_DATA_READ, md, off,
					   stream + *len + 8, size));
	*len += 8 + size;
	mig_step_pending(_metadata, sw, md);	/* the acknowledgment */
	return size;
}

/*
 * Check and print the sweep: every kind of access was made; the header
 * kinds allocated nothing (mig_step() checked each access); the data kinds
 * had allocations failed, some of them seen by the user as -ENOMEM.
 */
static void mig_sweep_print(struct __test_metadata *_metadata,
			    const struct fail_nth_sweep *sw)
{
	unsigned int i;

	for (i = 0; i < MS_NR; i++) {
		EXPECT_GT(sw[i].calls, 0) {
			ksft_print_msg("%s: never made\n", ms_names[i]);
		}
		if (i < MS_HEADER_NR) {
			ksft_print_msg("%s: %d accesses, none allocates %s\n",
				       ms_names[i], sw[i].calls,
				       "(fail-nth=1 not consumed)");
			continue;
		}
		EXPECT_GT(sw[i].points, 0) {
			ksft_print_msg("%s: no allocation failed\n", ms_names[i]);
		}
		EXPECT_GT(sw[i].points - sw[i].absorbed, 0) {
			ksft_print_msg("%s: no access failed\n", ms_names[i]);
		}
		ksft_print_msg("%s: %d accesses, %d allocations failed in turn (%d absorbed)\n",
			       ms_names[i], sw[i].calls, sw[i].points,
			       sw[i].absorbed);
	}
	ksft_print_msg("absorbed: the access succeeded although an allocation failed\n");
	ksft_print_msg("  (kvmalloc fell back to vmalloc, or the allocation was kmemleak's\n");
	ksft_print_msg("  own object tracking, CONFIG_DEBUG_KMEMLEAK, which it tolerates)\n");
}

/*
 * A live migration from A to B as in save_and_resume_byte_for_byte, every
 * access of the region under fail-nth (see mig_step()): a header access
 * allocates nothing; a data access either succeeds or fails with -ENOMEM
 * and changes nothing, and the migration goes on.  B then holds A's state
 * byte for byte; so it does after a second, undisturbed migration.
 */
TEST_F_TIMEOUT(mig, allocation_failures_save_resume, 300)
{
	void *map = map_data(&self->a), *bmap = map_data(&self->b);
	struct fail_nth_sweep sw[MS_NR] = { { 0 } };
	unsigned int round, chunks = 0;
	size_t pos = 0;
	uint64_t n;

	if (!fail_nth_ready(_metadata))
		return;
	ASSERT_NE(NULL, map);
	ASSERT_NE(NULL, bmap);
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 200));
	ASSERT_EQ(0, mig_step_state(_metadata, sw, &self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	for (round = 0; round < 64 && mig_step_pending(_metadata, sw, &self->a);
	     round++) {
		sweep_save_chunk(_metadata, sw, &self->a, self->stream, &self->len,
				 round % 2 ? map : NULL);
		if (round < 8)		/* the device keeps running */
			ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 3));
	}
	EXPECT_GT(round, 4);
	ASSERT_EQ(0, mig_step_state(_metadata, sw, &self->a, MIGDEV_V1_SAVING));
	do {
		n = sweep_save_chunk(_metadata, sw, &self->a, self->stream,
				     &self->len, NULL);
	} while (n && mig_step_pending(_metadata, sw, &self->a));
	EXPECT_EQ(0, mig_step_pending(_metadata, sw, &self->a));
	ASSERT_EQ(0, mig_step_state(_metadata, sw, &self->a, MIGDEV_V1_STOP));

	ASSERT_EQ(0, mig_step_state(_metadata, sw, &self->b, MIGDEV_V1_RESUMING));
	while (pos < self->len) {
		uint64_t size, off = ~0ULL;

		memcpy(&size, self->stream + pos, 8);
		ASSERT_EQ(0, mig_step(_metadata, sw, MS_OFFSET, &self->b,
				      MIGDEV_HDR_DATA_OFFSET, &off, 8));
		ASSERT_EQ(self->b.mmap_offset, off);
		ASSERT_LE(size, self->b.mmap_size);
		if (chunks++ % 2)
			memcpy(bmap, self->stream + pos + 8, size);
		else
			ASSERT_EQ(0, mig_step_data(_metadata, sw, MS_DATA_WRITE,
						   &self->b, off,
						   self->stream + pos + 8, size));
		ASSERT_EQ(0, mig_step(_metadata, sw, MS_SIZE_WRITE, &self->b,
				      MIGDEV_HDR_DATA_SIZE, &size, 8));
		pos += 8 + size;
	}
	ASSERT_EQ(0, mig_step_state(_metadata, sw, &self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
	ksft_print_msg("%u pre-copy rounds, %u chunks, %zu bytes\n", round,
		       chunks, self->len);
	mig_sweep_print(_metadata, sw);

	/* and a whole migration again, nothing injected */
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_RUNNING));
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 7));
	self->len = 0;
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
	munmap(map, self->a.mmap_size);
	munmap(bmap, self->b.mmap_size);
}

/* The state of a device just reset: registers 0 but MIGDEV_REG_ID, state 0. */
static void reset_state(uint8_t *s)
{
	uint32_t id = MIGDEV_ID;

	memset(s, 0, MIGDEV_STATE_BYTES);
	memcpy(s + MIGDEV_REG_ID, &id, 4);
}

/*
 * Every open starts from a reset device: nothing of the previous user's
 * registers, internal state, migration data, config space or error state
 * is left.
 */
TEST_F(mig, open_resets_the_device)
{
	uint8_t *data = self->stream + MIGDEV_DATA_SIZE;
	uint32_t bar = 0xfebf0000, v;
	uint64_t junk = 0x7f7f7f7f7f7f7f7fULL, size = 8;
	unsigned int i;

	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 30));
	ASSERT_EQ(0, bar0_write(&self->a, MIGDEV_REG_SCRATCH, 0x1122334455667788ULL, 8));
	ASSERT_EQ(4, pwrite(self->a.fd, &bar, 4, self->a.config + 0x10));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	EXPECT_EQ(4096, mig_read64(&self->a, MIGDEV_HDR_DATA_OFFSET));	/* a chunk */
	ASSERT_GT(mig_read64(&self->a, MIGDEV_HDR_DATA_SIZE), 0);
	migdev_close(&self->a);
	ASSERT_EQ(0, migdev_open(&self->a, 0));

	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
	EXPECT_EQ(0, mig_read64(&self->a, MIGDEV_HDR_PENDING));
	EXPECT_EQ(-EINVAL, mig_read(&self->a, MIGDEV_HDR_DATA_OFFSET, &size, 8));
	reset_state(self->sb);
	ASSERT_EQ(0, migdev_state(&self->a, self->sa));
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
	ASSERT_EQ(0, mig_read(&self->a, 4096, data, MIGDEV_DATA_SIZE));
	for (i = 0; i < MIGDEV_DATA_SIZE && !data[i]; i++)
		;
	EXPECT_EQ(MIGDEV_DATA_SIZE, i);
	ASSERT_EQ(4, pread(self->a.fd, &v, 4, self->a.config + 0x10));
	EXPECT_EQ(0, v);

	/* the error state does not survive a reopen either */
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, mig_write(&self->a, 4096, &junk, 8));
	EXPECT_EQ(-EINVAL, mig_write(&self->a, MIGDEV_HDR_DATA_SIZE, &size, 8));
	EXPECT_EQ(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING, mig_state(&self->a));
	migdev_close(&self->a);
	ASSERT_EQ(0, migdev_open(&self->a, 0));
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
	ASSERT_EQ(0, migdev_state(&self->a, self->sa));
	EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES));
}

/*
 * Leaving pre-copy with a chunk read but not yet acknowledged, as QEMU
 * does: the acknowledgment comes with the first read of pending_bytes in
 * stop-and-copy, and the chunk is not sent again.
 */
TEST_F(mig, unacknowledged_chunk_into_stop_and_copy)
{
	uint64_t off, size, p1, p2;

	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 40));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING));
	ASSERT_GT(save_chunk(&self->a, self->stream, &self->len, NULL), 0);
	p1 = mig_read64(&self->a, MIGDEV_HDR_PENDING);
	off = mig_read64(&self->a, MIGDEV_HDR_DATA_OFFSET);
	size = mig_read64(&self->a, MIGDEV_HDR_DATA_SIZE);
	ASSERT_EQ(4096, off);
	ASSERT_GT(size, 0);
	memcpy(self->stream + self->len, &size, 8);
	ASSERT_EQ(0, mig_read(&self->a, off, self->stream + self->len + 8, size));
	self->len += 8 + size;
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 2));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	/*
	 * Acknowledged now: pending is what was left without the chunk, the
	 * blocks the two steps changed again, the registers and the end.
	 */
	p2 = mig_read64(&self->a, MIGDEV_HDR_PENDING);
	EXPECT_GE(p2, p1 - size + (8 + 4096) + 8);
	EXPECT_LE(p2, p1 - size + 2 * (8 + 4096) + (8 + 4096) + 8);
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));

	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
}

/*
 * The width of the access at @pos of a chunk of @size bytes: @w in the
 * first and the last 256 bytes, the middle in one go (it is slow enough).
 */
static uint64_t small_width(uint64_t pos, uint64_t size, uint64_t w)
{
	if (pos >= 256 && pos + 256 < size)
		w = size - 256 - pos;
	return w > size - pos ? size - pos : w;
}

/*
 * QEMU's slow path: the trapped data section accessed in small pieces,
 * 1, 2, 4 and 8 bytes at a time (at every alignment), to save and to
 * resume.
 */
TEST_F(mig, small_trapped_accesses)
{
	static const size_t widths[] = { 1, 2, 4, 8, 3, 8, 4, 2 };
	uint8_t *bulk = self->stream + MAX_STREAM - MIGDEV_DATA_SIZE;
	uint64_t size, pos, w;
	size_t at = 0, i;

	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 12));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	while (mig_read64(&self->a, MIGDEV_HDR_PENDING)) {
		ASSERT_EQ(4096, mig_read64(&self->a, MIGDEV_HDR_DATA_OFFSET));
		size = mig_read64(&self->a, MIGDEV_HDR_DATA_SIZE);
		ASSERT_GT(size, 0);
		ASSERT_LT(self->len + 8 + size, MAX_STREAM - MIGDEV_DATA_SIZE);
		memcpy(self->stream + self->len, &size, 8);
		for (pos = 0, i = 0; pos < size; pos += w, i++) {
			w = small_width(pos, size, widths[i % ARRAY_SIZE(widths)]);
			ASSERT_EQ(0, mig_read(&self->a, 4096 + pos,
					      self->stream + self->len + 8 + pos, w));
		}
		/* the same bytes as one bulk read of the chunk */
		ASSERT_EQ(0, mig_read(&self->a, 4096, bulk, size));
		EXPECT_EQ(0, memcmp(bulk, self->stream + self->len + 8, size));
		self->len += 8 + size;
	}
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));

	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	while (at < self->len) {
		memcpy(&size, self->stream + at, 8);
		ASSERT_EQ(4096, mig_read64(&self->b, MIGDEV_HDR_DATA_OFFSET));
		for (pos = 0, i = 0; pos < size; pos += w, i++) {
			w = small_width(pos, size, widths[(i + 3) % ARRAY_SIZE(widths)]);
			ASSERT_EQ(0, mig_write(&self->b, 4096 + pos,
					       self->stream + at + 8 + pos, w));
		}
		ASSERT_EQ(0, mig_write(&self->b, MIGDEV_HDR_DATA_SIZE, &size, 8));
		at += 8 + size;
	}
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
}

/* Resuming through the mmap of the data section. */
TEST_F(mig, resume_through_the_mmap)
{
	uint8_t *map = map_data(&self->b);
	size_t at = 0;
	uint64_t size;

	ASSERT_NE(NULL, map);
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 100));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_STOP));

	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	while (at < self->len) {
		memcpy(&size, self->stream + at, 8);
		ASSERT_EQ(self->b.mmap_offset, mig_read64(&self->b, MIGDEV_HDR_DATA_OFFSET));
		ASSERT_LE(size, self->b.mmap_size);
		memcpy(map, self->stream + at + 8, size);
		ASSERT_EQ(0, mig_write(&self->b, MIGDEV_HDR_DATA_SIZE, &size, 8));
		at += 8 + size;
	}
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
	munmap(map, self->b.mmap_size);
}

struct flipper {
	uint32_t *hdr;		/* a record header in the mapped data section */
	bool stop;
};

/* Change the record header all the time: valid, out of bounds, junk. */
static void *flip_header(void *arg)
{
	struct flipper *f = arg;
	uint32_t n;

	for (n = 0; !__atomic_load_n(&f->stop, __ATOMIC_RELAXED); n++) {
		__atomic_store_n(&f->hdr[0], 1, __ATOMIC_RELAXED);	/* a block */
		__atomic_store_n(&f->hdr[1], n % 64, __ATOMIC_RELAXED);
		__atomic_store_n(&f->hdr[1], 0x7fffffff - n % 64, __ATOMIC_RELAXED);
		__atomic_store_n(&f->hdr[0], 0xdead0000 | (n & 0xffff), __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * The user changes a record in the mapped data section while the device
 * consumes it: each chunk is either taken whole (a valid record) or
 * refused with EINVAL (the error state, left by reset); nothing else,
 * and no access out of bounds.
 */
TEST_F(mig, resume_while_the_mapping_changes)
{
	uint8_t *map = map_data(&self->b);
	uint64_t size = 8 + 4096;
	unsigned int i, taken = 0, refused = 0, other = 0;
	struct flipper f = { .hdr = (uint32_t *)map };
	pthread_t thread;
	int ret;

	ASSERT_NE(NULL, map);
	memset(map, 0x5a, size);
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, pthread_create(&thread, NULL, flip_header, &f));
	for (i = 0; i < 2000; i++) {
		ret = mig_write(&self->b, MIGDEV_HDR_DATA_SIZE, &size, 8);
		if (!ret) {
			taken++;
			continue;
		}
		if (ret == -EINVAL &&
		    mig_state(&self->b) == (MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING))
			refused++;
		else
			other++;
		ASSERT_EQ(0, ioctl(self->b.fd, VFIO_DEVICE_RESET));
		ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	}
	__atomic_store_n(&f.stop, true, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	ksft_print_msg("%u chunks taken, %u refused\n", taken, refused);
	EXPECT_EQ(0, other);
	EXPECT_EQ(2000, taken + refused);
	munmap(map, self->b.mmap_size);
}

/*
 * VFIO_DEVICE_RESET outside the error state: in pre-copy with a chunk
 * waiting, in stop-and-copy and half-way through resuming.  Each time the
 * device is back to its reset state, running, nothing pending, and a whole
 * save and resume works afterwards.
 */
TEST_F(mig, reset_outside_the_error_state)
{
	static const uint32_t states[] = {
		MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING, MIGDEV_V1_SAVING, MIGDEV_V1_STOP,
		MIGDEV_V1_RESUMING,
	};
	unsigned int i;

	reset_state(self->sb);
	for (i = 0; i < ARRAY_SIZE(states); i++) {
		ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 7));
		ASSERT_EQ(0, bar0_write(&self->a, MIGDEV_REG_SCRATCH + 8, i + 1, 4));
		ASSERT_EQ(0, mig_set_state(&self->a, states[i]));
		if (states[i] & MIGDEV_V1_SAVING)
			ASSERT_EQ(4096, mig_read64(&self->a, MIGDEV_HDR_DATA_OFFSET));
		ASSERT_EQ(0, ioctl(self->a.fd, VFIO_DEVICE_RESET));
		EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(&self->a));
		EXPECT_EQ(0, mig_read64(&self->a, MIGDEV_HDR_PENDING));
		ASSERT_EQ(0, migdev_state(&self->a, self->sa));
		EXPECT_EQ(0, memcmp(self->sa, self->sb, MIGDEV_STATE_BYTES)) {
			ksft_print_msg("reset in state %u\n", states[i]);
		}
	}
	ASSERT_EQ(0, migdev_ctl(&self->a, "step", "%d", 3));
	ASSERT_EQ(0, mig_set_state(&self->a, MIGDEV_V1_SAVING));
	ASSERT_EQ(0, save_rest(&self->a, self->stream, &self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RESUMING));
	ASSERT_EQ(0, migdev_resume(&self->b, self->stream, self->len));
	ASSERT_EQ(0, mig_set_state(&self->b, MIGDEV_V1_RUNNING));
	EXPECT_SAME_STATE();
}

static int rd(struct migdev *md, uint64_t pos, size_t len)
{
	static uint8_t buf[MIGDEV_DATA_SIZE + 4096];
	ssize_t n = pread(md->fd, buf, len, pos);

	return n < 0 ? -errno : (int)n;
}

static int wr(struct migdev *md, uint64_t pos, size_t len)
{
	static uint8_t buf[16];
	ssize_t n = pwrite(md->fd, buf, len, pos);

	return n < 0 ? -errno : (int)n;
}

static int map_at(struct migdev *md, uint64_t pos, size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, md->fd, pos);

	if (p == MAP_FAILED)
		return -errno;
	munmap(p, len);
	return 0;
}

/* Config space, BAR0 and the migration region: the bounds, exact errnos. */
TEST_F(mig, region_bounds)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri) };
	struct migdev *md = &self->a;
	uint64_t bar1 = (uint64_t)VFIO_PCI_BAR1_REGION_INDEX << 40;
	uint64_t beyond = (uint64_t)(VFIO_PCI_NUM_REGIONS + 1) << 40;

	/* config space: 256 bytes, any width */
	EXPECT_EQ(1, rd(md, md->config + 255, 1));
	EXPECT_EQ(-EINVAL, rd(md, md->config + 255, 2));
	EXPECT_EQ(-EINVAL, rd(md, md->config + 256, 1));
	EXPECT_EQ(-EINVAL, wr(md, md->config + 256, 4));
	EXPECT_EQ(-EINVAL, wr(md, md->config + 254, 4));
	/* BAR0: 4 KiB, naturally aligned 4 and 8 bytes */
	EXPECT_EQ(8, rd(md, md->bar0 + 4088, 8));
	EXPECT_EQ(-EINVAL, rd(md, md->bar0 + 4096, 4));
	EXPECT_EQ(-EINVAL, rd(md, md->bar0 + 4092, 8));
	EXPECT_EQ(-EINVAL, rd(md, md->bar0 + 2, 4));
	EXPECT_EQ(-EINVAL, rd(md, md->bar0 + 4, 8));
	EXPECT_EQ(-EINVAL, rd(md, md->bar0, 1));
	EXPECT_EQ(-EINVAL, rd(md, md->bar0, 2));
	EXPECT_EQ(-EINVAL, rd(md, md->bar0, 16));
	EXPECT_EQ(-EINVAL, wr(md, md->bar0 + 4096, 4));
	EXPECT_EQ(-EINVAL, wr(md, md->bar0 + MIGDEV_REG_SCRATCH + 1, 4));
	/* the migration region: the header, a gap, the data section */
	EXPECT_EQ(-EINVAL, rd(md, md->mig + 32, 8));
	EXPECT_EQ(-EINVAL, rd(md, md->mig + 4095, 1));
	EXPECT_EQ(MIGDEV_DATA_SIZE, rd(md, md->mig + 4096, MIGDEV_DATA_SIZE));
	EXPECT_EQ(1, rd(md, md->mig + md->mig_size - 1, 1));
	EXPECT_EQ(-EINVAL, rd(md, md->mig + md->mig_size - 4, 8));
	EXPECT_EQ(-EINVAL, rd(md, md->mig + md->mig_size, 1));
	EXPECT_EQ(-EINVAL, rd(md, md->mig + 4096, MIGDEV_DATA_SIZE + 1));
	EXPECT_EQ(-EINVAL, wr(md, md->mig + md->mig_size, 1));
	/* regions without anything, and beyond the last */
	EXPECT_EQ(-EINVAL, rd(md, bar1, 4));
	EXPECT_EQ(-EINVAL, rd(md, beyond, 4));
	ri.index = VFIO_PCI_NUM_REGIONS + 1;
	EXPECT_EQ(-1, ioctl(md->fd, VFIO_DEVICE_GET_REGION_INFO, &ri));
	EXPECT_EQ(EINVAL, errno);
	/* only the data section maps, shared, whole pages inside it */
	EXPECT_EQ(0, map_at(md, md->mig + 4096, 4096, MAP_SHARED));
	EXPECT_EQ(0, map_at(md, md->mig + 4096, MIGDEV_DATA_SIZE, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_at(md, md->mig + 4096, MIGDEV_DATA_SIZE + 4096,
				  MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_at(md, md->mig + 4096 + MIGDEV_DATA_SIZE, 4096,
				  MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_at(md, md->mig, 4096, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_at(md, md->mig + 4096, 4096, MAP_PRIVATE));
	EXPECT_EQ(-EINVAL, map_at(md, md->bar0, 4096, MAP_SHARED));
	EXPECT_EQ(-EINVAL, map_at(md, md->config, 4096, MAP_SHARED));
	EXPECT_EQ(MIGDEV_V1_RUNNING, mig_state(md));
}

/*
 * Wait until task @pid sleeps in @fn (/proc/PID/wchan), for up to 10 s:
 * true when it does.
 */
static bool sleeps_in(pid_t pid, const char *fn)
{
	char path[64], buf[128] = "";
	int i, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
	for (i = 0; i < 10000; i++) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return false;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (!strcmp(buf, fn))
			return true;
		usleep(1000);
	}
	ksft_print_msg("pid %d sleeps in \"%s\"\n", pid, buf);
	return false;
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
		SKIP(return,
		     "migdev: no migdev parent (CONFIG_SAMPLE_VFIO_MDEV_MIGDEV)");
	ASSERT_EQ(strlen(uuid), write(fd, uuid, strlen(uuid)));
	close(fd);
	for (nth = 0; ; nth++) {
		ASSERT_EQ(0, migdev_open(&md, nth));
		if (!strcmp(md.uuid, uuid))
			break;
		migdev_close(&md);
	}
	page = mmap(NULL, VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, vfio_map(md.container, 0x100000, page, VFIO_MIG_PAGE_4K));
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
	/* the removal reached the wait for the device's users, and waits */
	EXPECT_TRUE(sleeps_in(pid, "vfio_unregister_group_dev"));
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG));
	migdev_close(&md);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", uuid);
	EXPECT_EQ(-1, access(path, F_OK));
	munmap(page, VFIO_MIG_PAGE_4K);
}

TEST_HARNESS_MAIN
