// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VM of the vIOMMU migration (viommu-migration.py): a bare-metal
 * multiboot kernel (32-bit, no paging) on QEMU's q35 with intel-iommu
 * (caching-mode=on) and a migdev.  It programs the VT-d remapping tables
 * itself, so that QEMU mirrors each of its 4 KiB IOVA mappings into the
 * VFIO container, and it drives migdev's DMA engine through BAR0.
 *
 * Command line (multiboot): "n=MAPPINGS r=ROUNDS k=WRITES u=UNMAPS".
 *   IOVA 1 GiB + 8 KiB * i  ->  guest page 16 MiB + 4 KiB * i,  i < n
 * A gap follows each mapping, so no two are contiguous.  The guest fills
 * every page with its own pattern, enables translation and says
 * "ready n=N" on COM1.  Then it waits for a command on COM1:
 *   g  (the host sends it once pre-copy is past its first pass) r rounds,
 *      each: the device writes k whole pages (even ones through
 *      vfio_pin_pages(), odd ones through vfio_dma_rw()), and the first u
 *      of them are unmapped (R and W cleared, page-selective invalidation)
 *      right after the device wrote them, and mapped again; "round R"
 *      after each and "done W U" at the end.
 *   v  (on the destination, after the switchover) check every page
 *      against what the device and the CPU wrote, run one more DMA per path
 *      (one into a page that was unmapped and mapped again) and check it,
 *      and say "verify n=N written=W badpages=P badwords=B first=I
 *      dma=ok|fail".
 * In between it keeps writing 16 pages of its own: guest CPU writes
 * migrate too.
 *
 * QEMU 7.2 under TCG misses guest CPU writes through soft TLB entries that
 * outlive a migration bitmap sync, so the TLB is flushed (CR0.WP toggled)
 * before every write the destination depends on and in every wait loop.
 *
 * Built by tooling/build: gcc -m32 -ffreestanding -nostdlib (see there).
 */
#include <stdint.h>

#include "../../samples/vfio-mdev/migdev.h"

asm(".text\n"
    ".align 4\n"
    ".long 0x1badb002, 0, -0x1badb002\n"	/* multiboot: magic, flags, sum */
    ".globl _start\n"
    "_start:\n"
    "	mov $0x80000, %esp\n"
    "	push %ebx\n"				/* multiboot information */
    "	call guest_main\n"
    "1:	hlt\n"
    "	jmp 1b\n");


#define DMAR_BASE	0xfed90000u	/* q35's intel-iommu */
#define DMAR_CAP	0x08
#define DMAR_ECAP	0x10
#define DMAR_GCMD	0x18
#define DMAR_GSTS	0x1c
#define DMAR_RTADDR	0x20
#define DMAR_FSTS	0x34
#define DMAR_IQH	0x80
#define DMAR_IQT	0x88
#define DMAR_IQA	0x90
#define GCMD_TE		(1u << 31)
#define GCMD_SRTP	(1u << 30)
#define GCMD_QIE	(1u << 26)
#define CAP_CM		(1u << 7)
#define ECAP_QI		(1u << 1)

#define QUEUE		0x3f0000u	/* invalidation queue: 256 descriptors */
#define QSTATUS		0x3f1000u	/* written by its wait descriptors */
#define ROOT_TABLE	0x400000u
#define CONTEXT_TABLE	0x401000u
#define SL_L3		0x402000u	/* 39-bit address width: 3 levels */
#define SL_L2		0x403000u
#define SL_L1		0x404000u	/* n / 256 tables */
#define GEN		0x800000u	/* u32 per page: seed of its content */
#define NOISE		0xc00000u	/* 16 pages the guest keeps writing */
#define DATA		0x1000000u
#define IOVA_BASE	0x40000000u
#define MAX_N		24576		/* data up to 112 MiB: -m 128 */
#define DID		1

#define PAGE		4096u
#define PTE_RW		3u

static uint32_t n, rounds, writes, unmaps, bar0, qtail, qseq;
static const char *cmdline_start;

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t rd32(uint32_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void wr32(uint32_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

/* Flush QEMU's soft TLB: the next write to any page is seen by migration. */
static inline void tlb_flush(void)
{
	uint32_t cr0;

	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	asm volatile("mov %0, %%cr0" : : "r"(cr0 ^ 0x10000) : "memory");
	asm volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
}

/* A write the destination must see. */
static inline void keep32(uint32_t addr, uint32_t v)
{
	tlb_flush();
	wr32(addr, v);
}

static void putc(char c)
{
	while (!(inb(0x3fd) & 0x20))
		;
	outb(0x3f8, c);
}

static void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void putu(uint32_t v)
{
	char b[12];
	int i = 0;

	do {
		b[i++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (i)
		putc(b[--i]);
}

static void putx(uint32_t v)
{
	int i;

	puts("0x");
	for (i = 28; i >= 0; i -= 4)
		putc("0123456789abcdef"[(v >> i) & 15]);
}

static int getc_nowait(void)
{
	return (inb(0x3fd) & 1) ? inb(0x3f8) : -1;
}

static void fail(const char *what, uint32_t v)
{
	puts("FAIL ");
	puts(what);
	putc(' ');
	putx(v);
	putc('\n');
	for (;;)
		asm volatile("cli; hlt");
}

static uint32_t pci_read(uint32_t devfn, uint32_t off)
{
	outl(0xcf8, 0x80000000u | devfn << 8 | off);
	return inl(0xcfc);
}

static void find_migdev(void)
{
	uint32_t devfn;

	for (devfn = 0; devfn < 256; devfn++) {
		if (pci_read(devfn, 0) != (MIGDEV_DEVICE << 16 | MIGDEV_VENDOR))
			continue;
		bar0 = pci_read(devfn, 0x10) & ~0xfu;
		if (!bar0)
			fail("migdev's BAR0 is not assigned", 0);
		outl(0xcf8, 0x80000000u | devfn << 8 | 4);
		outw(0xcfc, 0x6);		/* memory space, bus master */
		return;
	}
	fail("no migdev on bus 0", 0);
}

/* The number after "@key=" in the command line, or @def. */
static uint32_t parse(const char *s, char key, uint32_t def)
{
	uint32_t v;

	for (; *s; s++) {
		if (*s != key || s[1] != '=' || (s != cmdline_start && s[-1] != ' '))
			continue;
		for (v = 0, s += 2; *s >= '0' && *s <= '9'; s++)
			v = v * 10 + *s - '0';
		return v;
	}
	return def;
}

static inline uint32_t iova(uint32_t i)
{
	return IOVA_BASE + i * 2 * PAGE;
}

static inline uint32_t page(uint32_t i)
{
	return DATA + i * PAGE;
}

static inline uint32_t pte(uint32_t i)
{
	uint32_t va = iova(i) - IOVA_BASE;	/* within one 1 GiB entry */

	return SL_L1 + (va >> 21) * PAGE + ((va >> 12) & 511) * 8;
}

static void fill(uint32_t addr, uint32_t seed)
{
	uint32_t k;

	for (k = 0; k < PAGE / 4; k++)
		wr32(addr + 4 * k, seed + k);
}

/* Words of page @i that differ from its expected content. */
static uint32_t check(uint32_t i)
{
	uint32_t seed = rd32(GEN + 4 * i), k, bad = 0;

	for (k = 0; k < PAGE / 4; k++)
		bad += rd32(page(i) + 4 * k) != seed + k;
	return bad;
}

static void dmar_wait(uint32_t reg, uint32_t bit, uint32_t want, const char *what)
{
	uint32_t t;

	for (t = 0; t < 10000000; t++)
		if ((rd32(DMAR_BASE + reg) & bit) == want)
			return;
	fail(what, rd32(DMAR_BASE + reg));
}

static void gcmd(uint32_t bit)
{
	/* GCMD takes the state of every enable bit: keep what is on */
	wr32(DMAR_BASE + DMAR_GCMD, (rd32(DMAR_BASE + DMAR_GSTS) & 0x96ffffffu) | bit);
	dmar_wait(DMAR_GSTS, bit, bit, "gcmd");
}

/*
 * The invalidation queue.  All changes to the remapping tables after
 * translation is on go through it: a wait descriptor with status write
 * makes the IOMMU itself write the entry, and the invalidation follows in
 * the same submission.  QEMU 7.2 processes a submission whole under its
 * big lock, while its dirty sync rebuilds its shadow of the tables from
 * guest memory (vtd_iommu_replay(), under the same lock): an entry the CPU
 * changed but had not invalidated yet would drop out of the shadow there,
 * and QEMU would then skip the UNMAP_DMA of the invalidation and fail the
 * next MAP_DMA of that IOVA with -EEXIST.
 */
static void qi_put(uint32_t lo, uint32_t lo_hi, uint32_t hi)
{
	uint32_t d = QUEUE + qtail * 16;

	wr32(d, lo);
	wr32(d + 4, lo_hi);
	wr32(d + 8, hi);
	wr32(d + 12, 0);
	qtail = (qtail + 1) & 255;
}

/* Wait descriptor, status write: the IOMMU writes @data at @addr. */
static void qi_write(uint32_t addr, uint32_t data)
{
	qi_put(0x5 | 1u << 5, data, addr);
}

/* IOTLB invalidation: granularity 1 (global) or 3 (page @addr of domain DID) */
static void qi_iotlb(uint32_t gran, uint32_t addr)
{
	qi_put(0x2 | gran << 4 | (gran == 3 ? DID << 16 : 0), 0, addr);
}

/* Hand the queued descriptors to the IOMMU; they are done on return. */
static void qi_submit(void)
{
	qi_write(QSTATUS, ++qseq);
	wr32(DMAR_BASE + DMAR_IQT, qtail * 16);
	if (rd32(QSTATUS) != qseq || rd32(DMAR_BASE + DMAR_IQH) != qtail * 16)
		fail("invalidation queue", rd32(DMAR_BASE + DMAR_FSTS));
}

static void setup_iommu(void)
{
	uint32_t i, cap = rd32(DMAR_BASE + DMAR_CAP);

	if (!(cap & CAP_CM))
		fail("intel-iommu without caching-mode", cap);
	if (!(cap & (1u << 9)))		/* SAGAW: 39-bit, 3-level tables */
		fail("no 3-level second-level tables", cap);
	if (!(rd32(DMAR_BASE + DMAR_ECAP) & ECAP_QI))
		fail("no queued invalidation", rd32(DMAR_BASE + DMAR_ECAP));

	for (i = ROOT_TABLE; i < SL_L1 + (MAX_N / 256 + 1) * PAGE; i += 4)
		wr32(i, 0);
	wr32(ROOT_TABLE, CONTEXT_TABLE | 1);			/* bus 0 */
	for (i = 0; i < 256; i++) {				/* every devfn */
		wr32(CONTEXT_TABLE + 16 * i, SL_L3 | 1);	/* present, TT 0 */
		wr32(CONTEXT_TABLE + 16 * i + 8, 1 | DID << 8);	/* AW 39 bits */
	}
	wr32(SL_L3 + (IOVA_BASE >> 30) * 8, SL_L2 | PTE_RW);
	for (i = 0; i <= (iova(n - 1) - IOVA_BASE) >> 21; i++)
		wr32(SL_L2 + i * 8, (SL_L1 + i * PAGE) | PTE_RW);
	for (i = 0; i < n; i++)
		wr32(pte(i), page(i) | PTE_RW);

	wr32(DMAR_BASE + DMAR_IQA, QUEUE);			/* 4 KiB, 128-bit */
	wr32(DMAR_BASE + DMAR_IQA + 4, 0);
	wr32(DMAR_BASE + DMAR_IQT, 0);
	gcmd(GCMD_QIE);
	wr32(DMAR_BASE + DMAR_RTADDR, ROOT_TABLE);
	wr32(DMAR_BASE + DMAR_RTADDR + 4, 0);
	gcmd(GCMD_SRTP);
	qi_put(0x1 | 1u << 4, 0, 0);		/* context cache, global */
	qi_iotlb(1, 0);
	qi_submit();
	gcmd(GCMD_TE);		/* QEMU now maps every present entry */
}

/*
 * The device writes page @i whole with @seed, through @cmd; 0 or the
 * device's -errno.  MIGDEV_REG_DMA_COUNT also counts what the host does to the
 * device through debugfs, so the write is done when the page shows it.
 */
static int32_t dma(uint32_t cmd, uint32_t i, uint32_t seed)
{
	uint32_t t, last = page(i) + PAGE - 4;
	int32_t status;

	wr32(bar0 + MIGDEV_REG_DMA_ADDR, iova(i));
	wr32(bar0 + MIGDEV_REG_DMA_ADDR + 4, 0);
	wr32(bar0 + MIGDEV_REG_DMA_LEN, PAGE);
	wr32(bar0 + MIGDEV_REG_DMA_SEED, seed);
	wr32(bar0 + MIGDEV_REG_DMA_CMD, cmd);
	for (t = 0; t < 1000000; t++) {		/* ~100 polls when all is well */
		status = rd32(bar0 + MIGDEV_REG_DMA_STATUS);
		if (status)
			return status;
		if (rd32(page(i)) == seed && rd32(last) == seed + PAGE / 4 - 1)
			return 0;
		tlb_flush();
	}
	fail("DMA timed out", cmd);
	return -1;
}

/* The device writes page @i whole with @seed; the guest notes it. */
static void device_write(uint32_t i, uint32_t cmd, uint32_t seed)
{
	int32_t ret = dma(cmd, i, seed);

	if (ret)
		fail(cmd == MIGDEV_CMD_WRITE_PIN ? "pin DMA" : "rw DMA", ret);
	keep32(GEN + 4 * i, seed);
}

/* The IOMMU writes the entry of page @i and invalidates it, in one go. */
static void set_pte(uint32_t i, uint32_t v)
{
	qi_write(pte(i), v);
	qi_iotlb(3, iova(i));
	qi_submit();
}

static uint32_t noise;

static void make_noise(void)
{
	uint32_t p = NOISE + (noise & 15) * PAGE;

	tlb_flush();
	wr32(p + (noise >> 4 & 1023) * 4, noise);
	noise++;
}

static uint32_t pick(uint32_t r, uint32_t k)
{
	return (r * 7919 + k * 313) % n;
}

static void run_rounds(void)
{
	uint32_t r, k, i, done = 0, unmapped = 0;

	for (r = 0; r < rounds; r++) {
		for (k = 0; k < writes; k++) {
			i = pick(r, k);
			device_write(i, k & 1 ? MIGDEV_CMD_WRITE_RW : MIGDEV_CMD_WRITE_PIN,
				     0x80000000u | r << 16 | k);
			done++;
			/*
			 * Unmapped at once: the page's dirty bit goes with the
			 * unmap, unless a dirty sync came in between.  The
			 * entry keeps its address without R and W: QEMU 7.2
			 * marks the bitmap of UNMAP_DMA at the address its
			 * vIOMMU reads from the entry that is no longer
			 * present (vfio_dma_unmap_bitmap() takes the unmap
			 * notification's translated_addr), so an entry cleared
			 * to 0 would have the page's dirty bit land on page 0.
			 */
			if (k < unmaps) {
				set_pte(i, page(i));
				set_pte(i, page(i) | PTE_RW);
				unmapped++;
			}
			make_noise();
		}
		puts("round ");
		putu(r + 1);
		putc('\n');
	}
	puts("done ");
	putu(done);
	putc(' ');
	putu(unmapped);
	putc('\n');
}

static void verify(void)
{
	uint32_t i, bad = 0, badpages = 0, first = 0, written = 0;
	uint32_t after[2] = { pick(0, 0), n - 1 }, dma_ok = 1;

	for (i = 0; i < n; i++) {
		uint32_t b = check(i);

		written += rd32(GEN + 4 * i) >> 31;
		if (b && !badpages++)
			first = i;
		bad += b;
	}
	/* after the switchover: one DMA per path, through the moved mappings */
	for (i = 0; i < 2; i++) {
		uint32_t seed = 0xc0000000u | i;

		if (dma(i ? MIGDEV_CMD_WRITE_RW : MIGDEV_CMD_WRITE_PIN, after[i], seed)) {
			dma_ok = 0;
			continue;
		}
		keep32(GEN + 4 * after[i], seed);
		if (check(after[i]))
			dma_ok = 0;
	}
	puts("verify n=");
	putu(n);
	puts(" written=");
	putu(written);
	puts(" badpages=");
	putu(badpages);
	puts(" badwords=");
	putu(bad);
	puts(" first=");
	putu(first);
	puts(dma_ok ? " dma=ok\n" : " dma=fail\n");
}

struct multiboot_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

void guest_main(struct multiboot_info *mb);

void guest_main(struct multiboot_info *mb)
{
	const char *cmdline = (mb->flags & 4) ? (const char *)mb->cmdline : "";
	uint32_t i;
	int c;

	cmdline_start = cmdline;
	n = parse(cmdline, 'n', 1000);
	rounds = parse(cmdline, 'r', 4);
	writes = parse(cmdline, 'k', 16);
	unmaps = parse(cmdline, 'u', 8);
	if (!n || n > MAX_N)
		fail("n out of range", n);
	find_migdev();
	for (i = 0; i < n; i++) {
		fill(page(i), i << 12);
		wr32(GEN + 4 * i, i << 12);
	}
	setup_iommu();
	puts("ready n=");
	putu(n);
	putc('\n');
	for (;;) {
		c = getc_nowait();
		if (c == 'g')
			run_rounds();
		else if (c == 'v')
			verify();
		make_noise();
	}
}
