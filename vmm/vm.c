/* VM lifecycle: an ordered init list, undone in reverse on failure.
 * Order constraints (KVM): the irqchip must exist before vCPUs are created;
 * memory must exist before the kernel is loaded; the boot vCPU's registers
 * are set by the loader after vCPUs exist. */
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/boot.h"
#include "vmm/kvm.h"
#include "vmm/vcpu.h"

static int vm_mem_init(struct vm *vm, struct err *e)
{
	return mem_init(&vm->mem, vm->vm_fd, vm->cfg.mem_size, vm->cfg.name, e);
}

static void vm_mem_exit(struct vm *vm)
{
	mem_exit(&vm->mem);
}

static int vm_boot_init(struct vm *vm, struct err *e)
{
	/* No kernel: a snapshot restore (vmm/snapshot.c) provides RAM and
	 * vCPU state instead. */
	if (!vm->cfg.kernel)
		return 0;
	return boot_load(vm, e);
}

struct vm_init_step {
	const char *name;
	int (*init)(struct vm *vm, struct err *e);
	void (*exit)(struct vm *vm);	/* NULL: nothing to undo */
};

static const struct vm_init_step init_steps[] = {
	{ "kvm", kvm_open_vm, kvm_close_vm },
	{ "x86", kvm_setup_x86, NULL },		/* freed with the VM fd */
	{ "memory", vm_mem_init, vm_mem_exit },
	{ "devices", devices_realize, devices_exit },
	{ "vcpus", vcpus_create, vcpus_destroy },
	{ "boot", vm_boot_init, NULL },
};
#define N_STEPS ((int)(sizeof(init_steps) / sizeof(init_steps[0])))

int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	int i;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->mem.memfd = -1;
	vm->ncpus = cfg->ncpus;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_cond_init(&vm->stop_cond, NULL);
	for (i = 0; i < N_STEPS; i++) {
		if (init_steps[i].init(vm, e) < 0)
			break;
	}
	if (i == N_STEPS)
		return 0;
	while (--i >= 0)
		if (init_steps[i].exit)
			init_steps[i].exit(vm);
	pthread_cond_destroy(&vm->stop_cond);
	pthread_mutex_destroy(&vm->stop_lock);
	return -1;
}

void vm_destroy(struct vm *vm)
{
	for (int i = N_STEPS - 1; i >= 0; i--)
		if (init_steps[i].exit)
			init_steps[i].exit(vm);
	pthread_cond_destroy(&vm->stop_cond);
	pthread_mutex_destroy(&vm->stop_lock);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason why, int code, const char *msg)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stop_reason == VM_RUNNING) {
		vm->stop_reason = why;
		vm->stop_code = code;
		err_set(&vm->stop_err, "%s", msg ? msg : "");
		pthread_cond_broadcast(&vm->stop_cond);
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

enum vm_stop_reason vm_run(struct vm *vm)
{
	struct err e = { { 0 } };

	if (vcpus_start(vm, &e) < 0) {
		vm_request_stop(vm, VM_STOP_ERROR, 0, e.msg);
		return vm->stop_reason;
	}
	pthread_mutex_lock(&vm->stop_lock);
	while (vm->stop_reason == VM_RUNNING)
		pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
	pthread_mutex_unlock(&vm->stop_lock);
	vcpus_stop(vm);
	return vm->stop_reason;
}

void vm_irq_line(struct vm *vm, int irq, int level)
{
	struct kvm_irq_level l = { .irq = (uint32_t)irq, .level = (uint32_t)level };

	/* Failure here means the irqchip is gone; nothing useful to do. */
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

int vm_exit_status(const struct vm *vm)
{
	switch (vm->stop_reason) {
	case VM_STOP_SUCCESS:
	case VM_STOP_POWEROFF:
		return VMM_EXIT_OK;
	case VM_STOP_GUEST_FAIL:
		return VMM_EXIT_GUEST_FAIL;
	case VM_STOP_REBOOT:
		return VMM_EXIT_REBOOT;
	case VM_RUNNING:
	case VM_STOP_ERROR:
	default:
		return VMM_EXIT_ERROR;
	}
}
