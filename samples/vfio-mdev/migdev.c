// SPDX-License-Identifier: GPL-2.0-only
/*
 * migdev: a mediated PCI device that can be live-migrated with the VFIO v1
 * migration region, and that writes guest memory so that the type1 dirty
 * page tracker has something to report.
 *
 * The device
 *   PCI 1234:1e55, 256 bytes of config space, no capabilities, no
 *   interrupts, BAR0: 4 KiB of registers (see REG_*).  It has 256 KiB of
 *   internal state that changes with every DMA command.
 *
 * The DMA engine writes the pattern "u32 word k of the transfer is seed + k"
 * (little endian) to guest IOVAs, through paths that feed the dirty
 * tracker differently:
 *   MIGDEV_CMD_WRITE_PIN  vfio_pin_pages() each page, kmap, write, unpin
 *   MIGDEV_CMD_WRITE_RW   vfio_dma_rw()
 *   MIGDEV_CMD_PIN        pin the pages and keep them pinned (a working set)
 *   MIGDEV_CMD_UNPIN      unpin the working set
 *   MIGDEV_CMD_WRITE_KEPT write into pages of the working set, which stay pinned
 *                  (-EFAULT, and nothing written, if one is not in it)
 * DMA needs the device open and running (-EBUSY otherwise).  Like a real
 * device's, it runs apart from the CPU that asked for it: in a kernel
 * thread of the device's own, one command at a time; vfio_dma_rw() reaches
 * the user's memory from there.
 * Every command the device runs ends in MIGDEV_REG_DMA_STATUS (0 or -errno), and
 * a successful one in MIGDEV_REG_DMA_COUNT.  Writing MIGDEV_REG_DMA_CMD rings the
 * doorbell: the command, address, length and seed are taken then, and the
 * guest may program the next command while this one waits or runs.  Before
 * the device leaves RUNNING it quiesces: a command started through BAR0
 * completes first.  While it is not running its registers and internal
 * state are frozen (they are migrated): BAR0 writes and debugfs "step"
 * fail with -EBUSY.  A command whose memory is unmapped under it stops
 * there with -EFAULT.
 *
 * Two mdev types: migdev-1 reports nothing of what its device writes, so
 * type1 counts the pages it pins as dirty at every report; migdev-precise
 * reports its writes (struct vfio_dirty_ops), so its pinned pages are
 * dirty only when written.  It reports a write through pages it unpins at
 * once, and notes a write into the working set in a small log, read out
 * with vfio_mark_dirty() when the log fills, before any unpin, and when
 * VFIO asks (dirty_ops->sync) before a dirty report, as a device with a
 * hardware log of its writes would.
 *
 * Host-side control, without a guest: debugfs, per device,
 * /sys/kernel/debug/migdev/<mdev uuid>/
 *   dma       write "pin|rw|keep|release|kept IOVA LEN SEED" (numbers in
 *             C notation): one DMA command; the write fails with its errno.
 *             Or "stride IOVA COUNT STRIDE SEED": COUNT (1 to 2^20) writes
 *             of 8 bytes with vfio_dma_rw(), at IOVA + k * STRIDE (STRIDE
 *             >= 8, the last byte below 2^64) for k = 0 .. COUNT - 1, write
 *             k being bytes 8k to 8k + 7 of a transfer seeded SEED: many
 *             scattered dirty pages in one go.  One command of the device
 *             (its status and count registers), in debugfs only: it has
 *             no MIGDEV_CMD_* number and BAR0 cannot start it.  It stops
 *             at the first write that fails, with that write's error (the
 *             writes before it stay), or with -EINTR when the writer gets
 *             a fatal signal; -EINVAL for bad arguments.
 *   report    write "IOVA LEN" (migdev-precise): the device reports it
 *             wrote that range, of any size, with vfio_mark_dirty(); the
 *             write fails with its errno (-EOPNOTSUPP on migdev-1, -EBUSY
 *             when the device is not open)
 *   step      write N: change N blocks of the internal state (-EBUSY
 *             unless the device is running)
 *   hold      write 1: a command rung through BAR0 waits, as behind an
 *             engine busy with other work, until 0 is written; leaving
 *             RUNNING, a reset and a close let it go (run or dropped)
 *   checksum  read: crc32 of the device state (registers and internal
 *             state), equal on source and destination after a migration
 *   state     read: the device state itself, registers then internal state
 *   pinned    read: number of pages in the working set
 *   logged    read: writes noted in the log and not reported yet
 *   saved     read: bytes of migration data handed out by the last save
 *   worker    read: pid (in the initial pid namespace) of the device's
 *             kernel thread, which makes every call into VFIO for a DMA
 *             command (to aim per-task fault injection,
 *             /proc/PID/task/PID/fail-nth, at them)
 *
 * The migration region (index VFIO_PCI_NUM_REGIONS, type 3, subtype 1)
 *   0x0000  header, trapped, natural-width accesses only
 *   0x1000  64 KiB data section, trapped and mmappable (sparse mmap cap)
 * The stream is a sequence of records, each a struct migdev_rec followed
 * by its payload: one per changed 4 KiB block of internal state (re-sent
 * when it changes again during pre-copy), the registers at stop-and-copy,
 * and an end record carrying the checksum, which the destination checks.
 * Every entry into SAVING starts a new stream, which carries the whole
 * state; its first record has REC_FIRST set.  A destination takes a new
 * stream after one it loaded, whole or not: QEMU 7.2 sends two when a VM
 * that was paused when its migration started is continued before the
 * switchover (010b -> 001b -> 000b -> 010b).  After an end record, a
 * record that does not start a stream is refused (-EINVAL).
 * Stop-and-copy cannot go back to pre-copy (-EINVAL): the registers have
 * been sent.  A destination that received part of a stream but not its
 * end record cannot leave RESUMING but for the error state (-EIO); one
 * that received nothing, or whole streams, can.  A data_size larger than
 * the data section is refused (-EINVAL) before anything is consumed: the
 * device stays in RESUMING.
 * Bits 3-31 of device_state are reserved: writing one is -EINVAL, they
 * read as 0.  Every open starts with a reset device.
 */

#include <linux/crc32.h>
#include <linux/debugfs.h>
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/kthread.h>
#include <linux/kernel.h>
#include <linux/mdev.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/pci_regs.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <linux/vmalloc.h>

#include "migdev.h"

#define MIGDEV_NAME		"migdev"
#define MIGDEV_MAX_DEVICES	8

#define MIGDEV_OFFSET_SHIFT	40
#define MIGDEV_OFFSET(index)	((u64)(index) << MIGDEV_OFFSET_SHIFT)
#define MIGDEV_OFFSET_MASK	(MIGDEV_OFFSET(1) - 1)

#define MIGDEV_CONFIG_SIZE	256
#define MIGDEV_MIG_INDEX	VFIO_PCI_NUM_REGIONS
#define MIGDEV_NUM_REGIONS	(MIGDEV_MIG_INDEX + 1)
#define MIGDEV_DATA_OFFSET	PAGE_SIZE
#define MIGDEV_MIG_SIZE		(MIGDEV_DATA_OFFSET + MIGDEV_DATA_SIZE)

#define MIGDEV_MAX_DMA		(4 << 20)
#define MIGDEV_MAX_PINNED	1024
#define MIGDEV_LOG_SIZE		16
#define MIGDEV_STRIDE_BYTES	8		/* bytes of each "stride" write */
#define MIGDEV_STRIDE_MAX	(1024 * 1024)	/* writes of one "stride" */

#define STATE_RUNNING		VFIO_DEVICE_STATE_V1_RUNNING
#define STATE_SAVING		VFIO_DEVICE_STATE_V1_SAVING
#define STATE_RESUMING		VFIO_DEVICE_STATE_V1_RESUMING
#define STATE_MASK		VFIO_DEVICE_STATE_MASK
#define STATE_ERROR		(STATE_SAVING | STATE_RESUMING)

/* A record of the migration stream. */
struct migdev_rec {
	__le32 type;
	__le32 arg;
};

enum { REC_BLOCK = 1, REC_REGS, REC_END };
#define REC_FIRST		BIT(31)	/* in type: a stream starts here */

#define REC_BLOCK_SIZE		(sizeof(struct migdev_rec) + MIGDEV_BLOCK)
#define REC_REGS_SIZE		(sizeof(struct migdev_rec) + MIGDEV_BAR0_SIZE)
#define REC_END_SIZE		sizeof(struct migdev_rec)

struct migdev {
	struct vfio_device vdev;
	struct mutex lock;		/* everything below */
	bool opened;
	u8 config[MIGDEV_CONFIG_SIZE];
	u8 regs[MIGDEV_BAR0_SIZE];
	u8 *state;			/* MIGDEV_STATE_SIZE */
	struct dentry *debugfs;

	/*
	 * Pinning.  pin_lock is held from vfio_pin_pages() until the page is
	 * recorded in the working set or unpinned again, and by dma_unmap(),
	 * so that dma_unmap() finds every page pinned in its range.  VFIO
	 * calls dma_unmap() without its iommu->lock, which vfio_pin_pages()
	 * takes under pin_lock.  Order: lock, pin_lock, VFIO's locks.
	 */
	struct mutex pin_lock;
	dma_addr_t pinned[MIGDEV_MAX_PINNED];	/* the working set */
	struct page *pinned_page[MIGDEV_MAX_PINNED];
	unsigned int npinned;
	/* migdev-precise: writes into the working set not reported yet */
	struct {
		u64 iova;
		u64 len;
	} log[MIGDEV_LOG_SIZE];
	unsigned int nlog;
	/* the command that pins, and whether its memory was unmapped */
	bool dma_active;
	bool dma_unmapped;
	u64 dma_iova;
	u64 dma_len;

	/* the device's DMA engine: a kernel thread running one command at a time */
	struct kthread_worker *worker;
	u32 worker_pid;
	/* a DMA command started by a BAR0 write, as it was at the doorbell */
	struct kthread_work bar_work;
	bool bar_busy;
	bool bar_held;			/* debugfs "hold": not started yet */
	u32 bar_cmd;
	u32 bar_len;
	u32 bar_seed;
	u64 bar_iova;

	/* the v1 migration region */
	u32 device_state;
	void *data;			/* the data section, vmalloc_user() */
	DECLARE_BITMAP(to_send, MIGDEV_BLOCKS);
	bool regs_to_send;
	bool end_to_send;
	bool first_to_send;		/* the next record starts the stream */
	bool chunk_ready;		/* a chunk waits for its acknowledgment */
	u64 chunk_len;
	u64 saved;			/* bytes acknowledged in this save */
	bool resume_loaded;		/* resuming: part of a stream loaded */
	bool resume_done;		/* resuming: its end record checked */
};

static struct migdev_parent {
	struct device dev;
	struct mdev_parent parent;
	struct mdev_type type;
	struct mdev_type precise_type;
	struct class *class;
	struct dentry *debugfs;
	atomic_t avail;
} migdev_parent;

static struct mdev_type *migdev_types[] = {
	&migdev_parent.type, &migdev_parent.precise_type,
};

static const struct vfio_device_ops migdev_ops;

static struct migdev *to_migdev(struct vfio_device *vdev)
{
	return container_of(vdev, struct migdev, vdev);
}

static u32 migdev_reg32(struct migdev *md, unsigned int off)
{
	return le32_to_cpup((__le32 *)(md->regs + off));
}

static void migdev_set_reg32(struct migdev *md, unsigned int off, u32 val)
{
	*(__le32 *)(md->regs + off) = cpu_to_le32(val);
}

static u32 migdev_checksum(struct migdev *md)
{
	return crc32_le(crc32_le(~0, md->regs, sizeof(md->regs)), md->state,
			MIGDEV_STATE_SIZE);
}

/* The internal state changes: @n blocks, chosen by the command counter. */
static void migdev_step(struct migdev *md, unsigned int n, u32 seed)
{
	unsigned int i, b;

	for (i = 0; i < n; i++) {
		u32 count = migdev_reg32(md, MIGDEV_REG_DMA_COUNT);
		__le32 *w;

		b = (count * 7 + i) % MIGDEV_BLOCKS;
		w = (__le32 *)(md->state + b * MIGDEV_BLOCK);
		w[i % (MIGDEV_BLOCK / 4)] = cpu_to_le32(seed ^ count ^ (i << 16));
		set_bit(b, md->to_send);
	}
}

static void migdev_reset_state(struct migdev *md)
{
	memset(md->regs, 0, sizeof(md->regs));
	migdev_set_reg32(md, MIGDEV_REG_ID, MIGDEV_ID);
	memset(md->state, 0, MIGDEV_STATE_SIZE);
	memset(md->data, 0, MIGDEV_DATA_SIZE);
	md->device_state = STATE_RUNNING;
	bitmap_zero(md->to_send, MIGDEV_BLOCKS);
	md->regs_to_send = false;
	md->end_to_send = false;
	md->first_to_send = false;
	md->chunk_ready = false;
	md->chunk_len = 0;
	md->resume_loaded = false;
	md->resume_done = false;
}

/* Fill @dst with the pattern, @pos bytes into a transfer seeded @seed. */
static void migdev_fill(u8 *dst, u64 pos, size_t len, u32 seed)
{
	size_t i;

	for (i = 0; i < len; i++, pos++)
		dst[i] = (seed + (u32)(pos / 4)) >> (8 * (pos % 4));
}

static bool migdev_precise(struct migdev *md)
{
	return md->vdev.dirty_ops;
}

/*
 * migdev-precise: report the writes of the log.  An entry that cannot be
 * reported stays for the next try, and the error is returned.
 */
static int migdev_log_flush(struct migdev *md)
{
	int ret;

	lockdep_assert_held(&md->pin_lock);
	while (md->nlog) {
		ret = vfio_mark_dirty(&md->vdev, md->log[md->nlog - 1].iova,
				      md->log[md->nlog - 1].len);
		if (ret)
			return ret;
		md->nlog--;
	}
	return 0;
}

/* A write into pages that stay pinned: into the log, reported later. */
static int migdev_log_write(struct migdev *md, u64 iova, u64 len)
{
	int ret;

	lockdep_assert_held(&md->pin_lock);
	if (!migdev_precise(md))
		return 0;
	if (md->nlog == MIGDEV_LOG_SIZE) {
		ret = migdev_log_flush(md);
		if (ret)
			return ret;
	}
	md->log[md->nlog].iova = iova;
	md->log[md->nlog].len = len;
	md->nlog++;
	return 0;
}

/* VFIO is about to build a dirty report: read the log out. */
static int migdev_dirty_sync(struct vfio_device *vdev)
{
	struct migdev *md = to_migdev(vdev);
	int ret;

	mutex_lock(&md->pin_lock);
	ret = migdev_log_flush(md);
	mutex_unlock(&md->pin_lock);
	return ret;
}

static const struct vfio_dirty_ops migdev_dirty_ops = {
	.sync = migdev_dirty_sync,
};

/*
 * Unpin the pages of the working set inside [iova, iova + len), after the
 * writes into them are reported (they are pinned until then: a report
 * cannot fail for want of a mapping).
 */
static void migdev_unpin_range_locked(struct migdev *md, u64 iova, u64 len)
{
	unsigned int i = 0;

	lockdep_assert_held(&md->pin_lock);
	if (migdev_log_flush(md))
		dev_warn_ratelimited(md->vdev.dev, "writes lost from the dirty log\n");
	md->nlog = 0;
	while (i < md->npinned) {
		dma_addr_t addr = md->pinned[i];

		if (addr >= iova && addr - iova < len) {
			vfio_unpin_pages(&md->vdev, addr, 1);
			md->npinned--;
			md->pinned[i] = md->pinned[md->npinned];
			md->pinned_page[i] = md->pinned_page[md->npinned];
		} else {
			i++;
		}
	}
}

static void migdev_unpin_all(struct migdev *md)
{
	mutex_lock(&md->pin_lock);
	migdev_unpin_range_locked(md, 0, U64_MAX);
	mutex_unlock(&md->pin_lock);
}

/* A command that pins [iova, iova + len) starts, or ends. */
static void migdev_pin_begin(struct migdev *md, u64 iova, u64 len)
{
	mutex_lock(&md->pin_lock);
	md->dma_active = true;
	md->dma_unmapped = false;
	md->dma_iova = iova;
	md->dma_len = len;
	mutex_unlock(&md->pin_lock);
}

static void migdev_pin_end(struct migdev *md)
{
	mutex_lock(&md->pin_lock);
	md->dma_active = false;
	mutex_unlock(&md->pin_lock);
}

static int migdev_dma_write_pin(struct migdev *md, u64 iova, u64 len, u32 seed)
{
	u64 done = 0;
	int ret = 0;

	migdev_pin_begin(md, iova, len);
	while (done < len && !ret) {
		u64 addr = iova + done;
		size_t off = offset_in_page(addr);
		size_t n = min_t(u64, PAGE_SIZE - off, len - done);
		struct page *page;
		void *va;

		mutex_lock(&md->pin_lock);
		if (md->dma_unmapped) {
			ret = -EFAULT;		/* the memory went away */
		} else {
			ret = vfio_pin_pages(&md->vdev, addr - off, 1,
					     IOMMU_READ | IOMMU_WRITE, &page);
			if (ret == 1) {
				va = kmap_local_page(page);
				migdev_fill(va + off, done, n, seed);
				kunmap_local(va);
				/* precise: reported before the unpin, at once */
				ret = migdev_precise(md) ?
				      vfio_mark_dirty(&md->vdev, addr, n) : 0;
				vfio_unpin_pages(&md->vdev, addr - off, 1);
			} else if (ret >= 0) {
				ret = -EFAULT;
			}
		}
		mutex_unlock(&md->pin_lock);
		done += n;
	}
	migdev_pin_end(md);
	return ret;
}

static int migdev_dma_write_rw(struct migdev *md, u64 iova, u64 len, u32 seed)
{
	u64 done = 0;
	u8 *buf;
	int ret = 0;

	buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	while (done < len && !ret) {
		/* a chunk may straddle a page boundary of the IOVA */
		size_t n = min_t(u64, PAGE_SIZE, len - done);

		migdev_fill(buf, done, n, seed);
		ret = vfio_dma_rw(&md->vdev, iova + done, buf, n, true);
		done += n;
	}
	kfree(buf);
	return ret;
}

static int migdev_dma_pin(struct migdev *md, u64 iova, u64 len)
{
	u64 addr;
	int ret = 0;

	migdev_pin_begin(md, iova, len);
	for (addr = iova & PAGE_MASK; addr < iova + len && !ret; addr += PAGE_SIZE) {
		struct page *page;

		mutex_lock(&md->pin_lock);
		if (md->dma_unmapped) {
			ret = -EFAULT;
		} else if (md->npinned == MIGDEV_MAX_PINNED) {
			ret = -ENOSPC;
		} else {
			ret = vfio_pin_pages(&md->vdev, addr, 1,
					     IOMMU_READ | IOMMU_WRITE, &page);
			if (ret == 1) {
				md->pinned[md->npinned] = addr;
				md->pinned_page[md->npinned++] = page;
				ret = 0;
			} else if (ret >= 0) {
				ret = -EFAULT;
			}
		}
		mutex_unlock(&md->pin_lock);
	}
	migdev_pin_end(md);
	return ret;
}

/* The page of the working set at @addr (page aligned), or NULL. */
static struct page *migdev_kept_page(struct migdev *md, u64 addr)
{
	unsigned int i;

	for (i = 0; i < md->npinned; i++)
		if (md->pinned[i] == addr)
			return md->pinned_page[i];
	return NULL;
}

/*
 * Write into pages of the working set, which stay pinned: the device
 * writes pages VFIO counts as dirty at every report, unless the driver
 * reports what it writes.
 */
static int migdev_dma_write_kept(struct migdev *md, u64 iova, u64 len,
				 u32 seed)
{
	u64 addr, done = 0;
	int ret = 0;

	mutex_lock(&md->pin_lock);
	for (addr = iova & PAGE_MASK; addr < iova + len; addr += PAGE_SIZE) {
		if (!migdev_kept_page(md, addr)) {
			ret = -EFAULT;
			goto out;
		}
	}
	while (done < len) {
		u64 a = iova + done;
		size_t off = offset_in_page(a);
		size_t n = min_t(u64, PAGE_SIZE - off, len - done);
		void *va = kmap_local_page(migdev_kept_page(md, a - off));

		migdev_fill(va + off, done, n, seed);
		kunmap_local(va);
		done += n;
	}
	ret = migdev_log_write(md, iova, len);
out:
	mutex_unlock(&md->pin_lock);
	return ret;
}

static int migdev_dma_run(struct migdev *md, u32 cmd, u64 iova, u64 len,
			  u32 seed)
{
	if (cmd != MIGDEV_CMD_UNPIN && (!len || len > MIGDEV_MAX_DMA || iova + len < iova))
		return -EINVAL;

	switch (cmd) {
	case MIGDEV_CMD_WRITE_PIN:
		return migdev_dma_write_pin(md, iova, len, seed);
	case MIGDEV_CMD_WRITE_RW:
		return migdev_dma_write_rw(md, iova, len, seed);
	case MIGDEV_CMD_PIN:
		return migdev_dma_pin(md, iova, len);
	case MIGDEV_CMD_UNPIN:
		migdev_unpin_all(md);
		return 0;
	case MIGDEV_CMD_WRITE_KEPT:
		return migdev_dma_write_kept(md, iova, len, seed);
	}
	return -EINVAL;
}

/*
 * debugfs "stride": @n writes of MIGDEV_STRIDE_BYTES with vfio_dma_rw(),
 * @stride bytes apart from @iova; write k carries bytes 8k to 8k + 7 of a
 * transfer seeded @seed.  The first write that fails ends it with its
 * error, and the writes before it stay; so does a fatal signal of
 * @waiter, the task that asked for it and waits for it (-EINTR).
 */
static int migdev_dma_stride(struct migdev *md, u64 iova, u64 n, u64 stride,
			     u32 seed, struct task_struct *waiter)
{
	u8 buf[MIGDEV_STRIDE_BYTES];
	u64 k, span, last;
	int ret;

	/* the last byte of the last write must not wrap around */
	if (!n || n > MIGDEV_STRIDE_MAX || stride < MIGDEV_STRIDE_BYTES ||
	    check_mul_overflow(n - 1, stride, &span) ||
	    check_add_overflow(span, (u64)MIGDEV_STRIDE_BYTES - 1, &span) ||
	    check_add_overflow(iova, span, &last))
		return -EINVAL;
	for (k = 0; k < n; k++) {
		if (fatal_signal_pending(waiter))
			return -EINTR;
		migdev_fill(buf, k * MIGDEV_STRIDE_BYTES, sizeof(buf), seed);
		ret = vfio_dma_rw(&md->vdev, iova + k * stride, buf, sizeof(buf),
				  true);
		if (ret)
			return ret;
		cond_resched();
	}
	return 0;
}

static bool migdev_dma_ready(struct migdev *md)
{
	return md->opened && (md->device_state & STATE_RUNNING);
}

/* A command ran and returned @ret: its result lands in the registers. */
static int migdev_dma_done(struct migdev *md, int ret, u32 seed)
{
	migdev_set_reg32(md, MIGDEV_REG_DMA_STATUS, ret);
	if (!ret) {
		migdev_step(md, 1, seed);
		migdev_set_reg32(md, MIGDEV_REG_DMA_COUNT,
				 migdev_reg32(md, MIGDEV_REG_DMA_COUNT) + 1);
	}
	return ret;
}

/*
 * One DMA command; md->lock held.  A device that is not running refuses it
 * and its registers stay as they are; otherwise its result lands in them.
 */
static int migdev_dma(struct migdev *md, u32 cmd, u64 iova, u64 len, u32 seed)
{
	if (!migdev_dma_ready(md))
		return -EBUSY;
	return migdev_dma_done(md, migdev_dma_run(md, cmd, iova, len, seed),
			       seed);
}

/*
 * A DMA command to run in the device's kernel thread: @cmd, or, when
 * @strided, debugfs "stride" (@len writes, @stride bytes apart).
 */
struct migdev_cmd {
	struct kthread_work work;
	struct migdev *md;
	struct task_struct *waiter;	/* waits in migdev_cmd_sync() */
	bool strided;
	u32 cmd;
	u32 seed;
	u64 iova;
	u64 len;
	u64 stride;
	int ret;
};

static void migdev_cmd_work(struct kthread_work *work)
{
	struct migdev_cmd *c = container_of(work, struct migdev_cmd, work);
	struct migdev *md = c->md;
	int ret;

	mutex_lock(&md->lock);
	if (!c->strided) {
		c->ret = migdev_dma(md, c->cmd, c->iova, c->len, c->seed);
	} else if (!migdev_dma_ready(md)) {
		c->ret = -EBUSY;
	} else {
		ret = migdev_dma_stride(md, c->iova, c->len, c->stride, c->seed,
					c->waiter);
		c->ret = migdev_dma_done(md, ret, c->seed);
	}
	mutex_unlock(&md->lock);
}

/* Run @c in the device's kernel thread and wait; md->lock must not be held. */
static int migdev_cmd_sync(struct migdev *md, struct migdev_cmd *c)
{
	c->md = md;
	c->waiter = current;
	kthread_init_work(&c->work, migdev_cmd_work);
	kthread_queue_work(md->worker, &c->work);
	kthread_flush_work(&c->work);
	return c->ret;
}

/* Run a DMA command and wait for it; md->lock must not be held. */
static int migdev_dma_sync(struct migdev *md, u32 cmd, u64 iova, u64 len,
			   u32 seed)
{
	struct migdev_cmd c = {
		.cmd = cmd, .iova = iova, .len = len, .seed = seed,
	};

	return migdev_cmd_sync(md, &c);
}

/* debugfs "stride"; md->lock must not be held. */
static int migdev_dma_stride_sync(struct migdev *md, u64 iova, u64 n,
				  u64 stride, u32 seed)
{
	struct migdev_cmd c = {
		.strided = true, .iova = iova, .len = n, .stride = stride,
		.seed = seed,
	};

	return migdev_cmd_sync(md, &c);
}

/*
 * Run the command a BAR0 write started, unless it ran already or debugfs
 * "hold" keeps it waiting: the command the registers held at the doorbell,
 * whatever the guest wrote to them since.
 */
static void migdev_bar_run(struct migdev *md)
{
	lockdep_assert_held(&md->lock);
	if (!md->bar_busy || md->bar_held)
		return;
	md->bar_busy = false;
	migdev_dma(md, md->bar_cmd, md->bar_iova, md->bar_len, md->bar_seed);
}

/* Let a command that debugfs "hold" keeps waiting go; md->lock held. */
static void migdev_bar_release(struct migdev *md)
{
	lockdep_assert_held(&md->lock);
	if (!md->bar_held)
		return;
	md->bar_held = false;
	if (md->bar_busy)
		kthread_queue_work(md->worker, &md->bar_work);
}

static void migdev_bar_work(struct kthread_work *work)
{
	struct migdev *md = container_of(work, struct migdev, bar_work);

	mutex_lock(&md->lock);
	migdev_bar_run(md);
	mutex_unlock(&md->lock);
}

/*
 * Let the command started through BAR0 finish, if there is one; md->lock
 * held, and dropped while waiting.
 */
static void migdev_quiesce(struct migdev *md)
{
	migdev_bar_release(md);
	while (md->bar_busy) {
		mutex_unlock(&md->lock);
		kthread_flush_work(&md->bar_work);
		mutex_lock(&md->lock);
	}
}

/*
 * Reset the device; md->lock held.  A command started through BAR0 that
 * has not run yet is dropped with everything else.
 */
static void migdev_reset(struct migdev *md)
{
	md->bar_busy = false;
	md->bar_held = false;
	migdev_unpin_all(md);
	migdev_reset_state(md);
}

/* ---- config space and BAR0 ---- */

static void migdev_init_config(struct migdev *md)
{
	u8 *c = md->config;

	memset(c, 0, sizeof(md->config));
	*(__le16 *)&c[PCI_VENDOR_ID] = cpu_to_le16(MIGDEV_VENDOR);
	*(__le16 *)&c[PCI_DEVICE_ID] = cpu_to_le16(MIGDEV_DEVICE);
	c[PCI_CLASS_DEVICE] = 0xff;		/* unassigned class */
	*(__le32 *)&c[PCI_BASE_ADDRESS_0] = cpu_to_le32(PCI_BASE_ADDRESS_SPACE_MEMORY);
	*(__le16 *)&c[PCI_SUBSYSTEM_VENDOR_ID] = cpu_to_le16(MIGDEV_VENDOR);
	*(__le16 *)&c[PCI_SUBSYSTEM_ID] = cpu_to_le16(MIGDEV_DEVICE);
}

static void migdev_config_write(struct migdev *md, unsigned int off, u8 *val,
				size_t len)
{
	if (off == PCI_COMMAND && len == 2) {
		memcpy(&md->config[off], val, 2);
	} else if (off == PCI_BASE_ADDRESS_0 && len == 4) {
		u32 bar = le32_to_cpup((__le32 *)val) & ~(MIGDEV_BAR0_SIZE - 1);

		*(__le32 *)&md->config[off] =
			cpu_to_le32(bar | PCI_BASE_ADDRESS_SPACE_MEMORY);
	}
	/* everything else is read-only */
}

/*
 * A BAR0 write; md->lock held.  Writing MIGDEV_REG_DMA_CMD starts the command in
 * the background with the address, length and seed the registers hold now;
 * its result lands in MIGDEV_REG_DMA_STATUS (-EBUSY when one is still waiting or
 * running).
 */
static void migdev_bar0_write(struct migdev *md, unsigned int off, u8 *val,
			      size_t len)
{
	if (off == MIGDEV_REG_DMA_CMD && len == 4) {
		if (md->bar_busy) {
			migdev_set_reg32(md, MIGDEV_REG_DMA_STATUS, -EBUSY);
			return;
		}
		memcpy(&md->regs[off], val, len);
		md->bar_cmd = migdev_reg32(md, MIGDEV_REG_DMA_CMD);
		md->bar_iova = le64_to_cpup((__le64 *)&md->regs[MIGDEV_REG_DMA_ADDR]);
		md->bar_len = migdev_reg32(md, MIGDEV_REG_DMA_LEN);
		md->bar_seed = migdev_reg32(md, MIGDEV_REG_DMA_SEED);
		md->bar_busy = true;
		kthread_queue_work(md->worker, &md->bar_work);
	} else if ((off >= MIGDEV_REG_DMA_ADDR && off < MIGDEV_REG_DMA_CMD) ||
		   off >= MIGDEV_REG_SCRATCH) {
		memcpy(&md->regs[off], val, len);
	}
	/* read-only registers ignore writes */
}

/* ---- the migration region ---- */

static bool migdev_saving(struct migdev *md)
{
	return md->device_state != STATE_ERROR &&
	       (md->device_state & STATE_SAVING);
}

static u64 migdev_pending(struct migdev *md)
{
	u64 n = bitmap_weight(md->to_send, MIGDEV_BLOCKS) * REC_BLOCK_SIZE;

	if (!(md->device_state & STATE_RUNNING)) {
		if (md->regs_to_send)
			n += REC_REGS_SIZE;
		if (md->end_to_send)
			n += REC_END_SIZE;
	}
	return n;
}

/* Put a record header at @p; the stream's first says so. */
static void *migdev_put_rec(struct migdev *md, void *p, u32 type, u32 arg)
{
	struct migdev_rec *rec = p;

	if (md->first_to_send)
		type |= REC_FIRST;
	md->first_to_send = false;
	rec->type = cpu_to_le32(type);
	rec->arg = cpu_to_le32(arg);
	return rec + 1;
}

/* Put the next chunk in the data section, unless one waits already. */
static void migdev_make_chunk(struct migdev *md)
{
	void *p = md->data, *end = md->data + MIGDEV_DATA_SIZE;
	unsigned int b;

	if (md->chunk_ready)
		return;
	for_each_set_bit(b, md->to_send, MIGDEV_BLOCKS) {
		if (end - p < REC_BLOCK_SIZE)
			break;
		p = migdev_put_rec(md, p, REC_BLOCK, b);
		memcpy(p, md->state + b * MIGDEV_BLOCK, MIGDEV_BLOCK);
		p += MIGDEV_BLOCK;
		/* sent now: a change from here on sends it again */
		clear_bit(b, md->to_send);
	}
	if (!(md->device_state & STATE_RUNNING) &&
	    bitmap_empty(md->to_send, MIGDEV_BLOCKS)) {
		if (md->regs_to_send && end - p >= REC_REGS_SIZE) {
			p = migdev_put_rec(md, p, REC_REGS, 0);
			memcpy(p, md->regs, MIGDEV_BAR0_SIZE);
			p += MIGDEV_BAR0_SIZE;
			md->regs_to_send = false;
		}
		if (!md->regs_to_send && md->end_to_send && end - p >= REC_END_SIZE) {
			p = migdev_put_rec(md, p, REC_END, migdev_checksum(md));
			md->end_to_send = false;
		}
	}
	md->chunk_len = p - md->data;
	md->chunk_ready = true;
}

/*
 * Apply a chunk of the stream on the destination.  The data section is
 * mapped by the user, who may change it meanwhile: each record header is
 * read once, into a private copy, before it is checked and used.  A
 * stream's first record starts over: the stream carries the whole state.
 */
static int migdev_load_chunk(struct migdev *md, u64 size)
{
	void *p = md->data, *end = md->data + size;

	if (size)
		md->resume_loaded = true;
	while (p < end) {
		struct migdev_rec *src = p;
		u32 type, arg;

		if (end - p < sizeof(*src))
			return -EINVAL;
		type = le32_to_cpu(READ_ONCE(src->type));
		arg = le32_to_cpu(READ_ONCE(src->arg));
		p = src + 1;
		if (type & REC_FIRST)
			md->resume_done = false;
		else if (md->resume_done)
			return -EINVAL;		/* after the end, not a new stream */
		switch (type & ~REC_FIRST) {
		case REC_BLOCK:
			if (arg >= MIGDEV_BLOCKS || end - p < MIGDEV_BLOCK)
				return -EINVAL;
			memcpy(md->state + arg * MIGDEV_BLOCK, p, MIGDEV_BLOCK);
			p += MIGDEV_BLOCK;
			break;
		case REC_REGS:
			if (end - p < MIGDEV_BAR0_SIZE)
				return -EINVAL;
			memcpy(md->regs, p, MIGDEV_BAR0_SIZE);
			p += MIGDEV_BAR0_SIZE;
			break;
		case REC_END:
			if (arg != migdev_checksum(md))
				return -EIO;
			md->resume_done = true;
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/* Whether @old -> @new is a transition the device makes: 0 or -errno. */
static int migdev_check_state(u32 old, u32 new)
{
	if (new & ~STATE_MASK)
		return -EINVAL;		/* reserved bits */
	if (old == STATE_ERROR)
		return -EIO;		/* only a reset leaves it */
	if (!VFIO_DEVICE_STATE_VALID(new) || new == STATE_ERROR)
		return -EINVAL;
	/* between saving and resuming, only through a non-migrating state */
	if (((old & STATE_SAVING) && (new & STATE_RESUMING)) ||
	    ((old & STATE_RESUMING) && (new & STATE_SAVING)))
		return -EINVAL;
	/* the registers went with stop-and-copy: no going back to pre-copy */
	if (old == STATE_SAVING && new == (STATE_SAVING | STATE_RUNNING))
		return -EINVAL;
	return 0;
}

/* A device_state write; md->lock held, dropped to quiesce the device. */
static int migdev_set_state(struct migdev *md, u32 new)
{
	u32 old;
	int ret;

	ret = migdev_check_state(md->device_state, new);
	if (ret)
		return ret;
	if (!(new & STATE_RUNNING)) {
		/* finish what the device is doing before it stops */
		migdev_quiesce(md);
		ret = migdev_check_state(md->device_state, new);
		if (ret)
			return ret;
	}
	old = md->device_state;

	if ((old & STATE_RESUMING) && !(new & STATE_RESUMING) &&
	    md->resume_loaded && !md->resume_done) {
		/* part of a stream: the device state is neither old nor new */
		md->device_state = STATE_ERROR;
		return -EIO;
	}
	if ((new & STATE_RESUMING) && !(old & STATE_RESUMING)) {
		md->resume_loaded = false;
		md->resume_done = false;
	}
	if ((new & STATE_SAVING) && !(old & STATE_SAVING)) {
		/* a new stream: everything goes */
		bitmap_fill(md->to_send, MIGDEV_BLOCKS);
		md->regs_to_send = true;
		md->end_to_send = true;
		md->first_to_send = true;
		md->chunk_ready = false;
		md->saved = 0;
	}
	if (!(new & STATE_SAVING))
		md->chunk_ready = false;
	md->device_state = new;
	return 0;
}

static ssize_t migdev_mig_header(struct migdev *md, unsigned int off, u8 *val,
				 size_t len, bool write)
{
	u64 v = 0;
	int ret;

	switch (off) {
	case offsetof(struct vfio_device_migration_info, device_state):
		if (len != 4)
			return -EINVAL;
		if (write) {
			ret = migdev_set_state(md, le32_to_cpup((__le32 *)val));
			return ret ? ret : len;
		}
		*(__le32 *)val = cpu_to_le32(md->device_state);
		return len;
	case offsetof(struct vfio_device_migration_info, reserved):
		if (len != 4)
			return -EINVAL;
		if (!write)
			memset(val, 0, 4);
		return len;
	case offsetof(struct vfio_device_migration_info, pending_bytes):
		if (len != 8 || write)
			return -EINVAL;
		if (migdev_saving(md)) {
			if (md->chunk_ready)
				md->saved += md->chunk_len;
			md->chunk_ready = false;	/* acknowledged */
			v = migdev_pending(md);
		}
		break;
	case offsetof(struct vfio_device_migration_info, data_offset):
		if (len != 8 || write)
			return -EINVAL;
		if (migdev_saving(md))
			migdev_make_chunk(md);
		else if (md->device_state != STATE_RESUMING)
			return -EINVAL;
		v = MIGDEV_DATA_OFFSET;
		break;
	case offsetof(struct vfio_device_migration_info, data_size):
		if (len != 8)
			return -EINVAL;
		if (write) {
			v = le64_to_cpup((__le64 *)val);
			if (md->device_state != STATE_RESUMING ||
			    v > MIGDEV_DATA_SIZE)
				return -EINVAL;
			ret = migdev_load_chunk(md, v);
			if (ret) {
				md->device_state = STATE_ERROR;
				return ret;
			}
			return len;
		}
		if (migdev_saving(md) && md->chunk_ready)
			v = md->chunk_len;
		break;
	default:
		return -EINVAL;
	}
	*(__le64 *)val = cpu_to_le64(v);
	return len;
}

/* ---- region access ---- */

static ssize_t migdev_access(struct migdev *md, u64 pos, u8 *val, size_t len,
			     bool write)
{
	unsigned int index = pos >> MIGDEV_OFFSET_SHIFT;
	u64 off = pos & MIGDEV_OFFSET_MASK;

	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		if (off + len > MIGDEV_CONFIG_SIZE || !len)
			return -EINVAL;
		if (write)
			migdev_config_write(md, off, val, len);
		else
			memcpy(val, &md->config[off], len);
		return len;
	case VFIO_PCI_BAR0_REGION_INDEX:
		if (off + len > MIGDEV_BAR0_SIZE || (len != 4 && len != 8) ||
		    off % len)
			return -EINVAL;
		/* the registers of a stopped device are frozen: they migrate */
		if (write && !(md->device_state & STATE_RUNNING))
			return -EBUSY;
		if (write)
			migdev_bar0_write(md, off, val, len);
		else
			memcpy(val, &md->regs[off], len);
		return len;
	case MIGDEV_MIG_INDEX:
		if (off < sizeof(struct vfio_device_migration_info))
			return migdev_mig_header(md, off, val, len, write);
		if (off < MIGDEV_DATA_OFFSET || off + len > MIGDEV_MIG_SIZE)
			return -EINVAL;
		if (write)
			memcpy(md->data + off - MIGDEV_DATA_OFFSET, val, len);
		else
			memcpy(val, md->data + off - MIGDEV_DATA_OFFSET, len);
		return len;
	default:
		return -EINVAL;
	}
}

static ssize_t migdev_rw(struct vfio_device *vdev, char __user *ubuf,
			 size_t count, loff_t *ppos, bool write)
{
	struct migdev *md = to_migdev(vdev);
	u8 val[8];
	u8 *buf = val;
	ssize_t ret;

	/* bulk data goes through a bounce buffer, everything else is small */
	if (count > sizeof(val)) {
		if (count > MIGDEV_DATA_SIZE)
			return -EINVAL;
		buf = kvmalloc(count, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
	}
	if (write && copy_from_user(buf, ubuf, count)) {
		ret = -EFAULT;
		goto out;
	}
	mutex_lock(&md->lock);
	ret = migdev_access(md, *ppos, buf, count, write);
	mutex_unlock(&md->lock);
	if (ret > 0 && !write && copy_to_user(ubuf, buf, ret))
		ret = -EFAULT;
	if (ret > 0)
		*ppos += ret;
out:
	if (buf != val)
		kvfree(buf);
	return ret;
}

static ssize_t migdev_read(struct vfio_device *vdev, char __user *buf,
			   size_t count, loff_t *ppos)
{
	return migdev_rw(vdev, buf, count, ppos, false);
}

static ssize_t migdev_write(struct vfio_device *vdev, const char __user *buf,
			    size_t count, loff_t *ppos)
{
	return migdev_rw(vdev, (char __user *)buf, count, ppos, true);
}

static int migdev_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct migdev *md = to_migdev(vdev);
	u64 pos = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 off = pos & MIGDEV_OFFSET_MASK;
	u64 len = vma->vm_end - vma->vm_start;

	if ((pos >> MIGDEV_OFFSET_SHIFT) != MIGDEV_MIG_INDEX ||
	    off < MIGDEV_DATA_OFFSET || off + len > MIGDEV_MIG_SIZE ||
	    !(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	return remap_vmalloc_range(vma, md->data,
				   (off - MIGDEV_DATA_OFFSET) >> PAGE_SHIFT);
}

/* ---- ioctls ---- */

static int migdev_region_info(struct vfio_region_info *info,
			      struct vfio_info_cap *caps)
{
	struct vfio_region_info_cap_type type = {
		.header.id = VFIO_REGION_INFO_CAP_TYPE,
		.header.version = 1,
		.type = VFIO_REGION_TYPE_MIGRATION,
		.subtype = VFIO_REGION_SUBTYPE_MIGRATION,
	};
	struct vfio_region_info_cap_sparse_mmap *sparse;
	size_t size = struct_size(sparse, areas, 1);
	int ret;

	info->offset = MIGDEV_OFFSET(info->index);
	info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	switch (info->index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		info->size = MIGDEV_CONFIG_SIZE;
		return 0;
	case VFIO_PCI_BAR0_REGION_INDEX:
		info->size = MIGDEV_BAR0_SIZE;
		return 0;
	case MIGDEV_MIG_INDEX:
		break;
	default:
		if (info->index >= MIGDEV_NUM_REGIONS)
			return -EINVAL;
		info->size = 0;
		info->flags = 0;
		return 0;
	}

	info->size = MIGDEV_MIG_SIZE;
	info->flags |= VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
	ret = vfio_info_add_capability(caps, &type.header, sizeof(type));
	if (ret)
		return ret;
	sparse = kzalloc(size, GFP_KERNEL);
	if (!sparse)
		return -ENOMEM;
	sparse->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
	sparse->header.version = 1;
	sparse->nr_areas = 1;
	sparse->areas[0].offset = MIGDEV_DATA_OFFSET;
	sparse->areas[0].size = MIGDEV_DATA_SIZE;
	ret = vfio_info_add_capability(caps, &sparse->header, size);
	kfree(sparse);
	return ret;
}

static long migdev_ioctl_region_info(void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	struct vfio_region_info info;
	int ret;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	info.cap_offset = 0;
	ret = migdev_region_info(&info, &caps);
	if (ret)
		goto out;
	if (caps.size) {
		if (info.argsz < sizeof(info) + caps.size) {
			info.argsz = sizeof(info) + caps.size;
		} else {
			vfio_info_cap_shift(&caps, sizeof(info));
			if (copy_to_user(arg + sizeof(info), caps.buf, caps.size)) {
				ret = -EFAULT;
				goto out;
			}
			info.cap_offset = sizeof(info);
		}
	}
	if (copy_to_user(arg, &info, minsz))
		ret = -EFAULT;
out:
	kfree(caps.buf);
	return ret;
}

static long migdev_ioctl(struct vfio_device *vdev, unsigned int cmd,
			 unsigned long arg)
{
	struct migdev *md = to_migdev(vdev);
	void __user *uarg = (void __user *)arg;
	unsigned long minsz;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info info;

		minsz = offsetofend(struct vfio_device_info, num_irqs);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
		info.num_regions = MIGDEV_NUM_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_REGION_INFO:
		return migdev_ioctl_region_info(uarg);
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info info;

		minsz = offsetofend(struct vfio_irq_info, count);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		/* no error or request interrupts, like a legacy device */
		if (info.argsz < minsz || info.index >= VFIO_PCI_ERR_IRQ_INDEX)
			return -EINVAL;
		info.flags = VFIO_IRQ_INFO_EVENTFD;
		info.count = 0;		/* no interrupts */
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return -EINVAL;
	case VFIO_DEVICE_RESET:
		mutex_lock(&md->lock);
		migdev_reset(md);
		mutex_unlock(&md->lock);
		return 0;
	}
	return -ENOTTY;
}

/*
 * VFIO unmaps [iova, iova + length): drop the pages pinned there, and stop
 * a command that pins there (pin_lock: no page is pinned but not recorded
 * while we look).
 */
static void migdev_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct migdev *md = to_migdev(vdev);

	mutex_lock(&md->pin_lock);
	if (md->dma_active &&
	    (md->dma_iova >= iova ? md->dma_iova - iova < length :
				    iova - md->dma_iova < md->dma_len))
		md->dma_unmapped = true;
	migdev_unpin_range_locked(md, iova, length);
	mutex_unlock(&md->pin_lock);
}

static int migdev_open(struct vfio_device *vdev)
{
	struct migdev *md = to_migdev(vdev);

	/* nothing of the previous user is left */
	mutex_lock(&md->lock);
	migdev_init_config(md);
	migdev_reset(md);
	md->saved = 0;
	md->opened = true;
	mutex_unlock(&md->lock);
	return 0;
}

static void migdev_close(struct vfio_device *vdev)
{
	struct migdev *md = to_migdev(vdev);

	mutex_lock(&md->lock);
	migdev_bar_release(md);
	mutex_unlock(&md->lock);
	kthread_flush_work(&md->bar_work);
	mutex_lock(&md->lock);
	migdev_unpin_all(md);
	md->opened = false;
	mutex_unlock(&md->lock);
}

/* ---- debugfs: drive and inspect a device from the host ---- */

/* A command of fewer than @size bytes from @ubuf into @buf, as a string. */
static int migdev_dbg_command(char *buf, size_t size,
			      const char __user *ubuf, size_t count)
{
	if (count >= size)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	return 0;
}

static ssize_t migdev_dbg_dma(struct file *file, const char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	static const char * const names[] = {
		[MIGDEV_CMD_WRITE_PIN] = "pin", [MIGDEV_CMD_WRITE_RW] = "rw",
		[MIGDEV_CMD_PIN] = "keep", [MIGDEV_CMD_UNPIN] = "release",
		[MIGDEV_CMD_WRITE_KEPT] = "kept",
	};
	struct migdev *md = file->private_data;
	char buf[96], name[16];
	u64 iova = 0, len = 0, stride = 0;
	u32 seed = 0, cmd;
	int ret;

	ret = migdev_dbg_command(buf, sizeof(buf), ubuf, count);
	if (ret)
		return ret;
	if (sscanf(buf, "%15s %lli %lli %i", name, &iova, &len, &seed) < 1)
		return -EINVAL;
	if (!strcmp(name, "stride")) {
		/* stride IOVA COUNT STRIDE SEED, all of them */
		if (sscanf(buf, "%15s %lli %lli %lli %i", name, &iova, &len,
			   &stride, &seed) != 5)
			return -EINVAL;
		ret = migdev_dma_stride_sync(md, iova, len, stride, seed);
		return ret ? ret : count;
	}
	for (cmd = MIGDEV_CMD_WRITE_PIN; cmd <= MIGDEV_CMD_WRITE_KEPT; cmd++)
		if (!strcmp(name, names[cmd]))
			break;
	if (cmd > MIGDEV_CMD_WRITE_KEPT)
		return -EINVAL;
	ret = migdev_dma_sync(md, cmd, iova, len, seed);
	return ret ? ret : count;
}

/*
 * migdev-precise: the device's log says it wrote [IOVA, IOVA + LEN), a
 * range of any size (a large fill, say): report it with vfio_mark_dirty().
 */
static ssize_t migdev_dbg_report(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	struct migdev *md = file->private_data;
	u64 iova, len;
	char buf[64];
	int ret;

	ret = migdev_dbg_command(buf, sizeof(buf), ubuf, count);
	if (ret)
		return ret;
	if (sscanf(buf, "%lli %lli", &iova, &len) != 2 || (size_t)len != len)
		return -EINVAL;
	if (!migdev_precise(md))
		return -EOPNOTSUPP;
	mutex_lock(&md->lock);
	ret = md->opened ? vfio_mark_dirty(&md->vdev, iova, len) : -EBUSY;
	mutex_unlock(&md->lock);
	return ret ? ret : count;
}

static ssize_t migdev_dbg_step(struct file *file, const char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	struct migdev *md = file->private_data;
	unsigned int n;
	int ret;

	ret = kstrtouint_from_user(ubuf, count, 0, &n);
	if (ret)
		return ret;
	mutex_lock(&md->lock);
	/* stopped, saving the rest, resuming or broken: the state is frozen */
	if (md->device_state & STATE_RUNNING) {
		migdev_step(md, min(n, 4096U), n);
		migdev_set_reg32(md, MIGDEV_REG_DMA_COUNT,
				 migdev_reg32(md, MIGDEV_REG_DMA_COUNT) + 1);
	} else {
		ret = -EBUSY;
	}
	mutex_unlock(&md->lock);
	return ret ? ret : count;
}

static ssize_t migdev_dbg_hold(struct file *file, const char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	struct migdev *md = file->private_data;
	bool hold;
	int ret;

	ret = kstrtobool_from_user(ubuf, count, &hold);
	if (ret)
		return ret;
	mutex_lock(&md->lock);
	if (hold)
		md->bar_held = true;
	else
		migdev_bar_release(md);
	mutex_unlock(&md->lock);
	return count;
}

static int migdev_dbg_show(struct seq_file *s, void *unused)
{
	struct migdev *md = s->private;

	mutex_lock(&md->lock);
	seq_printf(s, "%08x\n", migdev_checksum(md));
	mutex_unlock(&md->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(migdev_dbg);

static ssize_t migdev_dbg_state(struct file *file, char __user *ubuf,
				size_t count, loff_t *ppos)
{
	struct migdev *md = file->private_data;
	loff_t pos = *ppos;
	ssize_t ret = 0;

	mutex_lock(&md->lock);
	if (pos < MIGDEV_BAR0_SIZE)
		ret = simple_read_from_buffer(ubuf, count, &pos, md->regs,
					      MIGDEV_BAR0_SIZE);
	else if (pos < MIGDEV_BAR0_SIZE + MIGDEV_STATE_SIZE) {
		pos -= MIGDEV_BAR0_SIZE;
		ret = simple_read_from_buffer(ubuf, count, &pos, md->state,
					      MIGDEV_STATE_SIZE);
		pos += MIGDEV_BAR0_SIZE;
	}
	mutex_unlock(&md->lock);
	if (ret > 0)
		*ppos = pos;
	return ret;
}

/* .owner: an open file keeps the module, whose code debugfs calls */
static const struct file_operations migdev_dbg_state_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = migdev_dbg_state,
};

static const struct file_operations migdev_dbg_dma_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = migdev_dbg_dma,
};

static const struct file_operations migdev_dbg_step_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = migdev_dbg_step,
};

static const struct file_operations migdev_dbg_report_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = migdev_dbg_report,
};

static const struct file_operations migdev_dbg_hold_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = migdev_dbg_hold,
};

/* ---- device life cycle ---- */

static int migdev_init_dev(struct vfio_device *vdev)
{
	struct migdev *md = to_migdev(vdev);
	int ret;

	if (atomic_dec_if_positive(&migdev_parent.avail) < 0)
		return -ENOSPC;
	mutex_init(&md->lock);
	mutex_init(&md->pin_lock);
	kthread_init_work(&md->bar_work, migdev_bar_work);
	md->worker = kthread_create_worker(0, "migdev");
	if (IS_ERR(md->worker)) {
		ret = PTR_ERR(md->worker);
		goto err;
	}
	md->worker_pid = task_pid_nr(md->worker->task);
	md->state = vzalloc(MIGDEV_STATE_SIZE);
	md->data = vmalloc_user(MIGDEV_DATA_SIZE);
	if (!md->state || !md->data) {
		ret = -ENOMEM;
		goto err_free;
	}
	migdev_init_config(md);
	migdev_reset_state(md);
	return 0;

err_free:
	vfree(md->state);
	vfree(md->data);
	kthread_destroy_worker(md->worker);
err:
	mutex_destroy(&md->pin_lock);
	mutex_destroy(&md->lock);
	atomic_inc(&migdev_parent.avail);
	return ret;
}

static void migdev_release_dev(struct vfio_device *vdev)
{
	struct migdev *md = to_migdev(vdev);

	kthread_destroy_worker(md->worker);
	vfree(md->data);
	vfree(md->state);
	mutex_destroy(&md->pin_lock);
	mutex_destroy(&md->lock);
	atomic_inc(&migdev_parent.avail);
}

static int migdev_probe(struct mdev_device *mdev)
{
	struct migdev *md;
	int ret;

	md = vfio_alloc_device(migdev, vdev, &mdev->dev, &migdev_ops);
	if (IS_ERR(md))
		return PTR_ERR(md);
	if (mdev->type == &migdev_parent.precise_type)
		md->vdev.dirty_ops = &migdev_dirty_ops;
	ret = vfio_register_emulated_iommu_dev(&md->vdev);
	if (ret) {
		vfio_put_device(&md->vdev);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, md);
	md->debugfs = debugfs_create_dir(dev_name(&mdev->dev), migdev_parent.debugfs);
	debugfs_create_file("dma", 0200, md->debugfs, md, &migdev_dbg_dma_fops);
	debugfs_create_file("step", 0200, md->debugfs, md, &migdev_dbg_step_fops);
	debugfs_create_file("report", 0200, md->debugfs, md,
			    &migdev_dbg_report_fops);
	debugfs_create_file("hold", 0200, md->debugfs, md, &migdev_dbg_hold_fops);
	debugfs_create_file("checksum", 0400, md->debugfs, md, &migdev_dbg_fops);
	debugfs_create_file("state", 0400, md->debugfs, md, &migdev_dbg_state_fops);
	debugfs_create_u32("pinned", 0400, md->debugfs, &md->npinned);
	debugfs_create_u32("logged", 0400, md->debugfs, &md->nlog);
	debugfs_create_u64("saved", 0400, md->debugfs, &md->saved);
	debugfs_create_u32("worker", 0400, md->debugfs, &md->worker_pid);
	return 0;
}

static void migdev_remove(struct mdev_device *mdev)
{
	struct migdev *md = dev_get_drvdata(&mdev->dev);

	debugfs_remove(md->debugfs);
	vfio_unregister_group_dev(&md->vdev);
	vfio_put_device(&md->vdev);
}

static unsigned int migdev_get_available(struct mdev_type *mtype)
{
	return atomic_read(&migdev_parent.avail);
}

static const struct vfio_device_ops migdev_ops = {
	.name = "vfio-migdev",
	.init = migdev_init_dev,
	.release = migdev_release_dev,
	.open_device = migdev_open,
	.close_device = migdev_close,
	.read = migdev_read,
	.write = migdev_write,
	.mmap = migdev_mmap,
	.ioctl = migdev_ioctl,
	.dma_unmap = migdev_dma_unmap,
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
};

static struct mdev_driver migdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = MIGDEV_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = migdev_probe,
	.remove = migdev_remove,
	.get_available = migdev_get_available,
};

static void migdev_parent_release(struct device *dev)
{
}

static int __init migdev_init(void)
{
	int ret;

	atomic_set(&migdev_parent.avail, MIGDEV_MAX_DEVICES);
	migdev_parent.type.sysfs_name = "1";
	migdev_parent.type.pretty_name = "migdev: migratable DMA sample";
	migdev_parent.precise_type.sysfs_name = "precise";
	migdev_parent.precise_type.pretty_name =
		"migdev: migratable DMA sample that reports its writes";

	/* before any device exists: each has a directory in it */
	migdev_parent.debugfs = debugfs_create_dir(MIGDEV_NAME, NULL);
	ret = mdev_register_driver(&migdev_driver);
	if (ret)
		goto err_debugfs;
	migdev_parent.class = class_create(MIGDEV_NAME);
	if (IS_ERR(migdev_parent.class)) {
		ret = PTR_ERR(migdev_parent.class);
		goto err_driver;
	}
	migdev_parent.dev.class = migdev_parent.class;
	migdev_parent.dev.release = migdev_parent_release;
	dev_set_name(&migdev_parent.dev, "%s", MIGDEV_NAME);
	ret = device_register(&migdev_parent.dev);
	if (ret)
		goto err_put;
	ret = mdev_register_parent(&migdev_parent.parent, &migdev_parent.dev,
				   &migdev_driver, migdev_types,
				   ARRAY_SIZE(migdev_types));
	if (ret)
		goto err_device;
	return 0;

err_device:
	device_del(&migdev_parent.dev);
err_put:
	put_device(&migdev_parent.dev);
	class_destroy(migdev_parent.class);
err_driver:
	mdev_unregister_driver(&migdev_driver);
err_debugfs:
	debugfs_remove(migdev_parent.debugfs);
	return ret;
}

static void __exit migdev_exit(void)
{
	/* the devices go first, and their debugfs directories with them */
	mdev_unregister_parent(&migdev_parent.parent);
	device_unregister(&migdev_parent.dev);
	class_destroy(migdev_parent.class);
	mdev_unregister_driver(&migdev_driver);
	debugfs_remove(migdev_parent.debugfs);
}

module_init(migdev_init);
module_exit(migdev_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Sample mediated PCI device with a DMA engine and VFIO v1 migration");
