#include "vmm/e820.h"

#include "vmm/layout.h"
#include "vmm/memory.h"

static int add(struct e820_ent *out, int n, int max, uint64_t addr, uint64_t size, uint32_t type)
{
	if (n < max && size)
		out[n++] = (struct e820_ent){ addr, size, type };
	return n;
}

int e820_build(const struct vm_memory *m, struct e820_ent *out, int max)
{
	int n = 0;

	/* Conventional memory, EBDA (MP table copy area), BIOS ROM area. */
	n = add(out, n, max, 0, LAYOUT_EBDA, E820_RAM);
	n = add(out, n, max, LAYOUT_EBDA, 0xa0000 - LAYOUT_EBDA, E820_RESERVED);
	n = add(out, n, max, LAYOUT_MPTABLE, LAYOUT_BIOS_END - LAYOUT_MPTABLE, E820_RESERVED);
	for (int i = 0; i < m->nregions; i++) {
		const struct mem_region *r = &m->regions[i];
		uint64_t start = r->gpa < LAYOUT_BIOS_END ? LAYOUT_BIOS_END : r->gpa;
		uint64_t end = r->gpa + r->size;

		if (end > start)
			n = add(out, n, max, start, end - start, E820_RAM);
	}
	return n;
}
