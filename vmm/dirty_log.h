/* KVM dirty-page logging for live migration / Remus / clones.
 *
 * Page numbering: the result bitmap is indexed by RAM page = memfd offset /
 * 4096 (so it addresses the memfd directly, independent of the PCI hole).
 *
 * ORDERING RULES (violating them loses writes):
 *  1. dirty_log_sync() fetches KVM's log and, with manual protect, clears it
 *     (KVM_CLEAR_DIRTY_LOG re-write-protects exactly the pages reported)
 *     BEFORE returning. Only then may the caller read/copy those pages: a
 *     guest write that lands after the clear sets the bit again and shows up
 *     in the next sync. Copying first and clearing later would drop a write
 *     made between the copy and the clear.
 *  2. Writes to guest RAM made by the VMM itself (device DMA, virtio rings)
 *     are invisible to KVM; devices must mark them in their own bitmap
 *     (lib/bitmap.h bitmap_set_atomic) and the migrator ORs that in too.
 *  3. The final sync must happen with all vCPUs stopped (out of KVM_RUN);
 *     otherwise pages can be dirtied after the last fetch.
 *  4. With KVM_DIRTY_LOG_INITIALLY_SET (used when KVM offers it) every page
 *     reads dirty on the first sync, which is what a first full copy wants,
 *     and avoids write-protecting all of RAM up front.
 * Without manual protect (old kernels), KVM_GET_DIRTY_LOG itself clears and
 * re-protects atomically, which satisfies rule 1 as well. */
#ifndef VMM_DIRTY_LOG_H
#define VMM_DIRTY_LOG_H

#include "lib/bitmap.h"
#include "lib/err.h"

struct vm;

/* Total RAM pages (size of the bitmap dirty_log_sync fills). */
uint64_t dirty_log_npages(const struct vm *vm);
/* Enable manual protect (if available) and KVM_MEM_LOG_DIRTY_PAGES on all
 * RAM slots. On failure, slots already switched are switched back. */
int dirty_log_start(struct vm *vm, struct err *e);
/* OR pages dirtied since the previous sync into *dirty (nbits must be
 * dirty_log_npages()), then clear them in KVM. See rule 1. */
int dirty_log_sync(struct vm *vm, struct bitmap *dirty, struct err *e);
int dirty_log_stop(struct vm *vm, struct err *e);

#endif
