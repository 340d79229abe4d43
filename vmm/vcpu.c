#include "vmm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cpuid.h"
#include "vmm/vcpu_dump.h"
#include "vmm/ioport.h"
#include "vmm/pci_glue.h"
#include "vmm/regs.h"
#include "vmm/vm.h"

/* SIGUSR1 only interrupts KVM_RUN; the handler does nothing. */
#define VCPU_KICK_SIGNAL SIGUSR1

/* The vCPU thread's kvm_run. The kick handler sets immediate_exit in it,
 * so a kick that lands outside KVM_RUN (while handling an exit, sleeping,
 * or on the way back in) still makes the next KVM_RUN return at once
 * instead of being lost for a whole throttle period. */
static __thread struct kvm_run *vcpu__run;

static void kick_handler(int sig)
{
	(void)sig;
	if (vcpu__run)
		__atomic_store_n(&vcpu__run->immediate_exit, 1, __ATOMIC_RELEASE);
}

static int vcpu_create_one(struct vm *vm, struct vcpu *v, int id, struct err *e)
{
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		v->fd = -1;
		return err_errno(e, errno, "KVM_CREATE_VCPU");
	}
	v->run = mmap(NULL, (size_t)vm->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return err_errno(e, errno, "mmap kvm_run");
	}
	if (cpuid_setup_vcpu(v, e) < 0 || regs_setup_vcpu(v, e) < 0)
		return -1;
	return 0;
}

static void vcpu_destroy_one(struct vm *vm, struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)vm->run_mmap_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

int vcpus_create(struct vm *vm, struct err *e)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;	/* no SA_RESTART: KVM_RUN gets EINTR */
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);

	vm->vcpus = calloc((size_t)vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return err_set(e, "out of memory");
	for (int i = 0; i < vm->ncpus; i++)
		vm->vcpus[i].fd = -1;
	for (int i = 0; i < vm->ncpus; i++) {
		if (vcpu_create_one(vm, &vm->vcpus[i], i, e) < 0) {
			err_prefix(e, "vcpu %d", i);
			vcpus_destroy(vm);
			return -1;
		}
	}
	vcpu_dump_init();
	return 0;
}

void vcpus_destroy(struct vm *vm)
{
	if (!vm->vcpus)
		return;
	vcpu_dump_detach();
	for (int i = 0; i < vm->ncpus; i++)
		vcpu_destroy_one(vm, &vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* String I/O (rep ins/outs) arrives as count back-to-back items. */
	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
		ioport_dispatch(&v->vm->pio, run->io.port, is_write, p, run->io.size);
}

static void report_internal(struct vcpu *v, const char *what, unsigned long long code)
{
	struct kvm_regs regs;
	char msg[256];

	memset(&regs, 0, sizeof(regs));
	ioctl(v->fd, KVM_GET_REGS, &regs);
	snprintf(msg, sizeof(msg), "vcpu %d: %s (0x%llx) at rip 0x%llx", v->id, what, code,
		 (unsigned long long)regs.rip);
	vm_request_stop(v->vm, VM_STOP_ERROR, 0, msg);
}

/* Returns false when the thread should stop. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	v->exits[run->exit_reason == KVM_EXIT_IO ? VCPU_EXITS_IO :
		 run->exit_reason == KVM_EXIT_MMIO ? VCPU_EXITS_MMIO : VCPU_EXITS_OTHER]++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		/* PCI BARs; anything else is open bus. */
		if (!pci_glue_mmio(v->vm, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
				   run->mmio.len) && !run->mmio.is_write)
			memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; treat as power off. */
		vm_request_stop(v->vm, VM_STOP_POWEROFF, 0, "guest halted");
		return false;
	case KVM_EXIT_SHUTDOWN:
		/* Triple fault: a PC resets. */
		vm_request_stop(v->vm, VM_STOP_REBOOT, 0, "triple fault");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			vm_request_stop(v->vm, VM_STOP_POWEROFF, 0, "system event: shutdown");
		else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vm_request_stop(v->vm, VM_STOP_REBOOT, 0, "system event: reset");
		else
			report_internal(v, "system event", run->system_event.type);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		report_internal(v, "KVM_EXIT_FAIL_ENTRY, hardware reason",
				run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		report_internal(v, "KVM_EXIT_INTERNAL_ERROR, suberror", run->internal.suberror);
		return false;
	default:
		report_internal(v, "unhandled exit reason", run->exit_reason);
		return false;
	}
}

/* Auto-converge: sleep pct% of the 10 ms kick period, to an absolute
 * deadline. The next kick arrives while we sleep (the period is the same)
 * and must not cut the sleep short: a relative usleep() woken by it let the
 * guest run from then to the following kick, so any throttle gave the guest
 * about half its time and auto-converge never converged a busy guest.
 * A stop (immediate_exit, then a kick) ends the sleep at once. */
static void vcpu_throttle_sleep(struct vcpu *v, int pct)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += (long)pct * 100000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		if (__atomic_load_n(&v->stopping, __ATOMIC_ACQUIRE))
			break;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "vcpu%d", v->id);
	pthread_setname_np(pthread_self(), name);
	vcpu__run = v->run;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	for (;;) {
		/* stopping and immediate_exit are set by vcpus_stop before the
		 * kick signal, so a stop that races with entering KVM_RUN is
		 * not lost; a plain kick (throttle) only sets immediate_exit. */
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->exits[VCPU_EXITS_INTR]++;
				vcpu_dump_poll(v);
				if (__atomic_load_n(&v->stopping, __ATOMIC_ACQUIRE))
					break;
				/* Consumed: a kick after this is seen next time. */
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
				int pct = __atomic_load_n(&v->vm->throttle_pct, __ATOMIC_RELAXED);

				if (pct > 0)	/* pct % of the 10 ms kick period */
					vcpu_throttle_sleep(v, pct);
				continue;
			}
			char msg[128];

			snprintf(msg, sizeof(msg), "vcpu %d: KVM_RUN: %s", v->id, strerror(errno));
			vm_request_stop(v->vm, VM_STOP_ERROR, 0, msg);
			break;
		}
		vcpu_dump_poll(v);
		if (!handle_exit(v)) {
			v->io_pending = true;
			break;
		}
		/* A stop request (stopping + immediate_exit) is honoured by the
		 * next KVM_RUN: it completes this exit's I/O, then returns EINTR
		 * at once and the EINTR path above sees stopping. Doing it here,
		 * in the vCPU's own thread, spares the pause path a KVM_RUN from another thread, which costs KVM a
		 * synchronize_rcu() per vCPU (vcpu->pid changes). */
	}
	return NULL;
}

int vcpus_start(struct vm *vm, struct err *e)
{
	sigset_t set, old;
	int r;

	/* Threads start with the kick signal blocked and unblock it themselves,
	 * so no kick can hit a thread before its loop is ready. */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		r = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (r) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			vcpus_stop(vm);
			return err_errno(e, r, "vcpu %d: pthread_create", i);
		}
		v->thread_started = true;
	}
	/* The main thread keeps the signal blocked: kicks are for vCPUs. */
	vcpu_dump_attach(vm);
	return 0;
}

void vcpus_kick(struct vm *vm)
{
	for (int i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].thread_started)
			pthread_kill(vm->vcpus[i].thread, VCPU_KICK_SIGNAL);
}

void vcpus_stop(struct vm *vm)
{
	vcpu_dump_detach();	/* no state-dump kick may hit a joined thread */
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->thread_started)
			continue;
		__atomic_store_n(&v->stopping, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->thread_started)
			continue;
		pthread_join(v->thread, NULL);
		v->thread_started = false;
		v->stopping = 0;
		v->run->immediate_exit = 0;
	}
}
