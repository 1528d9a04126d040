// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fuzzer (lib/include/vfio_mig_fuzz.h) on the device: bar.fuzz,
 * BAR0 registers and DMA commands, config space, regions the device does
 * not have, debugfs commands; migdev-1 instance 0.
 */
#include "../kselftest_harness.h"

#include <vfio_mig_fuzz.h>

struct br {
	struct migdev md;
	uint8_t *buf;
	struct model m;
	uint8_t regs[MIGDEV_BAR0_SIZE];	/* what BAR0 must read */
	uint8_t config[256];
	bool running;
	struct fuzz f;
};

FIXTURE(bar) {
	struct br s;
};

static void bar_model_reset(struct br *self)
{
	uint32_t id = MIGDEV_ID;

	memset(self->regs, 0, sizeof(self->regs));
	memcpy(self->regs + MIGDEV_REG_ID, &id, 4);
	self->running = true;
	m_unpin(&self->m, 0, ~0ULL);
}

FIXTURE_SETUP(bar)
{
	int ret = migdev_open(&self->s.md, 0);

	self->s.buf = MAP_FAILED;
	if (ret == -ENODEV)
		SKIP(return, "migdev: no %s mdev", MIGDEV_TYPE);
	ASSERT_EQ(0, ret);
	self->s.buf = fz_anon(FZ_DEV_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->s.buf);
	ASSERT_EQ(0, vfio_map(self->s.md.container, FZ_WIN_IOVA, self->s.buf,
			      FZ_DEV_PAGES * VFIO_MIG_PAGE_4K));
	memset(&self->s.m, 0, sizeof(self->s.m));
	m_add(&self->s.m, FZ_WIN_IOVA, FZ_DEV_PAGES * VFIO_MIG_PAGE_4K,
	      (uintptr_t)self->s.buf, FZ_RW);
	bar_model_reset(&self->s);
	ASSERT_EQ(256, pread(self->s.md.fd, self->s.config, 256, self->s.md.config));
	ASSERT_EQ(0x1234, self->s.config[0] | self->s.config[1] << 8);
	ASSERT_EQ(0x1e55, self->s.config[2] | self->s.config[3] << 8);
}

FIXTURE_TEARDOWN(bar)
{
	migdev_close(&self->s.md);
	if (self->s.buf != MAP_FAILED)
		munmap(self->s.buf, FZ_DEV_PAGES * VFIO_MIG_PAGE_4K);
}

static uint32_t reg32(struct br *self, unsigned int off)
{
	uint32_t v;

	memcpy(&v, self->regs + off, 4);
	return v;
}

/* DMA_* of a command register value */
static int dma_of_cmd(uint32_t cmd)
{
	int c;

	for (c = 0; c < FZ_DMA_BOGUS; c++)
		if (fz_dma_cmds[c] == cmd)
			return c;
	return FZ_DMA_BOGUS;
}

/* A DMA command ran (the device was running): its result in the registers. */
static void bar_ran(struct br *self, struct fuzz *f, int ret)
{
	uint32_t status = ret, count = reg32(self, MIGDEV_REG_DMA_COUNT) + !ret;

	memcpy(self->regs + MIGDEV_REG_DMA_STATUS, &status, 4);
	memcpy(self->regs + MIGDEV_REG_DMA_COUNT, &count, 4);
}

/*
 * Let a command started through BAR0 finish: the device leaves RUNNING
 * only after it did, and comes back.
 */
static void bar_settle(struct br *self, struct fuzz *f)
{
	int ret = mig_set_state(&self->md, MIGDEV_V1_STOP) ?:
		  mig_set_state(&self->md, MIGDEV_V1_RUNNING);

	FZ_CHECK(f, !ret, "stop and run again: %d", ret);
}

/* The BAR0 command register was written: what the device did. */
static void bar_cmd(struct br *self, struct fuzz *f)
{
	uint32_t cmd = reg32(self, MIGDEV_REG_DMA_CMD), seed = reg32(self, MIGDEV_REG_DMA_SEED);
	uint64_t iova, len = reg32(self, MIGDEV_REG_DMA_LEN);
	int c = dma_of_cmd(cmd), want;

	memcpy(&iova, self->regs + MIGDEV_REG_DMA_ADDR, 8);
	want = m_dma_predict(&self->m, c, iova, len);
	bar_settle(self, f);
	m_dma_apply(&self->m, c, iova, len, want, NULL);
	bar_ran(self, f, want);
	FZ_CHECK(f, bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS) == (uint32_t)want,
		 "command %u at 0x%llx len 0x%llx: status %d, expected %d", cmd,
		 (unsigned long long)iova, (unsigned long long)len,
		 (int)bar0_read32(&self->md, MIGDEV_REG_DMA_STATUS), want);
	if (!want && c != FZ_DMA_KEEP && c != FZ_DMA_RELEASE && c != FZ_DMA_BOGUS)
		m_check_data(f, &self->m, iova, len, seed);
	if (!want)
		f->ok[FZ_OP_BAR_CMD]++;
	m_check_pinned(f, &self->m, &self->md);
}

/*
 * A DMA command as a guest driver starts it: address, length and seed,
 * then the command register; random arguments, mostly sensible ones.
 */
static void bar_dma(struct br *self, struct fuzz *f)
{
	uint32_t seed = fz_rnd(f), cmd;
	uint64_t iova, len;
	int c, ret;

	fz_pick_dma(f, &self->m, &c, &iova, &len);
	if (self->m.npinned > FZ_MAX_PINS)
		c = FZ_DMA_RELEASE;
	cmd = c == FZ_DMA_BOGUS ? (fz_chance(f, 50) ? 0 : (uint32_t)fz_rnd(f)) : fz_dma_cmds[c];
	len &= 0xffffffff;
	fz_op(f, FZ_OP_BAR_CMD, "cmd %u iova 0x%llx len 0x%llx seed 0x%x running %d",
	      cmd, (unsigned long long)iova, (unsigned long long)len, seed,
	      self->running);
	f->compound = true;
	ret = bar0_dma(&self->md, cmd, iova, len, seed);
	FZ_EXPECT_RET(f, ret, self->running ? 0 : -EBUSY);
	if (ret)
		return;
	memcpy(self->regs + MIGDEV_REG_DMA_ADDR, &iova, 8);
	memcpy(self->regs + MIGDEV_REG_DMA_LEN, &len, 4);
	memcpy(self->regs + MIGDEV_REG_DMA_SEED, &seed, 4);
	memcpy(self->regs + MIGDEV_REG_DMA_CMD, &cmd, 4);
	bar_cmd(self, f);
}

/* Random BAR0 accesses; every read is checked against the model. */
static void bar_access(struct br *self, struct fuzz *f)
{
	static const size_t widths[] = { 4, 4, 4, 8, 8, 8, 1, 2, 3, 16 };
	size_t len = widths[fz_below(f, ARRAY_SIZE(widths))];
	uint64_t r = fz_below(f, 100), off, v = fz_rnd(f);
	bool write = fz_chance(f, 50);
	uint8_t val[16];
	int want, ret;

	if (r < 50)
		off = fz_below(f, 0x40);
	else if (r < 80)
		off = 0x100 + fz_below(f, 0x40);
	else if (r < 90)
		off = MIGDEV_BAR0_SIZE - 16 + fz_below(f, 32);
	else
		off = fz_below(f, 1ULL << 40);
	if (fz_chance(f, 85))
		off &= ~(uint64_t)(len == 8 ? 7 : 3);
	if (write && off == MIGDEV_REG_DMA_CMD && fz_chance(f, 90))
		v = fz_below(f, 7);
	else if (write && off == MIGDEV_REG_DMA_ADDR && fz_chance(f, 80))
		v = FZ_WIN_IOVA - VFIO_MIG_PAGE_4K +
		    fz_below(f, (FZ_DEV_PAGES + 2) * VFIO_MIG_PAGE_4K);
	else if (write && off == MIGDEV_REG_DMA_LEN && fz_chance(f, 80))
		v = fz_chance(f, 10) ? 0 : 1 + fz_below(f, 3 * VFIO_MIG_PAGE_4K);
	memcpy(val, &v, 8);
	memcpy(val + 8, &v, 8);
	want = off + len <= MIGDEV_BAR0_SIZE && (len == 4 || len == 8) &&
	       !(off % len) ? 0 : -EINVAL;
	if (!want && write && !self->running)
		want = -EBUSY;
	fz_op(f, write ? FZ_OP_BAR_WRITE : FZ_OP_BAR_READ,
	      "off 0x%llx len %zu value 0x%llx running %d",
	      (unsigned long long)off, len, (unsigned long long)v, self->running);
	if (write) {
		ssize_t n = pwrite(self->md.fd, val, len, self->md.bar0 + off);

		ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	} else {
		ssize_t n = pread(self->md.fd, val, len, self->md.bar0 + off);

		ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	}
	FZ_EXPECT_RET(f, ret, want);
	if (ret)
		return;
	if (!write) {
		uint64_t exp = 0;

		memcpy(&exp, self->regs + off, len);
		memcpy(&v, val, 8);
		FZ_CHECK(f, !memcmp(val, self->regs + off, len),
			 "read 0x%llx, expected 0x%llx",
			 (unsigned long long)(len == 8 ? v : (uint32_t)v),
			 (unsigned long long)exp);
		if (off == MIGDEV_REG_ID)
			FZ_CHECK(f, *(uint32_t *)val == MIGDEV_ID,
				 "MIGDEV_REG_ID 0x%x", *(uint32_t *)val);
		return;
	}
	if (off == MIGDEV_REG_DMA_CMD && len == 4) {
		memcpy(self->regs + off, val, 4);
		f->count[FZ_OP_BAR_CMD]++;
		bar_cmd(self, f);
	} else if ((off >= MIGDEV_REG_DMA_ADDR && off < MIGDEV_REG_DMA_CMD) ||
		   off >= MIGDEV_REG_SCRATCH) {
		memcpy(self->regs + off, val, len);
	}
}

/* Config space: reads of any size, writes stick only to COMMAND and BAR0. */
static void bar_config(struct br *self, struct fuzz *f)
{
	size_t len = fz_chance(f, 80) ? 1 + fz_below(f, 8) : fz_below(f, 300);
	uint64_t off = fz_chance(f, 90) ? fz_below(f, 256) : 256 + fz_below(f, 1 << 20);
	bool write = fz_chance(f, 50);
	uint8_t val[300];
	int want, ret;
	ssize_t n;
	size_t i;

	if (fz_chance(f, 50))
		off = off & ~3ULL;
	if (fz_chance(f, 20))
		off = fz_chance(f, 50) ? 4 : 0x10, len = off == 4 ? 2 : 4;
	for (i = 0; i < len; i++)
		val[i] = fz_rnd(f);
	want = len && off + len <= 256 ? 0 : -EINVAL;
	fz_op(f, write ? FZ_OP_CFG_WRITE : FZ_OP_CFG_READ, "off 0x%llx len %zu",
	      (unsigned long long)off, len);
	if (write)
		n = pwrite(self->md.fd, val, len, self->md.config + off);
	else
		n = pread(self->md.fd, val, len, self->md.config + off);
	ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	if (!len && !ret)
		want = 0;	/* a zero-length access may be done before the driver */
	FZ_EXPECT_RET(f, ret, want);
	if (ret || !len)
		return;
	if (!write) {
		for (i = 0; i < len; i++)
			FZ_CHECK(f, val[i] == self->config[off + i],
				 "config byte 0x%llx reads 0x%02x, expected 0x%02x",
				 (unsigned long long)(off + i), val[i],
				 self->config[off + i]);
		return;
	}
	if (off == 4 && len == 2) {
		memcpy(self->config + 4, val, 2);
	} else if (off == 0x10 && len == 4) {
		uint32_t bar;

		memcpy(&bar, val, 4);
		bar = (bar & ~(uint32_t)(MIGDEV_BAR0_SIZE - 1));
		memcpy(self->config + 0x10, &bar, 4);
	}
}

/* Regions the device does not have, and offsets past any region. */
static void bar_other(struct br *self, struct fuzz *f)
{
	static const unsigned int idx[] = { 1, 2, 3, 4, 5, 6, 8, 10, 11, 200 };
	unsigned int i = idx[fz_below(f, ARRAY_SIZE(idx))];
	uint64_t off = ((uint64_t)i << 40) + fz_below(f, 4096);
	bool write = fz_chance(f, 50);
	uint32_t v = fz_rnd(f);
	ssize_t n;

	fz_op(f, FZ_OP_OTHER_REGION, "index %u off 0x%llx %s", i,
	      (unsigned long long)off, write ? "write" : "read");
	n = write ? pwrite(self->md.fd, &v, 4, off) : pread(self->md.fd, &v, 4, off);
	FZ_EXPECT_RET(f, n == 4 ? 0 : n < 0 ? -errno : -EIO, -EINVAL);
}

/* debugfs DMA commands, good and garbled. */
static void bar_dbg(struct br *self, struct fuzz *f)
{
	static const char * const junk[] = {
		" ", "keepx 0 1 1", "RW 0x100000 4 1", "0x100000 4 1 rw",
		"rw 0x100000 4 1                                                                                  ",
	};
	uint64_t iova, len;
	uint32_t seed = fz_rnd(f);
	int cmd, want, ret;

	if (fz_chance(f, 15)) {
		const char *s = junk[fz_below(f, ARRAY_SIZE(junk))];

		fz_op(f, FZ_OP_DBG_BAD, "\"%s\"", s);
		/* no command: refused before the device sees it */
		FZ_EXPECT_RET(f, migdev_ctl(&self->md, "dma", "%s", s), -EINVAL);
		return;
	}
	fz_pick_dma(f, &self->m, &cmd, &iova, &len);
	if (self->m.npinned > FZ_MAX_PINS)
		cmd = FZ_DMA_RELEASE;
	if (cmd == FZ_DMA_BOGUS || self->running)
		want = m_dma_predict(&self->m, cmd, iova, len);
	else
		want = -EBUSY;
	fz_op(f, FZ_OP_DMA, "%s 0x%llx 0x%llx 0x%x running %d", fz_dma_names[cmd],
	      (unsigned long long)iova, (unsigned long long)len, seed,
	      self->running);
	ret = fz_dma(&self->md, cmd, iova, len, seed);
	FZ_EXPECT_RET(f, ret, want);
	if (want == -EBUSY || cmd == FZ_DMA_BOGUS)
		return;	/* not run: the registers stay */
	m_dma_apply(&self->m, cmd, iova, len, ret, NULL);
	bar_ran(self, f, ret);
	if (!ret && cmd != FZ_DMA_KEEP && cmd != FZ_DMA_RELEASE)
		m_check_data(f, &self->m, iova, len, seed);
	m_check_pinned(f, &self->m, &self->md);
}

static void bar_step(struct br *self, struct fuzz *f)
{
	uint64_t r = fz_below(f, 1000);

	if (r < 450) {
		bar_access(self, f);
	} else if (r < 520) {
		bar_dma(self, f);
	} else if (r < 700) {
		bar_config(self, f);
	} else if (r < 730) {
		bar_other(self, f);
	} else if (r < 900) {
		bar_dbg(self, f);
	} else if (r < 960) {
		bool run = fz_chance(f, 60);

		fz_op(f, FZ_OP_STATE, "%s", run ? "running" : "stop");
		FZ_EXPECT_RET(f, mig_set_state(&self->md, run ? MIGDEV_V1_RUNNING : MIGDEV_V1_STOP),
			      0);
		self->running = run;
	} else {
		fz_op(f, FZ_OP_RESET, "device reset");
		FZ_EXPECT_RET(f, ioctl(self->md.fd, VFIO_DEVICE_RESET) ? -errno : 0, 0);
		bar_model_reset(self);
	}
}

TEST_F_TIMEOUT(bar, fuzz, FZ_TIMEOUT)
{
	struct fuzz *f = &self->s.f;
	double t0 = fz_now_ms();
	static const struct fz_need need[] = {
		{ FZ_OP_BAR_READ, 100 },
		{ FZ_OP_BAR_WRITE, 80 },
		{ FZ_OP_BAR_CMD, 5 },
		{ FZ_OP_CFG_READ, 50 },
		{ FZ_OP_CFG_WRITE, 50 },
		{ FZ_OP_DMA, 30 },
		{ 0, 0 },
	};
	uint8_t config[256];

	fz_init(f, "bar0-config", 15000);
	while (fz_more(f))
		bar_step(&self->s, f);
	if (!f->failed) {
		fz_op(f, FZ_OP_VERIFY, "at the end");
		f->compound = true;
		EXPECT_EQ(MIGDEV_ID, bar0_read32(&self->s.md, MIGDEV_REG_ID));
		EXPECT_EQ(256, pread(self->s.md.fd, config, 256, self->s.md.config));
		EXPECT_EQ(0, memcmp(config, self->s.config, 256));
		EXPECT_EQ(0x1234, config[0] | config[1] << 8);
		EXPECT_EQ(0x1e55, config[2] | config[3] << 8);
		EXPECT_EQ(0, mig_set_state(&self->s.md, MIGDEV_V1_RUNNING));
		EXPECT_EQ(0, fz_dma(&self->s.md, FZ_DMA_RW, FZ_WIN_IOVA + 100, 300, 42));
		m_check_data(f, &self->s.m, FZ_WIN_IOVA + 100, 300, 42);
		if (!f->failed)
			f->ok[FZ_OP_VERIFY]++;
	}
	EXPECT_EQ(0, f->failed);
	EXPECT_TRUE(fz_finish(f, t0, need));
}

TEST_HARNESS_MAIN
