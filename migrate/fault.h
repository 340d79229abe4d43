/* Test-only fault injection on the migration destination (vmm run
 * --incoming ... --mig-fault SPEC; documented in migrate/README.md). Faults
 * that cannot be produced from outside at a precise protocol step:
 *
 *   stall-switchover  after ROUND_END(FINAL) (the source is paused in
 *                     stop-and-copy) stop reading and say so on stderr, so
 *                     a test can kill or cut the destination during
 *                     switchover; gives up after MIG_FAULT_STALL_MS.
 *   lose-go           after ACK_LOADED, the GO frame is read and thrown
 *                     away as if the link lost it, and the connection is
 *                     closed without GO_ACK: the destination discards the
 *                     guest, the source (GO sent, no GO_ACK) must end
 *                     AMBIGUOUS and stay paused.
 *
 * Process-wide (one migration per destination process); none by default. */
#ifndef MIGRATE_FAULT_H
#define MIGRATE_FAULT_H

#include "lib/err.h"

#define MIG_FAULT_STALL_MS	120000

enum mig_fault {
	MIG_FAULT_NONE,
	MIG_FAULT_STALL_SWITCHOVER,
	MIG_FAULT_LOSE_GO,
};

/* Parse and arm SPEC (one of the names above, or "none"). */
int mig_fault_set(const char *spec, struct err *e);
enum mig_fault mig_fault_get(void);

#endif
