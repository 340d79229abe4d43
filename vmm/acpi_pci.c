#include "vmm/acpi_pci.h"

#include <string.h>

#include "vmm/layout.h"

struct aml {
	uint8_t b[4096];
	size_t n;
	int overflow;
};

static void put(struct aml *a, const void *p, size_t len)
{
	if (a->n + len > sizeof(a->b)) {
		a->overflow = 1;
		return;
	}
	memcpy(a->b + a->n, p, len);
	a->n += len;
}

static void put8(struct aml *a, uint8_t v) { put(a, &v, 1); }
static void put16(struct aml *a, uint16_t v) { put8(a, (uint8_t)v); put8(a, (uint8_t)(v >> 8)); }
static void put32(struct aml *a, uint32_t v) { put16(a, (uint16_t)v); put16(a, (uint16_t)(v >> 16)); }

/* PkgLength covering the encoding itself plus len bytes that follow. */
static void pkglen(struct aml *a, size_t len)
{
	if (len + 1 < 0x40) {
		put8(a, (uint8_t)(len + 1));
	} else if (len + 2 < 0x1000) {
		len += 2;
		put8(a, (uint8_t)(0x40 | (len & 0xf)));
		put8(a, (uint8_t)(len >> 4));
	} else {
		len += 3;
		put8(a, (uint8_t)(0x80 | (len & 0xf)));
		put8(a, (uint8_t)(len >> 4));
		put8(a, (uint8_t)(len >> 12));
	}
}

/* Integer constant (smallest encoding). */
static void integer(struct aml *a, uint32_t v)
{
	if (v == 0) {
		put8(a, 0x00);		/* ZeroOp */
	} else if (v == 1) {
		put8(a, 0x01);		/* OneOp */
	} else if (v <= 0xff) {
		put8(a, 0x0a);
		put8(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		put8(a, 0x0b);
		put16(a, (uint16_t)v);
	} else {
		put8(a, 0x0c);
		put32(a, v);
	}
}

static void name_int(struct aml *a, const char *seg, uint32_t v)
{
	put8(a, 0x08);			/* NameOp */
	put(a, seg, 4);
	integer(a, v);
}

/* Word/DWord address space descriptor (ACPI 6.4.3.5.2/3). */
static void addr_word(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	put8(a, 0x88);
	put16(a, 13);
	put8(a, type);
	put8(a, 0x0c);			/* MinFixed | MaxFixed, producer, positive decode */
	put8(a, tflags);
	put16(a, 0);			/* granularity */
	put16(a, min);
	put16(a, max);
	put16(a, 0);			/* translation */
	put16(a, (uint16_t)(max - min + 1));
}

static void addr_dword_mem(struct aml *a, uint32_t min, uint32_t len)
{
	put8(a, 0x87);
	put16(a, 23);
	put8(a, 0);			/* memory */
	put8(a, 0x0c);
	put8(a, 0x01);			/* read-write, non-cacheable */
	put32(a, 0);
	put32(a, min);
	put32(a, min + len - 1);
	put32(a, 0);
	put32(a, len);
}

size_t acpi_pci_aml(uint8_t *buf, size_t cap)
{
	static struct aml crs, prt, dev, out;

	memset(&crs, 0, sizeof(crs));
	memset(&prt, 0, sizeof(prt));
	memset(&dev, 0, sizeof(dev));
	memset(&out, 0, sizeof(out));

	/* _CRS resource template. */
	addr_word(&crs, 2, 0, 0, 0);		/* bus numbers 0-0 */
	put8(&crs, 0x47);			/* IO(Decode16, 0xcf8, 0xcf8, 1, 8) */
	put8(&crs, 0x01);
	put16(&crs, 0xcf8);
	put16(&crs, 0xcf8);
	put8(&crs, 1);
	put8(&crs, 8);
	addr_word(&crs, 1, 0x03, 0x0000, 0x0cf7);	/* I/O, entire range */
	addr_word(&crs, 1, 0x03, 0x0d00, 0xffff);
	addr_dword_mem(&crs, (uint32_t)LAYOUT_PCI_MMIO_BASE, (uint32_t)LAYOUT_PCI_MMIO_SIZE);
	put8(&crs, 0x79);			/* end tag */
	put8(&crs, 0x00);

	/* _PRT entries: Package { addr 0xSSSSFFFF, pin, 0, GSI }. */
	for (int slot = 1; slot < 32; slot++) {
		for (int pin = 0; pin < 4; pin++) {
			struct aml e = { .n = 0 };

			put8(&e, 4);			/* NumElements */
			integer(&e, (uint32_t)slot << 16 | 0xffff);
			integer(&e, (uint32_t)pin);
			integer(&e, 0);			/* source: GSI */
			integer(&e, (uint32_t)acpi_pci_intx_gsi(slot, pin));
			put8(&prt, 0x12);		/* PackageOp */
			pkglen(&prt, e.n);
			put(&prt, e.b, e.n);
		}
	}

	/* Device body. */
	put8(&dev, 0x08);
	put(&dev, "_HID", 4);
	put8(&dev, 0x0c);
	put32(&dev, 0x030ad041);		/* EisaId("PNP0A03") */
	name_int(&dev, "_ADR", 0);
	name_int(&dev, "_UID", 0);
	name_int(&dev, "_SEG", 0);
	name_int(&dev, "_BBN", 0);
	put8(&dev, 0x08);			/* Name(_CRS, Buffer() {...}) */
	put(&dev, "_CRS", 4);
	{
		struct aml size = { .n = 0 };

		integer(&size, (uint32_t)crs.n);
		put8(&dev, 0x11);		/* BufferOp */
		pkglen(&dev, size.n + crs.n);
		put(&dev, size.b, size.n);
		put(&dev, crs.b, crs.n);
	}
	put8(&dev, 0x08);			/* Name(_PRT, Package() {...}) */
	put(&dev, "_PRT", 4);
	put8(&dev, 0x12);
	pkglen(&dev, 1 + prt.n);
	put8(&dev, 31 * 4);
	put(&dev, prt.b, prt.n);

	/* Scope(\_SB) { Device(PCI0) { ... } } */
	{
		struct aml d = { .n = 0 };

		put8(&d, 0x5b);			/* DeviceOp */
		put8(&d, 0x82);
		pkglen(&d, 4 + dev.n);
		put(&d, "PCI0", 4);
		put(&d, dev.b, dev.n);
		put8(&out, 0x10);		/* ScopeOp */
		pkglen(&out, 5 + d.n);
		put(&out, "\\_SB_", 5);
		put(&out, d.b, d.n);
		if (d.overflow)
			return 0;
	}
	if (crs.overflow || prt.overflow || dev.overflow || out.overflow || out.n > cap)
		return 0;
	memcpy(buf, out.b, out.n);
	return out.n;
}
