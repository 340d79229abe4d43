#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/vm.h"

struct cap_req {
	int cap;
	const char *name;
};

/* Without these we cannot run a PC-like guest at all. */
static const struct cap_req required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQ_INJECT_STATUS, "KVM_CAP_IRQ_INJECT_STATUS" },
};

static int check_ext(int fd, int cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

int kvm_open_vm(struct vm *vm, struct err *e)
{
	struct kvm_caps *c = &vm->caps;
	size_t i;
	int r;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return err_errno(e, errno, "open /dev/kvm");
	c->api_version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (c->api_version != KVM_API_VERSION) {
		err_set(e, "/dev/kvm: API version %d, need %d", c->api_version, KVM_API_VERSION);
		goto fail;
	}
	for (i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (!check_ext(vm->kvm_fd, required_caps[i].cap)) {
			err_set(e, "/dev/kvm: missing required capability %s", required_caps[i].name);
			goto fail;
		}
	}
	c->max_vcpus = check_ext(vm->kvm_fd, KVM_CAP_MAX_VCPUS);
	if (!c->max_vcpus)
		c->max_vcpus = check_ext(vm->kvm_fd, KVM_CAP_NR_VCPUS);
	if (!c->max_vcpus)
		c->max_vcpus = 4;	/* documented default when both are absent */
	c->xcrs = check_ext(vm->kvm_fd, KVM_CAP_XCRS);
	c->xsave = check_ext(vm->kvm_fd, KVM_CAP_XSAVE);
	c->tsc_control = check_ext(vm->kvm_fd, KVM_CAP_TSC_CONTROL);
	c->debugregs = check_ext(vm->kvm_fd, KVM_CAP_DEBUGREGS);
	c->vcpu_events = check_ext(vm->kvm_fd, KVM_CAP_VCPU_EVENTS);
	c->set_identity_map = check_ext(vm->kvm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR);
	c->tsc_deadline = check_ext(vm->kvm_fd, KVM_CAP_TSC_DEADLINE_TIMER);
	r = check_ext(vm->kvm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	c->manual_dirty_protect = r > 0;
	c->manual_dirty_protect_flags = (uint64_t)r;

	if (vm->cfg.ncpus > c->max_vcpus) {
		err_set(e, "--cpus %d exceeds KVM's limit of %d", vm->cfg.ncpus, c->max_vcpus);
		goto fail;
	}
	vm->run_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_mmap_size < (int)sizeof(struct kvm_run)) {
		err_errno(e, errno, "KVM_GET_VCPU_MMAP_SIZE");
		goto fail;
	}
	/* KVM_CREATE_VM may fail with EINTR when the host is busy; retry. */
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		err_errno(e, errno, "KVM_CREATE_VM");
		goto fail;
	}
	return 0;
fail:
	close(vm->kvm_fd);
	vm->kvm_fd = -1;
	return -1;
}

int kvm_setup_x86(struct vm *vm, struct err *e)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = LAYOUT_KVM_IDENTITY_MAP;
	int nent = 256;

	/* Intel needs these even with unrestricted guests; harmless on AMD. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		return err_errno(e, errno, "KVM_SET_TSS_ADDR");
	if (vm->caps.set_identity_map &&
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return err_errno(e, errno, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_errno(e, errno, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_errno(e, errno, "KVM_CREATE_PIT2");

	/* Fetch the supported CPUID table once; grow until it fits (E2BIG). */
	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));

		if (!c)
			return err_set(e, "out of memory");
		c->nent = (uint32_t)nent;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->supported_cpuid = c;
			break;
		}
		free(c);
		if (errno != E2BIG || nent > 4096)
			return err_errno(e, errno, "KVM_GET_SUPPORTED_CPUID");
		nent *= 2;
	}
	return 0;
}

void kvm_close_vm(struct vm *vm)
{
	free(vm->supported_cpuid);
	vm->supported_cpuid = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}
