/* The running vmm: VM run state (RUNNING/PAUSED/...), pause/resume of all
 * vCPUs, the control socket ops, snapshot, and `vmm run` glue for
 * --control, --restore and --incoming (vmm/session.c, vmm/migration.c). */
#ifndef VMM_SESSION_H
#define VMM_SESSION_H

#include <pthread.h>
#include <stdint.h>

#include "lib/err.h"
#include "proto/api.h"

struct vm;
struct vm_config;

struct vmm_session {
	struct vm *vm;
	/* Serializes everything that starts or stops vCPU threads and the
	 * state: the main thread (run, final stop) and the control thread. */
	pthread_mutex_t lock;
	Vmm__VmState state;
	uint64_t t_start_ns;	/* when the VM was started */
	uint64_t run_ns;	/* time spent RUNNING before run_since_ns */
	uint64_t run_since_ns;	/* start of the current RUNNING period */
};

void session_init(struct vmm_session *s, struct vm *vm);
void session_destroy(struct vmm_session *s);
/* Start the vCPUs, wait for a stop request, stop them. */
void session_run(struct vmm_session *s);
/* Stop all vCPUs (each out of KVM_RUN, pending I/O completed) / restart. */
int session_pause(struct vmm_session *s, struct err *e);
int session_resume(struct vmm_session *s, struct err *e);
/* Pause if running, snapshot into dir, resume if it was running. */
int session_snapshot(struct vmm_session *s, const char *dir, struct err *e);

/* `vmm run` after option parsing: build (or --restore) the VM, serve
 * --control, run. Returns 0 when the VM ran (the caller reports how it
 * stopped and destroys it), else the exit status (message printed). */
int vmm_session_main(struct vm *vm, struct vm_config *cfg, const char *restore_dir,
		     const char *control_path, const char *incoming, const char *secret_file);

#endif
