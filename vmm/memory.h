/* Guest RAM: one memfd (so other processes - page servers, clone targets,
 * Remus backups - can map the very same pages), mapped once MAP_SHARED into
 * this process, exposed to KVM as one memory slot per guest-physical region.
 *
 * Layout: RAM below the 32-bit PCI hole is [0, min(size, 3 GiB)); the rest
 * goes above 4 GiB. The memfd offset of a region is its position in "RAM
 * order", so region i's host address is ram + memfd_off. */
#ifndef VMM_MEMORY_H
#define VMM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define MEM_MAX_REGIONS 4

struct mem_region {
	uint64_t gpa;		/* guest physical start */
	uint64_t size;		/* bytes, multiple of 4 KiB */
	uint64_t memfd_off;	/* offset of gpa in the memfd */
	uint8_t *host;		/* = ram + memfd_off */
	uint32_t slot;		/* KVM memory slot id */
	uint32_t flags;		/* KVM_MEM_* currently set on the slot */
};

struct vm_memory {
	int memfd;		/* -1 when not created */
	uint8_t *ram;		/* whole memfd mapping */
	uint64_t size;		/* total RAM bytes */
	int nregions;
	struct mem_region regions[MEM_MAX_REGIONS];
};

/* Pure: split size bytes of RAM around the PCI hole. Returns region count. */
int mem_layout(uint64_t size, struct mem_region *out, int max);
/* Create the memfd, map it and register the slots with vm_fd. */
int mem_init(struct vm_memory *m, int vm_fd, uint64_t size, const char *name, struct err *e);
void mem_exit(struct vm_memory *m);
/* Host pointer for [gpa, gpa+len) if it lies inside one region, else NULL. */
void *mem_gpa_to_hva(const struct vm_memory *m, uint64_t gpa, uint64_t len);
/* Copy into guest memory; fails with a message naming what if out of RAM. */
int mem_write(const struct vm_memory *m, uint64_t gpa, const void *src, uint64_t len,
	      const char *what, struct err *e);
/* End of the RAM region that starts at 0 (the "low memory" end). */
uint64_t mem_low_end(const struct vm_memory *m);
/* Change a slot's flags (e.g. KVM_MEM_LOG_DIRTY_PAGES) in place. */
int mem_set_slot_flags(struct vm_memory *m, int vm_fd, int idx, uint32_t flags, struct err *e);

#endif
