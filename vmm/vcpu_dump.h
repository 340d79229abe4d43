/* Where is the guest? A SIGUSR2 to the vmm process makes every running vCPU
 * print one line to stderr: run state (runnable, halted = idle, wait-for-sipi),
 * RIP/RSP/RFLAGS, CS, CR0/2/3/4, EFER and
 * its KVM exit counters since start. For operators and tests debugging a
 * guest that went silent (no serial output): `kill -USR2 $(pidof vmm)`. */
#ifndef VMM_VCPU_DUMP_H
#define VMM_VCPU_DUMP_H

#include <stdint.h>

struct vm;
struct vcpu;

/* Exit counters kept per vCPU (written only by its own thread). */
enum vcpu_exit_counter {
	VCPU_EXITS_IO,
	VCPU_EXITS_MMIO,
	VCPU_EXITS_INTR,	/* KVM_RUN returned EINTR (kicks) */
	VCPU_EXITS_OTHER,
	VCPU_EXITS_N,
};

/* Install the SIGUSR2 handler (once, before any vCPU thread exists; until
 * a VM is attached it only says that no vCPU runs). */
void vcpu_dump_init(void);
/* vm's vCPU threads all run: SIGUSR2 dumps them (one VM per process). */
void vcpu_dump_attach(struct vm *vm);
/* Before vCPU threads are stopped/joined: SIGUSR2 no longer touches them;
 * returns once no handler is still signalling them. */
void vcpu_dump_detach(void);
/* Called by a vCPU thread after KVM_RUN returned: prints its state if a dump
 * was requested since the last call. */
void vcpu_dump_poll(struct vcpu *v);

#endif
