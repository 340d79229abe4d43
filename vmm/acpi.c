#include "vmm/acpi.h"

#include <string.h>

#include "vmm/acpi_pci.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#define HDR_LEN		36
#define FADT_LEN	276	/* ACPI 6.x FADT */
#define FADT_REV	6
#define FACS_LEN	64
#define FADT_F_WBINVD		(1u << 0)
#define FADT_F_PWR_BUTTON	(1u << 4)	/* no fixed power button */
#define FADT_F_SLP_BUTTON	(1u << 5)	/* no fixed sleep button */
#define FADT_F_RESET_REG_SUP	(1u << 10)
#define BOOT_ARCH_NO_VGA	(1u << 2)
#define MADT_PCAT_COMPAT	1u

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "VMMKVM", 6);
	memcpy(t + 16, "VMMTABLE", 8);
	put32(t + 24, 1);
	memcpy(t + 28, "VMMC", 4);
	put32(t + 32, 1);
}

static void finish(uint8_t *t)
{
	uint32_t len;

	memcpy(&len, t + 4, 4);
	t[9] = 0;
	t[9] = (uint8_t)(0 - sum(t, len));
}

/* Generic Address Structure, system I/O space. */
static void gas_io(uint8_t *g, uint16_t port, uint8_t bits)
{
	g[0] = 1;		/* SystemIO */
	g[1] = bits;		/* register bit width */
	g[2] = 0;		/* bit offset */
	g[3] = 1;		/* access size: byte */
	put64(g + 4, port);
}

/* \_S5_ = Package() { 5, 5, 0, 0 } (SLP_TYPa, SLP_TYPb, reserved...). */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_',	/* NameOp "_S5_" */
	0x12, 0x08, 0x04,		/* PackageOp, PkgLength 8, 4 elements */
	0x0a, ACPI_S5_TYP, 0x0a, ACPI_S5_TYP, 0x00, 0x00,
};

long acpi_build(uint8_t *buf, size_t cap, uint64_t base, int ncpus, size_t *used)
{
	/* Offsets, each table 16-byte aligned; FACS must be 64-byte aligned. */
	size_t rsdp = 0, xsdt = 64, facs = 128, fadt = 192;
	static uint8_t pci_aml[4096];
	size_t pci_len = acpi_pci_aml(pci_aml, sizeof(pci_aml));
	size_t dsdt_len = HDR_LEN + sizeof(dsdt_aml) + pci_len;
	size_t dsdt = fadt + ((FADT_LEN + 15) & ~15u);
	size_t madt = dsdt + ((dsdt_len + 15) & ~15u);
	size_t madt_len = HDR_LEN + 8 + (size_t)ncpus * 8 + 12 + 10 + 6;
	uint8_t *p;

	if (ncpus < 1 || ncpus > 254 || !pci_len || madt + madt_len > cap)
		return -1;
	memset(buf, 0, madt + madt_len);

	/* RSDP (ACPI 2.0+, 36 bytes). */
	p = buf + rsdp;
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, "VMMKVM", 6);
	p[15] = 2;				/* revision */
	put32(p + 20, 36);			/* length */
	put64(p + 24, base + xsdt);
	p[8] = (uint8_t)(0 - sum(p, 20));
	p[32] = (uint8_t)(0 - sum(p, 36));

	/* XSDT: FADT, MADT. */
	p = buf + xsdt;
	header(p, "XSDT", HDR_LEN + 16, 1);
	put64(p + 36, base + fadt);
	put64(p + 44, base + madt);
	finish(p);

	/* FACS (no checksum field). */
	p = buf + facs;
	memcpy(p, "FACS", 4);
	put32(p + 4, FACS_LEN);
	p[32] = 2;				/* version */

	/* FADT. */
	p = buf + fadt;
	header(p, "FACP", FADT_LEN, FADT_REV);
	put32(p + 36, (uint32_t)(base + facs));	/* FIRMWARE_CTRL */
	put32(p + 40, (uint32_t)(base + dsdt));	/* DSDT */
	put16(p + 46, ACPI_SCI_IRQ);		/* SCI_INT */
	put32(p + 48, 0);			/* SMI_CMD: always in ACPI mode */
	put32(p + 56, ACPI_PM1A_EVT);		/* PM1a_EVT_BLK */
	put32(p + 64, ACPI_PM1A_CNT);		/* PM1a_CNT_BLK */
	p[88] = 4;				/* PM1_EVT_LEN */
	p[89] = 2;				/* PM1_CNT_LEN */
	put16(p + 96, 101);			/* P_LVL2_LAT > 100: no C2 */
	put16(p + 98, 1001);			/* P_LVL3_LAT > 1000: no C3 */
	put16(p + 109, BOOT_ARCH_NO_VGA);	/* IAPC_BOOT_ARCH */
	put32(p + 112, FADT_F_WBINVD | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
		       FADT_F_RESET_REG_SUP);
	gas_io(p + 116, ACPI_RESET_PORT, 8);	/* RESET_REG */
	p[128] = ACPI_RESET_VALUE;
	p[131] = 0;				/* minor version */
	put64(p + 132, base + facs);		/* X_FIRMWARE_CTRL */
	put64(p + 140, base + dsdt);		/* X_DSDT */
	gas_io(p + 148, ACPI_PM1A_EVT, 32);	/* X_PM1a_EVT_BLK */
	gas_io(p + 172, ACPI_PM1A_CNT, 16);	/* X_PM1a_CNT_BLK */
	p[148 + 3] = 2;				/* word access */
	p[172 + 3] = 2;
	memcpy(p + 268, "VMMKVM\0\0", 8);	/* hypervisor vendor identity */
	finish(p);

	/* DSDT. */
	p = buf + dsdt;
	header(p, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy(p + HDR_LEN, dsdt_aml, sizeof(dsdt_aml));
	memcpy(p + HDR_LEN + sizeof(dsdt_aml), pci_aml, pci_len);	/* \_SB.PCI0 */
	finish(p);

	/* MADT: LAPICs 0..n-1, IOAPIC (id n, GSI base 0), SCI override
	 * (IRQ 9 level/active-high, as QEMU does), LINT1 = NMI. ISA IRQs
	 * otherwise map 1:1 to GSIs, matching KVM's default routing. */
	p = buf + madt;
	header(p, "APIC", (uint32_t)madt_len, 4);
	put32(p + 36, (uint32_t)LAYOUT_LAPIC);
	put32(p + 40, MADT_PCAT_COMPAT);
	uint8_t *q = p + 44;
	for (int i = 0; i < ncpus; i++, q += 8) {
		q[0] = 0;		/* Processor Local APIC */
		q[1] = 8;
		q[2] = (uint8_t)i;	/* ACPI processor UID */
		q[3] = (uint8_t)i;	/* APIC ID */
		put32(q + 4, 1);	/* enabled */
	}
	q[0] = 1;			/* I/O APIC */
	q[1] = 12;
	q[2] = (uint8_t)ncpus;
	put32(q + 4, (uint32_t)LAYOUT_IOAPIC);
	put32(q + 8, 0);
	q += 12;
	q[0] = 2;			/* Interrupt Source Override */
	q[1] = 10;
	q[2] = 0;			/* ISA */
	q[3] = ACPI_SCI_IRQ;
	put32(q + 4, ACPI_SCI_IRQ);
	put16(q + 8, 0x000d);		/* active high, level triggered */
	q += 10;
	q[0] = 4;			/* Local APIC NMI */
	q[1] = 6;
	q[2] = 0xff;			/* all processors */
	put16(q + 3, 0);
	q[5] = 1;			/* LINT1 */
	finish(p);

	*used = madt + madt_len;
	return (long)rsdp;
}

int acpi_write(struct vm_memory *m, int ncpus, uint64_t *rsdp, struct err *e)
{
	uint8_t *dst = mem_gpa_to_hva(m, LAYOUT_ACPI, LAYOUT_ACPI_MAX);
	size_t used;
	long off;

	if (!dst)
		return err_set(e, "ACPI area not in RAM");
	off = acpi_build(dst, LAYOUT_ACPI_MAX, LAYOUT_ACPI, ncpus, &used);
	if (off < 0)
		return err_set(e, "ACPI tables for %d CPUs do not fit", ncpus);
	*rsdp = LAYOUT_ACPI + (uint64_t)off;
	return 0;
}
