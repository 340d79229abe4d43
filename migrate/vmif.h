/* The abstract VM the migration engine drives.
 *
 * migrate/ never touches KVM: it calls these ops on an opaque `void *vm`.
 * The vmm core implements them over struct vm (vmm/dirty_log.h, vcpu_state,
 * devices); tests implement them over malloc'd RAM and a writer thread.
 * Every op returns 0, or -1 with err set (ops without an err never fail).
 *
 * Page numbering ("RAM page index"): the regions returned by ram_regions, in
 * array order, concatenated; page i of region k has index
 * (sum of sizes of regions < k) / 4096 + i. Dirty bitmaps and the pagecodec
 * gfn field on the wire both use this index (for the vmm it equals memfd
 * offset / 4096, as in vmm/dirty_log.h).
 *
 * THE ORDERING CONTRACT (what makes pre-copy correct):
 *  - dirty_start() is called before the first full-RAM pass reads any page.
 *    The engine then calls dirty_sync() once (still before reading) and
 *    treats every page as dirty for round 0. From that sync on, any guest or
 *    device write to a page sets its bit for the NEXT dirty_sync, so a page
 *    read by round N and written afterwards is re-sent in round N+1.
 *  - dirty_sync() must clear/re-arm tracking for the pages it reports BEFORE
 *    returning (vmm/dirty_log.h rule 1): the engine reads those pages only
 *    after the call, so a write racing with the read shows up next time.
 *    Reporting extra pages is always safe (e.g. KVM_DIRTY_LOG_INITIALLY_SET
 *    reports everything on the first sync); missing one loses data.
 *  - The final dirty_sync() happens AFTER pause() returned: vCPUs are out of
 *    KVM_RUN and device I/O (virtio queues, DMA, timers that write RAM) is
 *    quiesced, so nothing can dirty a page after that sync and the last round
 *    is complete. save_state() is only called while paused, after that sync.
 */
#ifndef MIGRATE_VMIF_H
#define MIGRATE_VMIF_H

#include <stddef.h>
#include <stdint.h>

#include "lib/bitmap.h"
#include "lib/err.h"
#include "lib/vmstate.h"

#define MIG_MAX_REGIONS	8

struct mig_ram {
	uint8_t *host;		/* host mapping of the region, size bytes */
	uint64_t gpa;		/* guest physical base */
	uint64_t size;		/* bytes, multiple of 4096, > 0 */
	int memfd;		/* backing memfd, -1 if none (informational) */
	uint64_t memfd_off;	/* offset of host[0] in memfd */
};

struct mig_vm_ops {
	/* Fill regions[0..*n) (on entry *n is the capacity, MIG_MAX_REGIONS).
	 * Must be stable for the whole migration (no hotplug). */
	int (*ram_regions)(void *vm, struct mig_ram *regions, int *n, struct err *e);

	/* Start dirty tracking of all RAM, guest and VMM writes alike. */
	int (*dirty_start)(void *vm, struct err *e);
	/* OR every page dirtied since the previous sync (or since dirty_start)
	 * into *out (nbits = total RAM pages), including pages the VMM's own
	 * devices wrote, and re-arm tracking for them before returning. */
	int (*dirty_sync)(void *vm, struct bitmap *out, struct err *e);
	/* Stop tracking. Called on every exit path once dirty_start succeeded. */
	int (*dirty_stop)(void *vm, struct err *e);

	/* Stop all vCPUs and quiesce device I/O; on return no RAM write can
	 * happen until resume(). Idempotent. */
	int (*pause)(void *vm, struct err *e);
	/* Undo pause(). The source calls it when a migration fails before the
	 * destination acknowledged; the destination's caller calls it after
	 * mig_recv() returned 0. */
	int (*resume)(void *vm, struct err *e);

	/* Append vCPU + device state (vmstate sections) to w. Paused only. */
	int (*save_state)(void *vm, struct vmstate_writer *w, struct err *e);
	/* Load a complete vmstate file produced by the peer's save_state
	 * (destination, paused/not yet started). Must validate everything. */
	int (*load_state)(void *vm, const uint8_t *buf, size_t len, struct err *e);

	/* Slow vCPUs down to (100 - pct)% of their time, pct in 0..99; 0 =
	 * unthrottled. Optional (NULL: auto-converge is unavailable). */
	int (*set_throttle)(void *vm, int pct, struct err *e);
	/* After resume on the destination: gratuitous ARP / virtio-net
	 * announce so the network finds the guest. Optional. */
	int (*announce)(void *vm);

	/* Optional. Source: CPU model / device compatibility blob carried in
	 * HELLO (opaque to migrate/). Destination: refuse an incompatible blob
	 * with a clear error. NULL = empty blob / accept anything. */
	int (*compat_info)(void *vm, uint8_t *buf, size_t cap, size_t *len, struct err *e);
	int (*compat_check)(void *vm, const uint8_t *buf, size_t len, struct err *e);
};

#endif
