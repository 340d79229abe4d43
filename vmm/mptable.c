#include "vmm/mptable.h"

#include <string.h>

#include "vmm/layout.h"
#include "vmm/memory.h"

#define MP_SPEC_REV	4
#define MP_PROCESSOR	0
#define MP_BUS		1
#define MP_IOAPIC	2
#define MP_INTSRC	3
#define MP_LINTSRC	4
#define MP_INT_INT	0
#define MP_INT_NMI	1
#define MP_INT_EXTINT	3
#define CPU_ENABLED	0x1
#define CPU_BSP		0x2
#define APIC_VERSION	0x14
#define IOAPIC_VERSION	0x11
#define ISA_IRQS	16

struct mpf {		/* floating pointer, 16 bytes, 16-byte aligned */
	char sig[4];	/* "_MP_" */
	uint32_t physptr;
	uint8_t length;	/* in 16-byte units */
	uint8_t spec;
	uint8_t checksum;
	uint8_t feature[5];	/* feature[0] = 0: config table present */
} __attribute__((packed));

struct mpc_header {
	char sig[4];	/* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t signature, featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type, irqtype;
	uint16_t irqflag;
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)(0 - s);
}

long mptable_build(uint8_t *buf, size_t cap, uint32_t base, int ncpus)
{
	size_t need = sizeof(struct mpf) + sizeof(struct mpc_header) +
		      (size_t)ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
		      sizeof(struct mpc_ioapic) + (ISA_IRQS + 2) * sizeof(struct mpc_intsrc);
	struct mpf *mpf = (struct mpf *)buf;
	struct mpc_header *h = (struct mpc_header *)(buf + sizeof(*mpf));
	uint8_t *p = (uint8_t *)(h + 1);
	uint8_t ioapic_id = (uint8_t)ncpus;	/* after the LAPIC IDs */
	uint16_t count = 0;

	if (need > cap || ncpus < 1 || ncpus > 254)
		return -1;
	memset(buf, 0, need);
	for (int i = 0; i < ncpus; i++, count++) {
		struct mpc_cpu c = {
			.type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = APIC_VERSION,
			.cpuflag = CPU_ENABLED | (i == 0 ? CPU_BSP : 0),
			.signature = 0x600,		/* family 6 */
			.featureflag = 0x201,		/* FPU, APIC */
		};
		memcpy(p, &c, sizeof(c));
		p += sizeof(c);
	}
	struct mpc_bus bus = { .type = MP_BUS, .busid = 0, .bustype = "ISA   " };
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	count++;
	struct mpc_ioapic io = { .type = MP_IOAPIC, .apicid = ioapic_id, .apicver = IOAPIC_VERSION,
				 .flags = 1, .apicaddr = (uint32_t)LAYOUT_IOAPIC };
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	count++;
	/* ISA IRQ n -> IOAPIC pin n, matching KVM's default GSI routing
	 * (GSI n drives PIC line n and IOAPIC pin n; the in-kernel PIT uses
	 * GSI 0). IRQ 2 is the PIC cascade and has no IOAPIC input. */
	for (int irq = 0; irq < ISA_IRQS; irq++) {
		if (irq == 2)
			continue;
		struct mpc_intsrc s = { .type = MP_INTSRC, .irqtype = MP_INT_INT, .irqflag = 0,
					.srcbus = 0, .srcbusirq = (uint8_t)irq,
					.dstapic = ioapic_id, .dstirq = (uint8_t)irq };
		memcpy(p, &s, sizeof(s));
		p += sizeof(s);
		count++;
	}
	/* Virtual wire: PIC on LINT0, NMI on LINT1 of every LAPIC (0xff). */
	struct mpc_intsrc l0 = { .type = MP_LINTSRC, .irqtype = MP_INT_EXTINT, .dstapic = 0xff, .dstirq = 0 };
	struct mpc_intsrc l1 = { .type = MP_LINTSRC, .irqtype = MP_INT_NMI, .dstapic = 0xff, .dstirq = 1 };
	memcpy(p, &l0, sizeof(l0));
	p += sizeof(l0);
	memcpy(p, &l1, sizeof(l1));
	p += sizeof(l1);
	count += 2;

	memcpy(h->sig, "PCMP", 4);
	h->length = (uint16_t)(p - (uint8_t *)h);
	h->spec = MP_SPEC_REV;
	memcpy(h->oem, "VMM     ", 8);
	memcpy(h->product, "VMM-KVM     ", 12);
	h->count = count;
	h->lapic = (uint32_t)LAYOUT_LAPIC;
	h->checksum = checksum((uint8_t *)h, h->length);

	memcpy(mpf->sig, "_MP_", 4);
	mpf->physptr = base + (uint32_t)sizeof(*mpf);
	mpf->length = 1;
	mpf->spec = MP_SPEC_REV;
	mpf->checksum = checksum((uint8_t *)mpf, sizeof(*mpf));
	return (long)(p - buf);
}

int mptable_write(struct vm_memory *m, int ncpus, struct err *e)
{
	/* The MP table area ends where the ACPI tables begin. */
	const size_t cap = LAYOUT_ACPI - LAYOUT_MPTABLE;
	uint8_t *dst = mem_gpa_to_hva(m, LAYOUT_MPTABLE, cap);
	long n;

	if (!dst)
		return err_set(e, "MP table area not in RAM");
	n = mptable_build(dst, cap, (uint32_t)LAYOUT_MPTABLE, ncpus);
	if (n < 0)
		return err_set(e, "MP table: %d CPUs do not fit", ncpus);
	return 0;
}
