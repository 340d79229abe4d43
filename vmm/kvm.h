/* /dev/kvm: open, API version and capability checks, VM-wide x86 setup. */
#ifndef VMM_KVM_H
#define VMM_KVM_H

#include "lib/err.h"

struct vm;

/* Open /dev/kvm, check the API version and required capabilities, record
 * optional ones in vm->caps, create the VM fd. */
int kvm_open_vm(struct vm *vm, struct err *e);
/* TSS / identity map, in-kernel irqchip (PIC+IOAPIC+LAPICs) and PIT. Must
 * precede vCPU creation. */
int kvm_setup_x86(struct vm *vm, struct err *e);
void kvm_close_vm(struct vm *vm);

#endif
