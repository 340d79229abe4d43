/* AML for the PCI root bridge (\_SB.PCI0, PNP0A03) appended to the DSDT, so
 * that Linux's ACPI PCI root driver scans bus 0 (without it an ACPI guest
 * sees no PCI devices at all). _CRS: bus 0, config ports 0xCF8-0xCFF, the
 * rest of the I/O space and the BAR window LAYOUT_PCI_MMIO_*. _PRT: slot s,
 * pin p (0 = INTA) -> GSI acpi_pci_intx_gsi(s, p) on the IOAPIC. */
#ifndef VMM_ACPI_PCI_H
#define VMM_ACPI_PCI_H

#include <stddef.h>
#include <stdint.h>

/* GSIs 16..23 (IOAPIC pins above the ISA range). */
static inline int acpi_pci_intx_gsi(int slot, int pin)
{
	return 16 + ((slot + pin) & 7);
}

/* Writes the AML into buf; returns its length, or 0 if cap is too small. */
size_t acpi_pci_aml(uint8_t *buf, size_t cap);

#endif
