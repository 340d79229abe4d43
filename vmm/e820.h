/* The guest's physical memory map (BIOS e820 style), shared by the Linux
 * loader (boot_params.e820_table) and the Multiboot loader (mmap). */
#ifndef VMM_E820_H
#define VMM_E820_H

#include <stdint.h>

struct vm_memory;

#define E820_RAM	1
#define E820_RESERVED	2

struct e820_ent {
	uint64_t addr, size;
	uint32_t type;
};

/* Returns the number of entries (at most max). Pure. */
int e820_build(const struct vm_memory *m, struct e820_ent *out, int max);

#endif
