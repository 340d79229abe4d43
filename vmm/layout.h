/* Guest physical memory layout shared by the boot loaders.
 *
 * Low memory (below 1 MiB) holds the boot data structures; everything is in
 * the first 640 KiB, which the e820 map reports as usable RAM the guest may
 * reclaim once it has consumed them. 0x9fc00-0xfffff is reserved (EBDA, VGA
 * hole, BIOS area where the MP table lives). */
#ifndef VMM_LAYOUT_H
#define VMM_LAYOUT_H

#define LAYOUT_GDT		0x00000500ULL	/* 4 descriptors */
#define LAYOUT_BOOT_PARAMS	0x00007000ULL	/* Linux zero page / multiboot info */
#define LAYOUT_PML4		0x00009000ULL
#define LAYOUT_PDPT		0x0000a000ULL
#define LAYOUT_PD		0x0000b000ULL	/* 4 pages: 4 GiB of 2 MiB pages */
#define LAYOUT_CMDLINE		0x00020000ULL
#define LAYOUT_CMDLINE_MAX	0x00010000ULL
#define LAYOUT_EBDA		0x0009fc00ULL
#define LAYOUT_MPTABLE		0x000f0000ULL	/* scanned by Linux in 0xf0000-0xfffff */
#define LAYOUT_ACPI		0x000f1000ULL	/* RSDP scanned in 0xe0000-0xfffff */
#define LAYOUT_ACPI_MAX		0x00004000ULL
#define LAYOUT_BIOS_END		0x00100000ULL
#define LAYOUT_KERNEL		0x00100000ULL	/* bzImage protected-mode code */

/* 32-bit MMIO hole: [3 GiB, 4 GiB) is never RAM (PCI BARs, IOAPIC, LAPIC). */
#define LAYOUT_PCI_HOLE_START	0xc0000000ULL
#define LAYOUT_4G		0x100000000ULL
/* PCI BARs are placed here (pci_bus_assign_bars); the DSDT's PCI0 _CRS
 * describes this window. */
#define LAYOUT_PCI_MMIO_BASE	0xe0000000ULL
#define LAYOUT_PCI_MMIO_SIZE	0x10000000ULL
#define LAYOUT_IOAPIC		0xfec00000ULL
#define LAYOUT_LAPIC		0xfee00000ULL

/* Addresses KVM needs for its own use on Intel (inside the PCI hole). */
#define LAYOUT_KVM_IDENTITY_MAP	0xfeffc000ULL
#define LAYOUT_KVM_TSS		0xfeffd000ULL	/* 3 pages */

/* GDT selectors set up by regs_setup_* (GDT entry index * 8). */
#define SEL_CODE32		0x08
#define SEL_CODE64		0x10
#define SEL_DATA		0x18

#endif
