/* Complete architectural state of one x86 vCPU as plain structs, for
 * snapshots, migration and clones. Serialization into a vmstate section is
 * the caller's business; these are just KVM's own structs plus MSRs.
 *
 * Optional parts (has_*) depend on host capabilities: XCRS and XSAVE may be
 * absent (the lab lacks XCRS); a destination must not be given parts it
 * cannot load, so compare caps before migrating. */
#ifndef VMM_VCPU_STATE_H
#define VMM_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct vcpu;
struct vm;

#define VCPU_STATE_MAX_MSRS 256

struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;		/* used when XSAVE is absent */
	struct kvm_xsave xsave;		/* 4 KiB legacy-size area */
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
	uint32_t nmsrs;
	struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
	bool has_xsave, has_xcrs, has_events, has_debugregs;
};

/* MSR indices worth saving: KVM_GET_MSR_INDEX_LIST, minus ones this vCPU
 * cannot read. Fills idx (up to max); returns count or -1. */
int vcpu_state_msr_list(struct vm *vm, uint32_t *idx, int max, struct err *e);
/* Both require the vCPU to be out of KVM_RUN (stopped). */
int vcpu_state_save(struct vcpu *v, struct vcpu_state *s, struct err *e);
int vcpu_state_load(struct vcpu *v, const struct vcpu_state *s, struct err *e);

#endif
