#include "vmm/cpuid.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vm.h"

#define CPUID_1_ECX_HYPERVISOR	(1u << 31)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_EDX_HTT		(1u << 28)
#define KVM_CPUID_SIGNATURE	0x40000000u
#define KVM_CPUID_FEATURES	0x40000001u

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

void cpuid_filter(struct kvm_cpuid2 *c, int apic_id, int ncpus)
{
	struct kvm_cpuid_entry2 *ent;

	for (uint32_t i = 0; i < c->nent; i++) {
		ent = &c->entries[i];
		switch (ent->function) {
		case 1:
			/* EBX[31:24] initial APIC ID, EBX[23:16] logical CPUs
			 * per package (we present one package of ncpus). */
			ent->ebx &= 0x0000ffffu;
			ent->ebx |= (uint32_t)apic_id << 24;
			ent->ebx |= (uint32_t)(ncpus > 255 ? 255 : ncpus) << 16;
			if (ncpus > 1)
				ent->edx |= CPUID_1_EDX_HTT;
			ent->ecx |= CPUID_1_ECX_HYPERVISOR;
			break;
		case 4:
			/* EAX[31:26]: cores per package - 1. */
			ent->eax &= 0x03ffffffu;
			ent->eax |= (uint32_t)((ncpus - 1) & 0x3f) << 26;
			break;
		case 6:
			/* No thermal/power management emulation. */
			ent->eax = ent->ebx = ent->ecx = ent->edx = 0;
			break;
		case 0xa:
			/* Architectural PMU: only if KVM says so (it already
			 * filtered); nothing to change. */
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology: EDX = x2APIC ID of this CPU. */
			ent->edx = (uint32_t)apic_id;
			break;
		default:
			break;
		}
	}
	/* KVM's paravirt leaves: recent kernels report them in the supported
	 * table; make sure the signature is there so kvmclock is found. */
	ent = find(c, KVM_CPUID_SIGNATURE, 0);
	if (ent) {
		memcpy(&ent->ebx, "KVMK", 4);
		memcpy(&ent->ecx, "VMKV", 4);
		memcpy(&ent->edx, "M\0\0\0", 4);
		if (ent->eax < KVM_CPUID_FEATURES)
			ent->eax = KVM_CPUID_FEATURES;
	}
}

int cpuid_setup_vcpu(struct vcpu *v, struct err *e)
{
	const struct kvm_cpuid2 *sup = v->vm->supported_cpuid;
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c;
	int r;

	/* One spare entry in case the signature leaf must be added. */
	c = calloc(1, sz + 2 * sizeof(sup->entries[0]));
	if (!c)
		return err_set(e, "out of memory");
	memcpy(c, sup, sz);
	if (!find(c, KVM_CPUID_SIGNATURE, 0)) {
		struct kvm_cpuid_entry2 *s = &c->entries[c->nent++];
		struct kvm_cpuid_entry2 *f = &c->entries[c->nent++];

		memset(s, 0, sizeof(*s));
		s->function = KVM_CPUID_SIGNATURE;
		memset(f, 0, sizeof(*f));
		f->function = KVM_CPUID_FEATURES;
		/* Without the kernel's list of PV features, offer kvmclock
		 * (bit 3, KVM_FEATURE_CLOCKSOURCE2) only. */
		f->eax = 1u << 3;
	}
	cpuid_filter(c, v->id, v->vm->ncpus);
	/* KVM emulates the TSC-deadline timer in its LAPIC but leaves the
	 * CPUID bit to user space; it spares the guest LAPIC calibration. */
	if (v->vm->caps.tsc_deadline) {
		struct kvm_cpuid_entry2 *l1 = find(c, 1, 0);

		if (l1)
			l1->ecx |= CPUID_1_ECX_TSC_DEADLINE;
	}
	r = ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	if (r < 0)
		return err_errno(e, errno, "KVM_SET_CPUID2");
	return 0;
}
