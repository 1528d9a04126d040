/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The fixture of the pinned-page tests (vfio_dirty_pin_test.c) and of
 * their fail-nth sweeps (vfio_dirty_fail_nth_test.c): migdev-1 instance 2
 * in its own type1 container, PIN_PAGES pages of memory mapped at PIN_IOVA
 * and tracked, and the helpers that check its reports.
 */
#ifndef __SELFTESTS_VFIO_DIRTY_PIN_H
#define __SELFTESTS_VFIO_DIRTY_PIN_H

#include "../kselftest_harness.h"

#include <vfio_mig_fail_nth.h>
#include <vfio_mig_migdev.h>

#define PIN_IOVA		0x100000ULL
#define PIN_PAGES		256ULL
#define PIN_SIZE		(PIN_PAGES * VFIO_MIG_PAGE_4K)
#define PIN_WORDS		(PIN_PAGES / 64)

/* PIN_SIZE bytes of zeroed memory mapped at PIN_IOVA in @container, tracked. */
static inline uint8_t *map_tracked(struct __test_metadata *_metadata, int container)
{
	uint8_t *buf = mmap(NULL, PIN_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0, PIN_SIZE);
	ASSERT_EQ(0, vfio_map(container, PIN_IOVA, buf, PIN_SIZE));
	ASSERT_EQ(0, vfio_dirty(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	return buf;
}

FIXTURE(pin) {
	struct migdev md;
	uint8_t *buf;
	uint64_t bitmap[PIN_WORDS];
	uint64_t want[PIN_WORDS];
};

FIXTURE_SETUP(pin)
{
	int ret = migdev_open(&self->md, 2);

	self->buf = MAP_FAILED;
	if (ret == -ENODEV)
		SKIP(return, "migdev: needs a third " MIGDEV_TYPE " mdev");
	ASSERT_EQ(0, ret);
	self->buf = map_tracked(_metadata, self->md.container);
}

FIXTURE_TEARDOWN(pin)
{
	migdev_close(&self->md);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, PIN_SIZE);
}

static inline void want_pages(uint64_t *want, uint64_t first, uint64_t n)
{
	uint64_t i;

	for (i = first; i < first + n; i++)
		want[i / 64] |= 1ULL << (i % 64);
}

/* GET_BITMAP of the whole mapping equals @want; @want is cleared. */
#define EXPECT_PIN_REPORT() do {						\
	unsigned int w;							\
	memset(self->bitmap, 0, sizeof(self->bitmap));			\
	ASSERT_EQ(0, vfio_get_bitmap(self->md.container, PIN_IOVA, PIN_SIZE,	\
				     VFIO_MIG_PAGE_4K, self->bitmap,		\
				     sizeof(self->bitmap)));		\
	for (w = 0; w < PIN_WORDS; w++) {					\
		EXPECT_EQ(self->want[w], self->bitmap[w]) {		\
			ksft_print_msg("word %u\n", w);			\
		}							\
	}								\
	memset(self->want, 0, sizeof(self->want));			\
} while (0)

/* The written bytes hold the pattern, and the bytes around them are 0. */
static inline bool memory_is(uint8_t *buf, uint64_t off, uint64_t len, uint32_t seed)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		if (buf[off + i] != migdev_pattern(i, seed))
			return false;
	return (!off || !buf[off - 1]) && (off + len == PIN_SIZE || !buf[off + len]);
}

/* Every bit of @must is set in @bitmap (@words u64 words). */
static inline bool bits_cover(const uint64_t *bitmap, const uint64_t *must,
			      uint64_t words)
{
	uint64_t i;

	for (i = 0; i < words; i++) {
		if ((bitmap[i] & must[i]) == must[i])
			continue;
		ksft_print_msg("word %llu is 0x%016llx: lacks 0x%016llx\n",
			       (unsigned long long)i, (unsigned long long)bitmap[i],
			       (unsigned long long)(must[i] & ~bitmap[i]));
		return false;
	}
	return true;
}

static inline void set_bit64(uint64_t *bitmap, uint64_t bit)
{
	bitmap[bit / 64] |= 1ULL << (bit % 64);
}

/*
 * The report of the last call of sweep @s (@bitmap, @words u64 words) must
 * cover @must; one that holds more after an absorbed failure is counted.
 */
static inline void pin_sweep_report(struct __test_metadata *_metadata,
				    struct fail_nth_sweep *s,
				    const uint64_t *bitmap,
				    const uint64_t *must, uint64_t words)
{
	ASSERT_TRUE(bits_cover(bitmap, must, words)) {
		ksft_print_msg("%s: allocation %d failed%s\n", s->name, s->n,
			       s->injected ? "" : " (none did)");
	}
	if (s->injected && memcmp(bitmap, must, words * 8))
		s->more++;
}

/* A second mapping, for the sweeps */
#define PIN_FAIL_IOVA	(PIN_IOVA + PIN_SIZE + (1ULL << 20))
#define PIN_FAIL_SIZE	(16 * VFIO_MIG_PAGE_4K)

#endif /* __SELFTESTS_VFIO_DIRTY_PIN_H */
