/* Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
 * learns its CPUs (LAPIC IDs 0..n-1), the IOAPIC and the ISA IRQ wiring. */
#ifndef VMM_MPTABLE_H
#define VMM_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct vm_memory;

/* Pure: build floating pointer + config table for ncpus at guest address
 * base into buf (size cap). Returns bytes used or -1. */
long mptable_build(uint8_t *buf, size_t cap, uint32_t base, int ncpus);
/* Build at LAYOUT_MPTABLE in guest RAM. */
int mptable_write(struct vm_memory *m, int ncpus, struct err *e);

#endif
