/* Per-vCPU CPUID table derived from KVM_GET_SUPPORTED_CPUID. */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H

#include "lib/err.h"

struct kvm_cpuid2;
struct vcpu;

/* Pure: adjust a copy of the supported table for vCPU apic_id of ncpus
 * (APIC IDs, topology counts, hypervisor bit, KVM signature leaves,
 * features we don't emulate). Exposed for unit tests. */
void cpuid_filter(struct kvm_cpuid2 *c, int apic_id, int ncpus);
/* Build and KVM_SET_CPUID2 for this vCPU. */
int cpuid_setup_vcpu(struct vcpu *v, struct err *e);

#endif
