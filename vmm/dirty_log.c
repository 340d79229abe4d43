#include "vmm/dirty_log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vm.h"

#define PAGE_SHIFT 12

uint64_t dirty_log_npages(const struct vm *vm)
{
	return vm->mem.size >> PAGE_SHIFT;
}

static int enable_manual_protect(struct vm *vm, struct err *e)
{
	struct kvm_enable_cap cap;
	uint64_t want = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;

	if (!vm->caps.manual_dirty_protect)
		return 0;
	if (vm->caps.manual_dirty_protect_flags & KVM_DIRTY_LOG_INITIALLY_SET)
		want |= KVM_DIRTY_LOG_INITIALLY_SET;
	memset(&cap, 0, sizeof(cap));
	cap.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
	cap.args[0] = want;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return err_errno(e, errno, "KVM_ENABLE_CAP MANUAL_DIRTY_LOG_PROTECT2");
	return 0;
}

int dirty_log_start(struct vm *vm, struct err *e)
{
	int i;

	/* Manual protect must be on before the slots start logging, so the
	 * first fetch already follows the manual (get, then clear) protocol. */
	if (enable_manual_protect(vm, e) < 0)
		return -1;
	for (i = 0; i < vm->mem.nregions; i++) {
		uint32_t f = vm->mem.regions[i].flags | KVM_MEM_LOG_DIRTY_PAGES;

		if (mem_set_slot_flags(&vm->mem, vm->vm_fd, i, f, e) < 0)
			goto undo;
	}
	return 0;
undo:
	while (--i >= 0)
		mem_set_slot_flags(&vm->mem, vm->vm_fd, i,
				   vm->mem.regions[i].flags & ~KVM_MEM_LOG_DIRTY_PAGES, NULL);
	return err_prefix(e, "dirty log start");
}

int dirty_log_stop(struct vm *vm, struct err *e)
{
	for (int i = 0; i < vm->mem.nregions; i++) {
		uint32_t f = vm->mem.regions[i].flags & ~KVM_MEM_LOG_DIRTY_PAGES;

		if (mem_set_slot_flags(&vm->mem, vm->vm_fd, i, f, e) < 0)
			return err_prefix(e, "dirty log stop");
	}
	return 0;
}

static int sync_slot(struct vm *vm, const struct mem_region *r, uint64_t *scratch,
		     struct bitmap *dirty, struct err *e)
{
	uint64_t npages = r->size >> PAGE_SHIFT;
	struct kvm_dirty_log log;

	memset(&log, 0, sizeof(log));
	log.slot = r->slot;
	log.dirty_bitmap = scratch;
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return err_errno(e, errno, "KVM_GET_DIRTY_LOG slot %u", r->slot);
	if (vm->caps.manual_dirty_protect) {
		struct kvm_clear_dirty_log clr;

		/* Clear exactly what we fetched: bits set after the GET stay
		 * set for the next round. The range covers the whole slot
		 * (first_page 0; num_pages may end unaligned at slot end). */
		memset(&clr, 0, sizeof(clr));
		clr.slot = r->slot;
		clr.first_page = 0;
		clr.num_pages = (uint32_t)npages;
		clr.dirty_bitmap = scratch;
		if (ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clr) < 0)
			return err_errno(e, errno, "KVM_CLEAR_DIRTY_LOG slot %u", r->slot);
	}
	return bitmap_merge_kvm(dirty, r->memfd_off >> PAGE_SHIFT, scratch, npages, e);
}

int dirty_log_sync(struct vm *vm, struct bitmap *dirty, struct err *e)
{
	uint64_t *scratch;
	uint64_t max_pages = 0;
	int r = 0;

	if (dirty->nbits != dirty_log_npages(vm))
		return err_set(e, "dirty log: bitmap has %llu bits, RAM %llu pages",
			       (unsigned long long)dirty->nbits,
			       (unsigned long long)dirty_log_npages(vm));
	for (int i = 0; i < vm->mem.nregions; i++)
		if ((vm->mem.regions[i].size >> PAGE_SHIFT) > max_pages)
			max_pages = vm->mem.regions[i].size >> PAGE_SHIFT;
	/* KVM writes whole u64 words, rounded up. */
	scratch = calloc((size_t)((max_pages + 63) / 64), sizeof(uint64_t));
	if (!scratch)
		return err_set(e, "dirty log: out of memory");
	for (int i = 0; i < vm->mem.nregions && r == 0; i++) {
		memset(scratch, 0, (size_t)((max_pages + 63) / 64) * sizeof(uint64_t));
		r = sync_slot(vm, &vm->mem.regions[i], scratch, dirty, e);
	}
	free(scratch);
	return r;
}
