/* One virtual machine: the KVM fds, RAM, vCPUs and devices.
 *
 * Everything that a later state save/restore, migration or clone needs to
 * walk is reachable from here: mem (regions + memfd), vcpus[], devs[]
 * (each with save/load ops), plus the capability flags that decide which
 * optional vCPU state exists on this host. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/bitmap.h"
#include "lib/err.h"
#include "vmm/config.h"
#include "vmm/device.h"
#include "vmm/ioport.h"
#include "vmm/memory.h"
#include "vmm/vcpu_dump.h"

struct kvm_run;
struct kvm_cpuid2;
struct pci_glue;

/* How a run ended, in precedence order: the first stop request wins. */
enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_SUCCESS,	/* guest wrote 0 to the exit port */
	VM_STOP_GUEST_FAIL,	/* guest wrote non-zero to the exit port */
	VM_STOP_POWEROFF,	/* ACPI/system-event poweroff */
	VM_STOP_REBOOT,		/* i8042 reset, triple fault */
	VM_STOP_ERROR,		/* VMM or KVM failure; vm->stop_err has why */
};

/* Process exit status of `vmm run` for each stop reason (see main.c). */
#define VMM_EXIT_OK		0	/* success or poweroff */
#define VMM_EXIT_GUEST_FAIL	1
#define VMM_EXIT_USAGE		2
#define VMM_EXIT_ERROR		3
#define VMM_EXIT_REBOOT		4

struct kvm_caps {
	int api_version;
	int max_vcpus;
	bool xcrs;		/* KVM_CAP_XCRS (absent in the lab) */
	bool xsave;		/* KVM_CAP_XSAVE */
	bool tsc_control;	/* KVM_CAP_TSC_CONTROL (absent in the lab) */
	bool debugregs;		/* KVM_CAP_DEBUGREGS */
	bool vcpu_events;	/* KVM_CAP_VCPU_EVENTS */
	bool manual_dirty_protect; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
	uint64_t manual_dirty_protect_flags;
	bool set_identity_map;	/* KVM_CAP_SET_IDENTITY_MAP_ADDR */
	bool tsc_deadline;	/* KVM_CAP_TSC_DEADLINE_TIMER: LAPIC emulates it */
};

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;	/* mmap of the vCPU fd */
	pthread_t thread;
	bool thread_started;
	/* The thread stopped right after handling an exit, without the
	 * KVM_RUN that completes it (e.g. delivers an MMIO read's data):
	 * the pause path must re-enter KVM_RUN once with immediate_exit. */
	bool io_pending;
	int stopping;		/* vcpus_stop: leave the run loop (a kick alone does not) */
	int dump_req;		/* vcpu_dump.c: set by SIGUSR2, taken by the thread */
	uint64_t exits[VCPU_EXITS_N];	/* written by the vCPU thread only */
};

struct vm {
	struct vm_config cfg;
	int kvm_fd, vm_fd;
	int run_mmap_size;
	struct kvm_caps caps;
	struct kvm_cpuid2 *supported_cpuid;	/* KVM_GET_SUPPORTED_CPUID */

	struct vm_memory mem;

	int ncpus;
	struct vcpu *vcpus;

	struct io_bus pio;
	int ndevs;
	struct device *devs;		/* devs[i].ops == device_table[i], then the
					 * virtio devices from cfg (dev_virtio.h) */
	struct pci_glue *pci;		/* PCI bus, MMIO dispatch, I/O thread */
	/* RAM pages (memfd page index, like dirty_log) written by the VMM
	 * itself (virtio DMA): KVM's dirty log misses them. Set with
	 * bitmap_set_atomic from any thread; take with bitmap_harvest. */
	struct bitmap dma_dirty;
	/* Migration auto-converge: each vCPU sleeps this share (0..99 %) of
	 * every 10 ms kick period (vmm/migration.c kicks, vcpu.c sleeps). */
	int throttle_pct;

	/* Stop handling: the first vm_request_stop wins; the main thread
	 * waits on stop_cond, then kicks and joins the vCPU threads. */
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	enum vm_stop_reason stop_reason;
	int stop_code;			/* guest's exit byte */
	struct err stop_err;
};

/* Create the VM (KVM, RAM, irqchip, devices, vCPUs) and load the kernel.
 * On failure everything set up so far is torn down. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e);
/* Run until the guest stops; returns the reason. */
enum vm_stop_reason vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);
/* Callable from any thread (devices, vCPUs). First call wins. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason why, int code, const char *msg);
/* Raise/lower an ISA interrupt line on the in-kernel irqchip. */
void vm_irq_line(struct vm *vm, int irq, int level);
/* Process exit status (VMM_EXIT_*) for how the run ended. */
int vm_exit_status(const struct vm *vm);

#endif
