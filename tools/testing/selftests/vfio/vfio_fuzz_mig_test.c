// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fuzzer (lib/include/vfio_mig_fuzz.h) on the v1 migration region:
 * mig.fuzz, header and data section accesses of every width, device state
 * writes, mmaps, saves, resumes of saved and of broken streams; migdev-1
 * instances 0 (source) and 1 (destination).
 */
#include "../kselftest_harness.h"

#include <vfio_mig_fuzz.h>

#define STREAM_BYTES	0x100000
#define MAX_PENDING	(65 * (8 + 4096ULL) + 8)
#define MIGDEV_V1_ERROR	(MIGDEV_V1_SAVING | MIGDEV_V1_RESUMING)

/* What the fuzzer knows of a device's migration state. */
struct mstate {
	uint32_t state;
	bool loaded;		/* resuming: part of a stream loaded */
	int done;		/* its end record checked: 0, 1, -1 unknown */
};

struct mg {
	struct migdev dev[2];	/* 0: the source of valid streams */
	struct mstate ms[2];
	struct model m[2];
	uint8_t *buf[2];
	uint8_t *stream;	/* chunks: u64 size, then the data */
	size_t len;
	uint8_t *snap;		/* the source's state when it was saved */
	uint8_t *state;
	uint8_t *scratch;
	uint8_t *map;		/* the destination's data section, mmapped */
	struct fuzz f;
};

FIXTURE(mig) {
	struct mg s;
};

FIXTURE_SETUP(mig)
{
	int i, ret;

	for (i = 0; i < 2; i++) {
		self->s.dev[i].fd = -1;
		self->s.dev[i].group = -1;
		self->s.dev[i].container = -1;
		self->s.buf[i] = MAP_FAILED;
	}
	self->s.stream = NULL;
	self->s.map = MAP_FAILED;
	for (i = 0; i < 2; i++) {
		ret = migdev_open(&self->s.dev[i], i);
		if (ret == -ENODEV)
			SKIP(return, "migdev: needs two %s mdevs",
			     MIGDEV_TYPE);
		ASSERT_EQ(0, ret);
		self->s.buf[i] = fz_anon(FZ_DEV_PAGES * VFIO_MIG_PAGE_4K, PROT_READ | PROT_WRITE);
		ASSERT_NE(MAP_FAILED, self->s.buf[i]);
		ASSERT_EQ(0, vfio_map(self->s.dev[i].container, FZ_WIN_IOVA,
				      self->s.buf[i], FZ_DEV_PAGES * VFIO_MIG_PAGE_4K));
		memset(&self->s.m[i], 0, sizeof(self->s.m[i]));
		m_add(&self->s.m[i], FZ_WIN_IOVA, FZ_DEV_PAGES * VFIO_MIG_PAGE_4K,
		      (uintptr_t)self->s.buf[i], FZ_RW);
		self->s.ms[i].state = MIGDEV_V1_RUNNING;
		self->s.ms[i].loaded = false;
		self->s.ms[i].done = 0;
	}
	self->s.stream = malloc(STREAM_BYTES);
	self->s.snap = malloc(MIGDEV_STATE_BYTES);
	self->s.state = malloc(MIGDEV_STATE_BYTES);
	self->s.scratch = malloc(MIGDEV_DATA_SIZE + 4096);	/* and 64 more */
	ASSERT_NE(NULL, self->s.stream);
	ASSERT_NE(NULL, self->s.snap);
	ASSERT_NE(NULL, self->s.state);
	ASSERT_NE(NULL, self->s.scratch);
	self->s.len = 0;
	ASSERT_EQ(4096, self->s.dev[0].mmap_offset);
	ASSERT_EQ(4096, self->s.dev[1].mmap_offset);
	ASSERT_LE(MIGDEV_DATA_SIZE, self->s.dev[1].mmap_size);
	self->s.map = mmap(NULL, MIGDEV_DATA_SIZE, PROT_READ | PROT_WRITE,
			   MAP_SHARED, self->s.dev[1].fd,
			   self->s.dev[1].mig + self->s.dev[1].mmap_offset);
	ASSERT_NE(MAP_FAILED, self->s.map);
}

FIXTURE_TEARDOWN(mig)
{
	int i;

	if (self->s.map != MAP_FAILED)
		munmap(self->s.map, MIGDEV_DATA_SIZE);
	for (i = 0; i < 2; i++) {
		migdev_close(&self->s.dev[i]);
		if (self->s.buf[i] != MAP_FAILED)
			munmap(self->s.buf[i], FZ_DEV_PAGES * VFIO_MIG_PAGE_4K);
	}
	if (self->s.stream) {
		free(self->s.stream);
		free(self->s.snap);
		free(self->s.state);
		free(self->s.scratch);
	}
}

/*
 * What writing @new to device_state does (migdev's rules): 0 or -errno;
 * @either: the outcome depends on what the fuzzer does not know (whether
 * the stream loaded so far ended), and -EIO is possible too.
 */
static int ms_predict(struct mstate *s, uint32_t new, bool *either)
{
	uint32_t old = s->state;

	*either = false;
	if (new & ~VFIO_DEVICE_STATE_MASK)
		return -EINVAL;
	if (old == MIGDEV_V1_ERROR)
		return -EIO;
	if (!VFIO_DEVICE_STATE_VALID(new) || new == MIGDEV_V1_ERROR)
		return -EINVAL;
	if (((old & MIGDEV_V1_SAVING) && (new & MIGDEV_V1_RESUMING)) ||
	    ((old & MIGDEV_V1_RESUMING) && (new & MIGDEV_V1_SAVING)))
		return -EINVAL;
	if (old == MIGDEV_V1_SAVING && new == (MIGDEV_V1_SAVING | MIGDEV_V1_RUNNING))
		return -EINVAL;
	if ((old & MIGDEV_V1_RESUMING) && !(new & MIGDEV_V1_RESUMING) && s->loaded) {
		if (s->done < 0)
			*either = true;
		else if (!s->done)
			return -EIO;
	}
	return 0;
}

/* Write @new to device_state, check the result and the state after. */
static int mig_write_state(struct fuzz *f, struct migdev *md, struct mstate *s,
			   uint32_t new)
{
	bool either;
	int want = ms_predict(s, new, &either), ret;
	uint32_t now;

	ret = mig_set_state(md, new);
	if (either)
		FZ_EXPECT_RET2(f, ret, 0, -EIO);
	else
		FZ_EXPECT_RET(f, ret, want);
	if (!ret) {
		if ((new & MIGDEV_V1_RESUMING) && !(s->state & MIGDEV_V1_RESUMING)) {
			s->loaded = false;
			s->done = 0;
		}
		s->state = new;
	} else if (ret == -EIO && s->state != MIGDEV_V1_ERROR) {
		s->state = MIGDEV_V1_ERROR;	/* left a partial stream */
	}
	now = mig_state(md);
	FZ_CHECK(f, now == s->state, "device_state reads 0x%x, expected 0x%x", now,
		 s->state);
	return ret;
}

static void mig_reset(struct fuzz *f, struct migdev *md, struct mstate *s,
		      struct model *m)
{
	FZ_EXPECT_RET(f, ioctl(md->fd, VFIO_DEVICE_RESET) ? -errno : 0, 0);
	s->state = MIGDEV_V1_RUNNING;
	s->loaded = false;
	s->done = 0;
	m_unpin(m, 0, ~0ULL);
	FZ_CHECK(f, mig_state(md) == MIGDEV_V1_RUNNING, "device_state 0x%x after a reset",
		 mig_state(md));
}

/* The device works: its ID, and a DMA that lands. */
static void mig_sane(struct fuzz *f, struct migdev *md, struct model *m)
{
	uint32_t seed = fz_rnd(f);
	uint64_t iova = FZ_WIN_IOVA + fz_below(f, FZ_DEV_PAGES * VFIO_MIG_PAGE_4K - 64);

	FZ_CHECK(f, bar0_read32(md, MIGDEV_REG_ID) == MIGDEV_ID, "MIGDEV_REG_ID 0x%x",
		 bar0_read32(md, MIGDEV_REG_ID));
	FZ_EXPECT_RET(f, fz_dma(md, FZ_DMA_RW, iova, 64, seed), 0);
	m_check_data(f, m, iova, 64, seed);
}

/* Random accesses to the region: the header, around it, the data section. */
static void mig_access(struct mg *self, struct fuzz *f, int d)
{
	static const size_t widths[] = { 1, 2, 3, 4, 4, 4, 5, 7, 8, 8, 8, 16 };
	struct migdev *md = &self->dev[d];
	struct mstate *s = &self->ms[d];
	bool write = fz_chance(f, 40), either = false;
	size_t len = widths[fz_below(f, ARRAY_SIZE(widths))];
	uint64_t off, r = fz_below(f, 100), v = fz_rnd(f);
	uint8_t val[16];
	int want = -EINVAL, ret;

	if (r < 60)
		off = fz_below(f, 40);
	else if (r < 70)
		off = 4096 - 8 + fz_below(f, 16);
	else if (r < 80)
		off = md->mig_size - 16 + fz_below(f, 32);
	else if (r < 90)
		off = 4096 + fz_below(f, MIGDEV_DATA_SIZE);
	else
		off = fz_below(f, 2) ? 1ULL << (32 + fz_below(f, 8)) : (1ULL << 40) - 4;
	if (fz_chance(f, 70) && !(len & (len - 1)))
		off &= ~(uint64_t)((len < 8 ? len : 8) - 1);
	if (write && off == MIGDEV_HDR_STATE && len == 4) {
		v = fz_chance(f, 85) ? fz_below(f, 8) : (uint32_t)v;
	} else if (write && off == MIGDEV_HDR_DATA_SIZE && len == 8) {
		r = fz_below(f, 4);
		v = r == 0 ? 0 : r == 1 ? fz_below(f, MIGDEV_DATA_SIZE + 1) :
		    r == 2 ? MIGDEV_DATA_SIZE + 1 + fz_below(f, 1 << 20) : v;
	}
	memcpy(val, &v, 8);
	memcpy(val + 8, &v, 8);
	fz_op(f, write ? FZ_OP_HDR_WRITE : FZ_OP_HDR_READ,
	      "dev %d state 0x%x off 0x%llx len %zu value 0x%llx", d, s->state,
	      (unsigned long long)off, len, (unsigned long long)v);

	if (off < 32) {
		switch (off) {
		case MIGDEV_HDR_STATE:
			if (len == 4 && write) {
				mig_write_state(f, md, s, v);
				return;
			}
			want = len == 4 ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_RESERVED:
			want = len == 4 ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_PENDING:
			want = len == 8 && !write ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_DATA_OFFSET:
			want = len == 8 && !write &&
			       ((s->state & MIGDEV_V1_SAVING) || s->state == MIGDEV_V1_RESUMING) &&
			       s->state != MIGDEV_V1_ERROR ? 0 : -EINVAL;
			break;
		case MIGDEV_HDR_DATA_SIZE:
			if (len != 8 || !write) {
				want = len == 8 ? 0 : -EINVAL;
				break;
			}
			if (s->state != MIGDEV_V1_RESUMING || v > MIGDEV_DATA_SIZE)
				want = -EINVAL;
			else if (!v)
				want = 0;
			else
				either = true;
			break;
		}
	} else if (off >= 4096 && off + len <= md->mig_size) {
		want = 0;
	}
	ret = write ? mig_write(md, off, val, len) : mig_read(md, off, val, len);
	if (!either) {
		FZ_EXPECT_RET(f, ret, want);
	} else {
		/* the data section decides; a bad chunk is the error state */
		if (ret != -EIO)
			FZ_EXPECT_RET2(f, ret, 0, -EINVAL);
		else
			FZ_EXPECT_RET(f, ret, -EIO);
		if (ret) {
			s->state = MIGDEV_V1_ERROR;
		} else {
			s->loaded = true;
			s->done = -1;
		}
		FZ_CHECK(f, mig_state(md) == s->state, "device_state 0x%x, expected 0x%x",
			 mig_state(md), s->state);
	}
	if (ret || write)
		return;
	memcpy(&v, val, 8);
	switch (off) {
	case MIGDEV_HDR_STATE:
		FZ_CHECK(f, (uint32_t)v == s->state, "device_state 0x%x, expected 0x%x",
			 (uint32_t)v, s->state);
		break;
	case MIGDEV_HDR_RESERVED:
		FZ_CHECK(f, (uint32_t)v == 0, "reserved reads 0x%x", (uint32_t)v);
		break;
	case MIGDEV_HDR_PENDING:
		FZ_CHECK(f, v <= MAX_PENDING && (v == 0 || (s->state & MIGDEV_V1_SAVING)),
			 "pending_bytes 0x%llx in state 0x%x", (unsigned long long)v,
			 s->state);
		break;
	case MIGDEV_HDR_DATA_OFFSET:
		FZ_CHECK(f, v == 4096, "data_offset 0x%llx", (unsigned long long)v);
		break;
	case MIGDEV_HDR_DATA_SIZE:
		FZ_CHECK(f, v <= MIGDEV_DATA_SIZE && (v == 0 || (s->state & MIGDEV_V1_SAVING)),
			 "data_size 0x%llx in state 0x%x", (unsigned long long)v, s->state);
		break;
	}
}

/* device_state writes, legal and not, reserved bits included. */
static void mig_state_op(struct mg *self, struct fuzz *f, int d)
{
	uint32_t v = fz_chance(f, 85) ? fz_below(f, 8) : (uint32_t)fz_rnd(f) | 8;

	fz_op(f, FZ_OP_STATE, "dev %d 0x%x -> 0x%x", d, self->ms[d].state, v);
	mig_write_state(f, &self->dev[d], &self->ms[d], v);
}

/* Bulk accesses to the data section, in or out of it. */
static void mig_data(struct mg *self, struct fuzz *f, int d)
{
	struct migdev *md = &self->dev[d];
	uint64_t off = 4096 + fz_below(f, MIGDEV_DATA_SIZE + 64) - 32;
	size_t len = fz_chance(f, 50) ? 1 + fz_below(f, 256) :
		     1 + fz_below(f, MIGDEV_DATA_SIZE + 16);
	bool write = fz_chance(f, 50);
	int want, ret;

	if (fz_chance(f, 10))
		off = fz_below(f, 4096 - 32) + 32;
	want = off >= 4096 && off + len <= md->mig_size ? 0 : -EINVAL;
	fz_op(f, FZ_OP_DATA, "dev %d %s off 0x%llx len 0x%zx", d,
	      write ? "write" : "read", (unsigned long long)off, len);
	if (write) {
		uint64_t i;

		for (i = 0; i < len; i++)
			self->scratch[i] = fz_rnd(f);
		ret = mig_write(md, off, self->scratch, len);
		/* what was written reads back */
		if (!ret && !want) {
			uint8_t *back = self->scratch + MIGDEV_DATA_SIZE + 16;
			size_t n = len < 64 ? len : 64;

			FZ_CHECK(f, !mig_read(md, off + len - n, back, n) &&
				 !memcmp(back, self->scratch + len - n, n),
				 "the data section does not read back what was written");
		}
	} else {
		ret = mig_read(md, off, self->scratch, len);
	}
	FZ_EXPECT_RET(f, ret, want);
}

/*
 * mmap of the region: only page-aligned, shared, inside the data section
 * (the sparse mmap area); a write through it reads back through pread.
 */
static void mig_mmap(struct mg *self, struct fuzz *f, int d)
{
	struct migdev *md = &self->dev[d];
	uint64_t r = fz_below(f, 100), off, len, pos;
	bool shared = fz_chance(f, 85);
	uint8_t *p, v = fz_rnd(f), back = ~v;
	int want, ret;

	if (r < 60)
		off = 4096 * (1 + fz_below(f, 17));
	else if (r < 75)
		off = 4096 * fz_below(f, 2);
	else if (r < 90)
		off = 4096 * (1 + fz_below(f, 16)) + 1 + fz_below(f, 4095);
	else
		off = 4096 * (1 + fz_below(f, 4)) - md->mig + fz_below(f, 10) * (1ULL << 40);
	len = 4096 * (1 + fz_below(f, 17));
	want = shared && off >= 4096 && !(off & 4095) && off + len <= md->mig_size ?
	       0 : -EINVAL;
	fz_op(f, FZ_OP_MMAP, "dev %d off 0x%llx len 0x%llx %s", d,
	      (unsigned long long)off, (unsigned long long)len,
	      shared ? "shared" : "private");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE,
		 md->fd, md->mig + off);
	ret = p == MAP_FAILED ? -errno : 0;
	FZ_EXPECT_RET(f, ret, want);
	if (ret)
		return;
	pos = fz_below(f, len);
	p[pos] = v;
	FZ_CHECK(f, !mig_read(md, off + pos, &back, 1) && back == v,
		 "wrote 0x%02x at 0x%llx through the mmap, pread reads 0x%02x", v,
		 (unsigned long long)(off + pos), back);
	munmap(p, len);
}

/*
 * Save a chunk: data_offset, data_size, the data, then pending_bytes; the
 * chunk in the data section.  0 or -errno.
 */
static int save_one(struct migdev *md, uint8_t *stream, size_t *len)
{
	int64_t n = migdev_save_chunk(md, stream, len, STREAM_BYTES, NULL);

	return n < 0 ? n : 0;
}

/*
 * A whole save of the source, the way QEMU does it: a few pre-copy
 * rounds with DMA in between, then stop-and-copy until nothing is pending.
 */
static void mig_save(struct mg *self, struct fuzz *f)
{
	struct migdev *md = &self->dev[0];
	struct mstate *s = &self->ms[0];
	int rounds = fz_below(f, 4), i, n;

	fz_op(f, FZ_OP_SAVE, "from 0x%x, %d pre-copy rounds", s->state, rounds);
	f->compound = true;
	if (s->state != MIGDEV_V1_RUNNING)
		mig_reset(f, md, s, &self->m[0]);
	self->len = 0;
	if (mig_write_state(f, md, s, MIGDEV_V1_RUNNING | MIGDEV_V1_SAVING))
		return;
	for (i = 0; i < rounds; i++) {
		if (mig_read64(md, MIGDEV_HDR_PENDING))
			FZ_EXPECT_RET(f, save_one(md, self->stream, &self->len), 0);
		FZ_EXPECT_RET(f, fz_dma(md, FZ_DMA_RW,
					FZ_WIN_IOVA + fz_below(f, 8 * VFIO_MIG_PAGE_4K),
					1 + fz_below(f, 4 * VFIO_MIG_PAGE_4K),
					fz_rnd(f)), 0);
	}
	if (mig_write_state(f, md, s, MIGDEV_V1_SAVING))
		return;
	for (n = 0; n < 100 && mig_read64(md, MIGDEV_HDR_PENDING); n++)
		FZ_EXPECT_RET(f, save_one(md, self->stream, &self->len), 0);
	FZ_CHECK(f, !mig_read64(md, MIGDEV_HDR_PENDING), "still pending after %d chunks", n);
	FZ_EXPECT_RET(f, migdev_state(md, self->snap), 0);
	mig_write_state(f, md, s, MIGDEV_V1_STOP);
	if (!mig_write_state(f, md, s, MIGDEV_V1_RUNNING) && !f->failed)
		f->ok[FZ_OP_SAVE]++;
}

/* Bring the destination into RESUMING, from where it is if it can. */
static bool mig_to_resuming(struct mg *self, struct fuzz *f)
{
	struct mstate *s = &self->ms[1];
	bool either;

	if (ms_predict(s, MIGDEV_V1_RESUMING, &either) || s->state == MIGDEV_V1_RESUMING)
		mig_reset(f, &self->dev[1], s, &self->m[1]);
	return !mig_write_state(f, &self->dev[1], s, MIGDEV_V1_RESUMING);
}

/*
 * One chunk into the destination: data_offset, the data (@at bytes off
 * where it belongs; through the mmap of the data section if @map), then
 * data_size.
 */
static int resume_one(struct migdev *md, const uint8_t *data, uint64_t size,
		      uint64_t at, uint8_t *map)
{
	uint64_t off = mig_read64(md, MIGDEV_HDR_DATA_OFFSET), n;
	int ret;

	if (off != 4096)
		return -EPROTO;
	if (size && size <= MIGDEV_DATA_SIZE) {
		n = at + size > MIGDEV_DATA_SIZE ? MIGDEV_DATA_SIZE - at : size;
		if (map) {
			memcpy(map + at, data, n);
		} else {
			ret = mig_write(md, off + at, data, n);
			if (ret)
				return ret;
		}
	}
	return mig_write(md, MIGDEV_HDR_DATA_SIZE, &size, 8);
}

/* The valid stream, replayed as it was saved: the state arrives. */
static void mig_resume(struct mg *self, struct fuzz *f)
{
	struct migdev *md = &self->dev[1];
	struct mstate *s = &self->ms[1];
	uint8_t *map = fz_chance(f, 30) ? self->map : NULL;
	uint64_t size;
	size_t pos;

	fz_op(f, FZ_OP_RESUME, "%zu bytes from 0x%x%s", self->len, s->state,
	      map ? " through the mmap" : "");
	f->compound = true;
	if (!mig_to_resuming(self, f))
		return;
	for (pos = 0; pos < self->len && !f->failed; pos += 8 + size) {
		memcpy(&size, self->stream + pos, 8);
		FZ_EXPECT_RET(f, resume_one(md, self->stream + pos + 8, size, 0, map), 0);
		s->loaded |= !!size;
	}
	s->done = 1;
	if (mig_write_state(f, md, s, MIGDEV_V1_RUNNING))
		return;
	FZ_EXPECT_RET(f, migdev_state(md, self->state), 0);
	FZ_CHECK(f, !memcmp(self->snap, self->state, MIGDEV_STATE_BYTES),
		 "the resumed device state differs from the saved one");
	mig_sane(f, md, &self->m[1]);
	if (!f->failed)
		f->ok[FZ_OP_RESUME]++;
}

/*
 * A stream gone wrong: random bytes, flipped bytes, cut short, a chunk
 * too large or at the wrong offset, or something after the end.  Each
 * call fails with an errno the protocol allows, a failed chunk leaves the
 * device in the error state, and a reset brings it back, working.
 */
static void mig_resume_bad(struct mg *self, struct fuzz *f)
{
	struct migdev *md = &self->dev[1];
	struct mstate *s = &self->ms[1];
	int kind = fz_below(f, self->len ? 6 : 1), ret = 0, i;
	size_t pos, len = self->len, cut = ~0UL;
	uint64_t size, flips[8] = { 0 }, at;
	uint8_t *chunk = self->scratch;

	if (kind == 1) {
		for (i = 0; i < 8; i++)
			flips[i] = fz_below(f, len);
	} else if (kind == 2) {
		cut = fz_below(f, len);
	}
	fz_op(f, FZ_OP_RESUME_BAD, "kind %d from 0x%x, stream %zu bytes, cut %zd",
	      kind, s->state, len, (ssize_t)cut);
	f->compound = true;
	if (!mig_to_resuming(self, f))
		return;
	for (i = kind ? -1 : fz_below(f, 3); i >= 0 && !ret; i--) {
		uint64_t j;

		/* random chunks, some with the right record types */
		size = fz_chance(f, 80) ? fz_below(f, 9000) : fz_below(f, MIGDEV_DATA_SIZE + 2);
		for (j = 0; j < size && j < MIGDEV_DATA_SIZE; j++)
			chunk[j] = fz_chance(f, 50) ? fz_rnd(f) : fz_below(f, 4);
		ret = resume_one(md, chunk, size, 0, NULL);
		if (ret == -EINVAL && size > MIGDEV_DATA_SIZE) {
			/* refused before anything was loaded */
			FZ_CHECK(f, mig_state(md) == MIGDEV_V1_RESUMING, "state 0x%x",
				 mig_state(md));
			ret = 0;
		} else if (!ret && size) {
			s->loaded = true;
			s->done = -1;
		}
	}
	for (pos = 0; kind && pos < len && !ret; pos += 8 + size) {
		bool last;

		memcpy(&size, self->stream + pos, 8);
		last = cut >= pos && cut < pos + 8 + size;
		memcpy(chunk, self->stream + pos + 8, size);
		for (i = 0; kind == 1 && i < 8; i++)
			if (flips[i] >= pos + 8 && flips[i] < pos + 8 + size)
				chunk[flips[i] - pos - 8] ^= 1 << fz_below(f, 8);
		at = kind == 4 && fz_chance(f, 40) ? 8 * (1 + fz_below(f, 16)) : 0;
		if (kind == 3 && fz_chance(f, 50)) {
			/* too large: refused, nothing changes; then the real one */
			uint64_t big = MIGDEV_DATA_SIZE + 1 + fz_below(f, 4096);

			ret = resume_one(md, chunk, big, 0, NULL);
			FZ_EXPECT_RET(f, ret, -EINVAL);
			FZ_CHECK(f, mig_state(md) == MIGDEV_V1_RESUMING,
				 "state 0x%x after a chunk too large", mig_state(md));
		}
		if (last)
			size = cut > pos + 8 ? cut - pos - 8 : 0;
		ret = resume_one(md, chunk, size, at, fz_chance(f, 20) ? self->map : NULL);
		if (!ret && size) {
			s->loaded = true;
			s->done = -1;
		}
		if (last)
			break;
	}
	if ((kind == 3 || kind == 5) && !ret) {
		/* the stream as it was saved, whole */
		s->done = 1;
		FZ_EXPECT_RET(f, migdev_state(md, self->state), 0);
		FZ_CHECK(f, !memcmp(self->snap, self->state, MIGDEV_STATE_BYTES),
			 "the resumed device state differs from the saved one");
	}
	if (kind == 5 && !ret) {
		/* the stream ended: one more chunk is refused */
		ret = resume_one(md, self->stream + 8, 8 + fz_below(f, 4096), 0, NULL);
		FZ_EXPECT_RET(f, ret, -EINVAL);
	} else if (ret) {
		FZ_EXPECT_RET2(f, ret, -EINVAL, -EIO);
	}
	if (ret) {
		s->state = MIGDEV_V1_ERROR;
		FZ_CHECK(f, mig_state(md) == MIGDEV_V1_ERROR,
			 "device_state 0x%x after a bad chunk, expected the error state",
			 mig_state(md));
	}
	mig_write_state(f, md, s, MIGDEV_V1_RUNNING);
	if (s->state != MIGDEV_V1_RUNNING)
		mig_reset(f, md, s, &self->m[1]);
	mig_sane(f, md, &self->m[1]);
	if (!f->failed)
		f->ok[FZ_OP_RESUME_BAD]++;
}

static void mig_dma(struct mg *self, struct fuzz *f, int d)
{
	uint64_t iova = FZ_WIN_IOVA + fz_below(f, FZ_DEV_PAGES * VFIO_MIG_PAGE_4K - 64);
	uint64_t len = 1 + fz_below(f, 64);
	uint32_t seed = fz_rnd(f);
	int ret;

	fz_op(f, FZ_OP_DMA, "dev %d state 0x%x rw 0x%llx 0x%llx", d,
	      self->ms[d].state, (unsigned long long)iova,
	      (unsigned long long)len);
	ret = fz_dma(&self->dev[d], FZ_DMA_RW, iova, len, seed);
	FZ_EXPECT_RET(f, ret, self->ms[d].state & MIGDEV_V1_RUNNING ? 0 : -EBUSY);
	if (!ret)
		m_check_data(f, &self->m[d], iova, len, seed);
}

static void mig_step(struct mg *self, struct fuzz *f)
{
	uint64_t r = fz_below(f, 1000);
	int d = fz_below(f, 2);

	if (r < 380) {
		mig_access(self, f, d);
	} else if (r < 400) {
		mig_mmap(self, f, d);
	} else if (r < 550) {
		mig_state_op(self, f, d);
	} else if (r < 620) {
		mig_data(self, f, d);
	} else if (r < 680) {
		mig_dma(self, f, d);
	} else if (r < 720) {
		fz_op(f, FZ_OP_RESET, "dev %d state 0x%x", d, self->ms[d].state);
		f->compound = true;
		mig_reset(f, &self->dev[d], &self->ms[d], &self->m[d]);
		mig_sane(f, &self->dev[d], &self->m[d]);
		if (!f->failed)
			f->ok[FZ_OP_RESET]++;
	} else if (r < 780 || !self->len) {
		mig_save(self, f);
	} else if (r < 860) {
		mig_resume(self, f);
	} else {
		mig_resume_bad(self, f);
	}
}

TEST_F_TIMEOUT(mig, fuzz, FZ_TIMEOUT)
{
	struct fuzz *f = &self->s.f;
	double t0 = fz_now_ms();
	static const struct fz_need need[] = {
		{ FZ_OP_SAVE, 30 },
		{ FZ_OP_RESUME, 30 },
		{ FZ_OP_HDR_READ, 60 },
		{ FZ_OP_STATE, 20 },
		{ FZ_OP_DMA, 20 },
		{ 0, 0 },
	};
	int d;

	fz_init(f, "migration", 5000);
	while (fz_more(f))
		mig_step(&self->s, f);
	for (d = 0; d < 2 && !f->failed; d++) {
		fz_op(f, FZ_OP_RESET, "dev %d at the end", d);
		f->compound = true;
		mig_reset(f, &self->s.dev[d], &self->s.ms[d], &self->s.m[d]);
		mig_sane(f, &self->s.dev[d], &self->s.m[d]);
		if (!f->failed)
			f->ok[FZ_OP_RESET]++;
	}
	EXPECT_EQ(0, f->failed);
	EXPECT_TRUE(fz_finish(f, t0, need));
}

TEST_HARNESS_MAIN
