#include "vmm/regs.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/layout.h"
#include "vmm/memory.h"
#include "vmm/vm.h"

/* Flat descriptors, base 0, limit 4 GiB (G=1). */
#define GDT_CODE32	0x00cf9b000000ffffULL	/* P, S, type 0xb, D=1 */
#define GDT_CODE64	0x00af9b000000ffffULL	/* P, S, type 0xb, L=1 */
#define GDT_DATA	0x00cf93000000ffffULL	/* P, S, type 0x3, B=1 */

#define CR0_PE		(1ULL << 0)
#define CR0_ET		(1ULL << 4)
#define CR0_PG		(1ULL << 31)
#define CR4_PAE		(1ULL << 5)
#define EFER_LME	(1ULL << 8)
#define EFER_LMA	(1ULL << 10)

#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MISC_ENABLE_FAST_STRING	1ULL

#define APIC_LVT0	0x350
#define APIC_LVT1	0x360
#define APIC_MODE_NMI	0x400
#define APIC_MODE_EXTINT 0x700

int regs_write_boot_tables(struct vm_memory *m, enum boot_mode mode, struct err *e)
{
	const uint64_t gdt[4] = { 0, GDT_CODE32, GDT_CODE64, GDT_DATA };
	uint64_t *pml4, *pdpt, *pd;
	int i;

	if (mem_write(m, LAYOUT_GDT, gdt, sizeof(gdt), "GDT", e) < 0)
		return -1;
	if (mode != BOOT_LM64)
		return 0;
	pml4 = mem_gpa_to_hva(m, LAYOUT_PML4, 4096);
	pdpt = mem_gpa_to_hva(m, LAYOUT_PDPT, 4096);
	pd = mem_gpa_to_hva(m, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return err_set(e, "page tables do not fit in guest RAM");
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 0x3;			/* P | RW */
	for (i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + (uint64_t)i * 4096) | 0x3;
	/* Identity map even the PCI hole: Linux replaces these tables early. */
	for (i = 0; i < 2048; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* P | RW | PS (2 MiB) */
	return 0;
}

struct msr_init {
	uint32_t index;
	uint64_t value;
};

static const struct msr_init boot_msrs[] = {
	{ MSR_IA32_SYSENTER_CS, 0 },
	{ MSR_IA32_SYSENTER_ESP, 0 },
	{ MSR_IA32_SYSENTER_EIP, 0 },
	{ MSR_STAR, 0 },
	{ MSR_CSTAR, 0 },
	{ MSR_KERNEL_GS_BASE, 0 },
	{ MSR_SYSCALL_MASK, 0 },
	{ MSR_LSTAR, 0 },
	{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
};

static int setup_msrs(struct vcpu *v, struct err *e)
{
	size_t n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry ent[1];
	} one;

	/* One at a time: KVM stops at the first MSR it rejects, and a host
	 * lacking one of these (e.g. CSTAR semantics on Intel) is not fatal
	 * for booting - the guest programs all of them itself. */
	for (size_t i = 0; i < n; i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.ent[0].index = boot_msrs[i].index;
		one.ent[0].data = boot_msrs[i].value;
		/* Returns how many were set: 0 means rejected (tolerated). */
		if (ioctl(v->fd, KVM_SET_MSRS, &one) < 0)
			return err_errno(e, errno, "KVM_SET_MSRS 0x%x", boot_msrs[i].index);
	}
	return 0;
}

static void lapic_set(struct kvm_lapic_state *l, int reg, uint32_t v)
{
	memcpy(&l->regs[reg], &v, 4);
}

static uint32_t lapic_get(const struct kvm_lapic_state *l, int reg)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], 4);
	return v;
}

int regs_setup_vcpu(struct vcpu *v, struct err *e)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_lapic_state lapic;

	if (setup_msrs(v, e) < 0)
		return -1;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return err_errno(e, errno, "KVM_SET_FPU");
	/* Virtual-wire mode: PIC interrupts arrive through LINT0 as ExtINT,
	 * NMIs through LINT1, until the guest programs the IOAPIC. */
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return err_errno(e, errno, "KVM_GET_LAPIC");
	lapic_set(&lapic, APIC_LVT0, (lapic_get(&lapic, APIC_LVT0) & ~0x1ffffu) | APIC_MODE_EXTINT);
	lapic_set(&lapic, APIC_LVT1, (lapic_get(&lapic, APIC_LVT1) & ~0x1ffffu) | APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return err_errno(e, errno, "KVM_SET_LAPIC");
	return 0;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, int l, int db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->s = 1;
	s->l = (uint8_t)l;
	s->db = (uint8_t)db;
	s->g = 1;
}

int regs_setup_boot(struct vcpu *v, const struct boot_entry *b, struct err *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_segment data;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return err_errno(e, errno, "KVM_GET_SREGS");
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	seg_flat(&data, SEL_DATA, 0x3, 0, 1);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	if (b->mode == BOOT_LM64) {
		seg_flat(&sregs.cs, SEL_CODE64, 0xb, 1, 0);
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 |= CR4_PAE;
		sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
		sregs.efer |= EFER_LME | EFER_LMA;
	} else {
		seg_flat(&sregs.cs, SEL_CODE32, 0xb, 0, 1);
		sregs.cr0 = (sregs.cr0 | CR0_PE | CR0_ET) & ~CR0_PG;
		sregs.cr4 &= ~CR4_PAE;
		sregs.efer &= ~(EFER_LME | EFER_LMA);
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return err_errno(e, errno, "KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;	/* reserved bit 1; IF=0 */
	regs.rip = b->rip;
	regs.rax = b->rax;
	regs.rbx = b->rbx;
	regs.rsi = b->rsi;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return err_errno(e, errno, "KVM_SET_REGS");
	return 0;
}
