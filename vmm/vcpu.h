/* vCPU creation and the per-vCPU run loop thread. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include "lib/err.h"

struct vm;
struct vcpu;

/* Create vm->ncpus vCPUs (fd, kvm_run mapping, CPUID, MSRs, LAPIC). On
 * failure, already created ones are destroyed. */
int vcpus_create(struct vm *vm, struct err *e);
/* Start one thread per vCPU. Non-boot vCPUs sit in KVM_RUN until the
 * guest's LAPIC sends INIT/SIPI (in-kernel irqchip). */
int vcpus_start(struct vm *vm, struct err *e);
/* Make every vCPU leave KVM_RUN and its thread return, then join them. */
void vcpus_stop(struct vm *vm);
void vcpus_destroy(struct vm *vm);
/* Interrupt KVM_RUN of every started vCPU thread (they continue unless
 * stopping; with vm->throttle_pct they sleep first). Call with the
 * session lock held so no thread is being started or joined meanwhile. */
void vcpus_kick(struct vm *vm);

#endif
