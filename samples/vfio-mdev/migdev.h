/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What a driver of migdev's device sees: its PCI IDs, its BAR0 registers
 * and DMA commands, and the sizes of its migration data section and
 * internal state.  Shared by the driver (migdev.c), the VFIO selftests
 * (tools/testing/selftests/vfio/) and guests that drive the device, so
 * plain integer constants only: kernel, user space and freestanding code
 * include it.
 */
#ifndef _SAMPLES_VFIO_MDEV_MIGDEV_H
#define _SAMPLES_VFIO_MDEV_MIGDEV_H

#define MIGDEV_VENDOR		0x1234
#define MIGDEV_DEVICE		0x1e55

/* BAR0: 4 KiB of registers */
#define MIGDEV_BAR0_SIZE	4096
#define MIGDEV_REG_ID		0x00	/* ro: MIGDEV_ID */
#define MIGDEV_REG_DMA_ADDR	0x08	/* u64: IOVA */
#define MIGDEV_REG_DMA_LEN	0x10	/* u32: bytes */
#define MIGDEV_REG_DMA_SEED	0x14	/* u32 */
#define MIGDEV_REG_DMA_CMD	0x18	/* u32: writing starts the command */
#define MIGDEV_REG_DMA_STATUS	0x1c	/* ro u32: 0 or -errno of the last one */
#define MIGDEV_REG_DMA_COUNT	0x20	/* ro u32: commands done */
#define MIGDEV_REG_SCRATCH	0x100	/* scratch registers up to the end */
#define MIGDEV_ID		0x6d696764

/* MIGDEV_REG_DMA_CMD */
enum {
	MIGDEV_CMD_WRITE_PIN = 1,	/* pin each page, write, unpin */
	MIGDEV_CMD_WRITE_RW,		/* vfio_dma_rw() */
	MIGDEV_CMD_PIN,			/* pin and keep pinned */
	MIGDEV_CMD_UNPIN,		/* unpin what is kept pinned */
	MIGDEV_CMD_WRITE_KEPT,		/* write into the pages kept pinned */
};

/* The data section of the migration region */
#define MIGDEV_DATA_SIZE	(64 * 1024)

/* Internal state: blocks that DMA commands change, migrated one by one */
#define MIGDEV_BLOCK		4096
#define MIGDEV_BLOCKS		64
#define MIGDEV_STATE_SIZE	(MIGDEV_BLOCKS * MIGDEV_BLOCK)

#endif /* _SAMPLES_VFIO_MDEV_MIGDEV_H */
