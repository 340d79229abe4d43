/* x86 vCPU register setup for boot: GDT + identity page tables in guest
 * memory, segment/control registers for the two entry modes we support,
 * MSR/FPU/LAPIC power-on values. */
#ifndef VMM_REGS_H
#define VMM_REGS_H

#include <stdint.h>

#include "lib/err.h"

struct vcpu;
struct vm_memory;

enum boot_mode {
	BOOT_PM32,	/* 32-bit protected mode, flat, paging off (Multiboot) */
	BOOT_LM64,	/* 64-bit long mode, identity-mapped 4 GiB (Linux) */
};

/* What a loader decided: how the boot vCPU starts. */
struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rax, rbx, rsi;
};

/* GDT at LAYOUT_GDT (null, code32, code64, data); for BOOT_LM64 also
 * PML4/PDPT/PD identity-mapping [0, 4 GiB) with 2 MiB pages. */
int regs_write_boot_tables(struct vm_memory *m, enum boot_mode mode, struct err *e);
/* Every vCPU: MSRs, FPU, LAPIC LINT0=ExtINT / LINT1=NMI. */
int regs_setup_vcpu(struct vcpu *v, struct err *e);
/* Boot vCPU only: general/segment/control registers for entry. */
int regs_setup_boot(struct vcpu *v, const struct boot_entry *b, struct err *e);

#endif
