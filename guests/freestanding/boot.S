/* Multiboot v1 entry: 32-bit protected mode, flat segments, paging off,
 * EAX = 0x2BADB002, EBX = physical address of the multiboot info.
 * We build identity-mapped page tables for the first 4 GiB with 2 MiB pages,
 * enable PAE + EFER.LME + paging, far-jump into a 64-bit code segment and call
 * fs_main(magic, mbi). Nothing here relies on the loader's GDT or stack. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit0: page-align modules, bit1: want mem info */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	cli
	cld
	movl	%eax, %edi			/* magic -> 1st C argument (rdi) */
	movl	%ebx, %esi			/* mbi   -> 2nd C argument (rsi) */
	movl	$stack_top, %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> pd[0..3]; pd[i] = i * 2 MiB | PS|RW|P.
	 * Page tables live in .bss, which the loader zeroed. */
	movl	$pdpt, %eax
	orl	$0x3, %eax
	movl	%eax, pml4
	xorl	%ecx, %ecx
1:	movl	%ecx, %eax
	shll	$12, %eax
	addl	$pd, %eax
	orl	$0x3, %eax
	movl	%eax, pdpt(,%ecx,8)
	incl	%ecx
	cmpl	$4, %ecx
	jb	1b
	xorl	%ecx, %ecx			/* 2048 entries = 4 GiB */
2:	movl	%ecx, %eax
	shll	$21, %eax
	orl	$0x83, %eax
	movl	%eax, pd(,%ecx,8)
	movl	%ecx, %eax
	shrl	$11, %eax			/* high dword: (i * 2 MiB) >> 32 */
	movl	%eax, pd+4(,%ecx,8)
	incl	%ecx
	cmpl	$2048, %ecx
	jb	2b

	movl	%cr4, %eax
	orl	$0x20, %eax			/* CR4.PAE */
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$0xC0000080, %ecx		/* EFER */
	rdmsr
	orl	$0x100, %eax			/* EFER.LME */
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax		/* CR0.PG | CR0.PE */
	movl	%eax, %cr0

	lgdt	gdt_desc
	ljmp	$0x08, $long_entry

	.code64
long_entry:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	xorw	%ax, %ax
	movw	%ax, %fs
	movw	%ax, %gs
	movq	$stack_top, %rsp
	call	fs_main
3:	cli
	hlt
	jmp	3b

	.section .rodata
	.align 8
gdt:
	.quad 0
	.quad 0x00209a0000000000		/* 0x08: 64-bit code, present, L=1 */
	.quad 0x0000920000000000		/* 0x10: data, present, writable */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

	.bss
	.align 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096 * 4
	.skip 16384
stack_top:
