/* Live migration in the vmm: the migrate/vmif.h ops over struct vm, the
 * source side (control ops migrate / migrate-status / migrate-cancel, one
 * migration thread running mig_send) and the destination side
 * (`vmm run --incoming HOST:PORT`: listen, accept one connection, mig_recv).
 *
 * Source outcomes (migrate/send.h has the ownership rules):
 *   success    one summary line on stderr; migrate-status keeps answering
 *              (outcome SUCCEEDED, final stats) until Quit or 5 s, then the
 *              vmm exits 0 (VM_STOP_SUCCESS)
 *   failure    the guest keeps (or resumes) running; migrate-status has the
 *              error; another migrate may be tried
 *   AMBIGUOUS  the guest stays paused, status PAUSED_AMBIGUOUS; an explicit
 *              `vmm ctl resume` is the operator's decision that this side lives
 * Destination: exit 0 after the guest ran and stopped as usual; a failed
 * incoming migration prints one "vmm: incoming: ..." line and exits 3. */
#ifndef VMM_MIGRATION_H
#define VMM_MIGRATION_H

#include "lib/err.h"
#include "migrate/vmif.h"
#include "proto/api.h"

struct vm;
struct vmm_session;

extern const struct mig_vm_ops vmm_mig_ops;

/* Per-process setup: the session the ops drive, and the default secret
 * file (`vmm run --secret-file`, may be NULL). */
void migration_setup(struct vmm_session *s, const char *secret_file);

/* 1 once a migration succeeded (this copy is dead; Quit ends the linger). */
int migration_migrated(void);

/* Control ops (vmm/control/server.h); opaque is the session. */
int migration_op_start(void *opaque, const Vmm__Migrate *args, struct err *e);
int migration_op_status(void *opaque, Vmm__MigrationStats *out, struct err *e);
int migration_op_cancel(void *opaque, struct err *e);
/* -1 with a message while a migration owns the VM's run state (pause,
 * resume and snapshot from the control socket are refused then). Resume
 * after an AMBIGUOUS outcome is allowed and clears it. */
int migration_check_idle(const char *what, struct err *e);
/* Adjust the reported state: MIGRATING / PAUSED_AMBIGUOUS / MIGRATED. */
void migration_status_state(Vmm__VmState *state);
/* A successful resume after AMBIGUOUS: the operator chose this side. */
void migration_resumed_by_operator(void);

/* The VM stopped (guest poweroff, quit, or migrated): cancel a running
 * migration and join its thread before the VM is torn down. */
void migration_shutdown(void);

/* Destination: listen on hostport, accept one connection, receive the VM
 * (already created without a kernel) with mig_recv. 0 = GO received (the
 * caller resumes the guest and calls migration_incoming_done), else -1. */
int migration_incoming(struct vm *vm, const char *hostport, const char *secret_file,
		       struct err *e);
/* After resume on the destination: announce and print the summary line. */
void migration_incoming_done(struct vm *vm);

#endif
