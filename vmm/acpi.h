/* Minimal ACPI tables so a guest can power off and reset through ACPI:
 * RSDP -> XSDT -> { FADT -> { FACS, DSDT with \_S5 }, MADT }.
 *
 * Fixed (non-hardware-reduced) ACPI keeps the PC legacy timers/PIC the MP
 * table path already uses. SMI_CMD = 0 tells the OS the machine is always
 * in ACPI mode. The PM1 registers are emulated by vmm/dev_acpi_pm.c at the
 * ports below; the SCI (IRQ 9) is declared but never raised. */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct vm_memory;

#define ACPI_PM1A_EVT	0x600	/* 4 bytes: status(2), enable(2) */
#define ACPI_PM1A_CNT	0x604	/* 2 bytes */
#define ACPI_RESET_PORT	0x608	/* 1 byte, RESET_VALUE = 1 */
#define ACPI_RESET_VALUE 1
#define ACPI_S5_TYP	5	/* SLP_TYP the DSDT's \_S5 announces */
#define ACPI_SCI_IRQ	9

#define PM1_CNT_SCI_EN	0x0001
#define PM1_CNT_SLP_EN	0x2000
#define PM1_CNT_SLP_TYP(v) (((v) >> 10) & 7)

/* Pure: build all tables for a guest address base into buf. Returns the
 * RSDP offset in buf (RSDP first, so 0) and sets *used, or -1. */
long acpi_build(uint8_t *buf, size_t cap, uint64_t base, int ncpus, size_t *used);
/* Build at LAYOUT_ACPI; *rsdp = guest address of the RSDP. */
int acpi_write(struct vm_memory *m, int ncpus, uint64_t *rsdp, struct err *e);

#endif
