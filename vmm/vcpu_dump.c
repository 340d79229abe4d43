#include "vmm/vcpu_dump.h"

#include <errno.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vm.h"

#define VCPU_DUMP_SIGNAL SIGUSR2
#define VCPU_KICK_SIGNAL SIGUSR1	/* vcpu.c: interrupts KVM_RUN */

/* The VM whose running vCPU threads a SIGUSR2 dumps; NULL while none run.
 * dump_busy counts handlers between their load of dump_vm and their last
 * pthread_kill: vcpu_dump_detach waits for it to drop to 0, so no handler
 * signals a thread that vcpus_stop is about to join (or has joined). */
static struct vm *dump_vm;
static int dump_busy;

static void dump_handler(int sig)
{
	static const char none[] = "vmm: state dump: no vCPU running (paused or stopping)\n";
	int saved = errno;
	struct vm *vm;

	(void)sig;
	__atomic_add_fetch(&dump_busy, 1, __ATOMIC_SEQ_CST);
	vm = __atomic_load_n(&dump_vm, __ATOMIC_SEQ_CST);
	if (!vm) {
		ssize_t r = write(STDERR_FILENO, none, sizeof(none) - 1);

		(void)r;
	} else {
		/* Flag first, then kick: the vCPU thread polls the flag after
		 * every KVM_RUN return, so a kick that lands between its check
		 * and the next KVM_RUN only delays the dump to the next exit.
		 * pthread_kill is async-signal-safe. */
		for (int i = 0; i < vm->ncpus; i++) {
			__atomic_store_n(&vm->vcpus[i].dump_req, 1, __ATOMIC_RELEASE);
			pthread_kill(vm->vcpus[i].thread, VCPU_KICK_SIGNAL);
		}
	}
	__atomic_sub_fetch(&dump_busy, 1, __ATOMIC_SEQ_CST);
	errno = saved;
}

void vcpu_dump_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = dump_handler;
	sa.sa_flags = SA_RESTART;	/* other threads' syscalls just go on */
	sigaction(VCPU_DUMP_SIGNAL, &sa, NULL);
}

void vcpu_dump_attach(struct vm *vm)
{
	__atomic_store_n(&dump_vm, vm, __ATOMIC_SEQ_CST);
}

void vcpu_dump_detach(void)
{
	__atomic_store_n(&dump_vm, NULL, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&dump_busy, __ATOMIC_SEQ_CST))
		sched_yield();
}

static const char *mp_state_name(uint32_t st)
{
	switch (st) {
	case KVM_MP_STATE_RUNNABLE: return "runnable";
	case KVM_MP_STATE_UNINITIALIZED: return "wait-for-sipi";
	case KVM_MP_STATE_INIT_RECEIVED: return "init-received";
	case KVM_MP_STATE_HALTED: return "halted";
	case KVM_MP_STATE_SIPI_RECEIVED: return "sipi-received";
	default: return "other";
	}
}

void vcpu_dump_poll(struct vcpu *v)
{
	struct kvm_mp_state mp = { 0 };
	struct kvm_sregs s;
	struct kvm_regs r;

	if (!__atomic_exchange_n(&v->dump_req, 0, __ATOMIC_ACQ_REL))
		return;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(stderr, "vmm: vcpu%d: state dump: %s\n", v->id, strerror(errno));
		return;
	}
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		mp.mp_state = ~0u;
	fprintf(stderr,
		"vmm: vcpu%d: %s rip 0x%llx rsp 0x%llx rflags 0x%llx cs 0x%x "
		"cr0 0x%llx cr2 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx apic_base 0x%llx; "
		"exits: io %llu mmio %llu eintr %llu other %llu\n",
		v->id, mp_state_name(mp.mp_state), (unsigned long long)r.rip, (unsigned long long)r.rsp,
		(unsigned long long)r.rflags, s.cs.selector, (unsigned long long)s.cr0,
		(unsigned long long)s.cr2, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
		(unsigned long long)s.efer, (unsigned long long)s.apic_base,
		(unsigned long long)v->exits[VCPU_EXITS_IO],
		(unsigned long long)v->exits[VCPU_EXITS_MMIO],
		(unsigned long long)v->exits[VCPU_EXITS_INTR],
		(unsigned long long)v->exits[VCPU_EXITS_OTHER]);
}
