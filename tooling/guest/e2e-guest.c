// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VM the end-to-end migration moves: a bare-metal multiboot kernel
 * (32-bit, no paging) that writes one 4 KiB page at 16 MiB in a loop, so
 * that pre-copy never runs out of dirty memory while the test drives the
 * device, whatever the device's pages cost.  QEMU 7.2 under TCG sees a
 * guest write only on the slow path of its soft TLB: toggling CR0.WP
 * flushes the TLB every 256 writes.  It needs nothing else: no firmware
 * service, no interrupt, no stack but its own.
 *
 * Built by tooling/build: gcc -m32 -ffreestanding -nostdlib (see there).
 */
asm(".text\n"
    ".align 4\n"
    ".long 0x1badb002, 0, -0x1badb002\n"	/* multiboot: magic, flags, sum */
    ".globl _start\n"
    "_start:\n"
    "	mov $0x80000, %esp\n"
    "	call spin\n"
    "1:	hlt\n"
    "	jmp 1b\n");

void spin(void);

void spin(void)
{
	volatile unsigned int *page = (unsigned int *)0x1000000;
	unsigned int n = 0, cr0;

	for (;;) {
		page[n & 1023] = n;
		if (++n & 255)
			continue;
		asm volatile("mov %%cr0, %0" : "=r"(cr0));
		asm volatile("mov %0, %%cr0" : : "r"(cr0 ^ 0x10000));
		asm volatile("mov %0, %%cr0" : : "r"(cr0));
	}
}
