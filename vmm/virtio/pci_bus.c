#include "vmm/virtio/pci_bus.h"

#include <string.h>

#include "lib/le.h"
#include "lib/vcursor.h"
#include "lib/vmstate.h"

#define CFG_BAR0	0x10
#define CFG_CAP_PTR	0x34
#define CFG_STATUS_CAPS	0x10	/* status register: capability list present */

void pci_func_init(struct pci_func *f, uint16_t vendor, uint16_t device, uint32_t class,
		   uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(f, 0, sizeof(*f));
	f->slot = -1;
	le_put16(f->cfg + 0x00, vendor);
	le_put16(f->cfg + 0x02, device);
	f->cfg[0x08] = 1;			/* revision */
	f->cfg[0x09] = class & 0xff;
	f->cfg[0x0a] = (class >> 8) & 0xff;
	f->cfg[0x0b] = (class >> 16) & 0xff;
	le_put16(f->cfg + 0x2c, subsys_vendor);
	le_put16(f->cfg + 0x2e, subsys_id);
	f->wmask[0x04] = 0x07;			/* I/O, memory, bus master */
	f->wmask[0x05] = PCI_CMD_INTX_DISABLE >> 8;
	f->wmask[0x0c] = 0xff;			/* cache line size */
	f->wmask[0x0d] = 0xff;			/* latency timer */
	f->wmask[0x3c] = 0xff;			/* interrupt line */
	f->cap_free = 0x40;
}

void pci_func_add_bar(struct pci_func *f, int idx, uint64_t size, uint8_t flags)
{
	uint64_t mask = ~(size - 1);		/* address bits the guest may set */

	f->bar_size[idx] = size;
	le_put32(f->cfg + CFG_BAR0 + 4 * idx, flags & 0xf);
	le_put32(f->wmask + CFG_BAR0 + 4 * idx, (uint32_t)mask & ~0xfu);
	if (flags & PCI_BAR_MEM64)
		le_put32(f->wmask + CFG_BAR0 + 4 * (idx + 1), (uint32_t)(mask >> 32));
	else	/* a 32-bit BAR can't be sized past 4 GiB */
		f->bar_size[idx] = size > 0x80000000ULL ? 0x80000000ULL : size;
}

uint8_t pci_func_add_cap(struct pci_func *f, uint8_t id, uint8_t len)
{
	uint8_t off;

	if (len < 2 || f->cap_free < 0x40 || PCI_CFG_SIZE - f->cap_free < len)
		return 0;
	off = (uint8_t)f->cap_free;
	f->cfg[off] = id;
	f->cfg[off + 1] = 0;
	if (f->cap_tail)
		f->cfg[f->cap_tail] = off;
	else
		f->cfg[CFG_CAP_PTR] = off;
	f->cfg[0x06] |= CFG_STATUS_CAPS;
	f->cap_tail = off + 1;
	/* Capabilities are dword-aligned. */
	f->cap_free = (uint16_t)((off + len + 3) & ~3);
	return off;
}

uint64_t pci_func_bar_addr(const struct pci_func *f, int idx)
{
	uint64_t a = le_get32(f->cfg + CFG_BAR0 + 4 * idx) & ~0xfULL;

	if (f->cfg[CFG_BAR0 + 4 * idx] & PCI_BAR_MEM64)
		a |= (uint64_t)le_get32(f->cfg + CFG_BAR0 + 4 * (idx + 1)) << 32;
	return a;
}

void pci_func_set_irq_line(struct pci_func *f, uint8_t line)
{
	f->cfg[0x3c] = line;
	f->cfg[0x3d] = 1;	/* INTA# */
}

/* Recompute which address each BAR decodes; tell the owner about changes. */
static void pci_func_update_bars(struct pci_func *f)
{
	bool mem = le_get16(f->cfg + 0x04) & PCI_CMD_MEM;

	for (int i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t a;

		if (!f->bar_size[i])
			continue;
		a = mem ? pci_func_bar_addr(f, i) : 0;
		/* An all-ones sizing value left in place decodes nothing. */
		if (a && a + f->bar_size[i] - 1 < a)
			a = 0;
		if (a != f->bar_mapped[i]) {
			f->bar_mapped[i] = a;
			if (f->bar_moved)
				f->bar_moved(f->opaque, i);
		}
	}
}

static bool cfg_access_ok(uint32_t off, uint32_t len)
{
	return (len == 1 || len == 2 || len == 4) && off < PCI_CFG_SIZE &&
	       len <= PCI_CFG_SIZE - off;
}

void pci_cfg_read(struct pci_func *f, uint32_t off, void *data, uint32_t len)
{
	if (!cfg_access_ok(off, len)) {
		memset(data, 0xff, len > 8 ? 8 : len);
		return;
	}
	if (f->cfg_pre_read)
		f->cfg_pre_read(f->opaque, off, len);
	memcpy(data, f->cfg + off, len);
}

void pci_cfg_write(struct pci_func *f, uint32_t off, const void *data, uint32_t len)
{
	const uint8_t *v = data;

	if (!cfg_access_ok(off, len))
		return;
	for (uint32_t i = 0; i < len; i++) {
		uint8_t m = f->wmask[off + i];

		f->cfg[off + i] = (uint8_t)((f->cfg[off + i] & ~m) | (v[i] & m));
	}
	if (off < 0x28 && off + len > 0x04)	/* command or BARs touched */
		pci_func_update_bars(f);
	if (f->cfg_written)
		f->cfg_written(f->opaque, off, len);
}

int pci_func_save(const struct pci_func *f, struct vmstate_writer *w, struct err *e)
{
	return vmstate_put(w, f->cfg, PCI_CFG_SIZE, e);
}

int pci_func_load(struct pci_func *f, struct vcursor *c, struct err *e)
{
	uint8_t s[PCI_CFG_SIZE];

	if (vcursor_get_bytes(c, s, sizeof(s)) < 0)
		return err_set(e, "pci: truncated config space");
	if (memcmp(s, f->cfg, 4) || memcmp(s + 8, f->cfg + 8, 4) ||
	    memcmp(s + 0x2c, f->cfg + 0x2c, 4))
		return err_set(e, "pci: config space of a different device (%02x%02x:%02x%02x)",
			       s[1], s[0], s[3], s[2]);
	for (int i = 0; i < PCI_CFG_SIZE; i++)
		f->cfg[i] = (uint8_t)((f->cfg[i] & ~f->wmask[i]) | (s[i] & f->wmask[i]));
	f->cfg[0x3c] = s[0x3c];
	f->cfg[0x3d] = s[0x3d];
	pci_func_update_bars(f);
	return 0;
}

void pci_bus_init(struct pci_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	/* i440FX-like host bridge identity; Linux needs nothing from it. */
	pci_func_init(&bus->host, 0x8086, 0x1237, 0x060000, 0, 0);
	bus->host.slot = 0;
	bus->slot[0] = &bus->host;
}

int pci_bus_add(struct pci_bus *bus, struct pci_func *f, int slot, struct err *e)
{
	if (slot < 0) {
		for (slot = 1; slot < PCI_MAX_SLOTS && bus->slot[slot]; slot++)
			;
	}
	if (slot < 1 || slot >= PCI_MAX_SLOTS)
		return err_set(e, "pci: no free slot");
	if (bus->slot[slot])
		return err_set(e, "pci: slot %d already in use", slot);
	bus->slot[slot] = f;
	f->slot = slot;
	return 0;
}

int pci_bus_assign_bars(struct pci_bus *bus, uint64_t base, uint64_t size, struct err *e)
{
	uint64_t next = base;

	/* Largest sizes first keeps every BAR naturally aligned with no holes
	 * beyond the first alignment. Sizes are powers of two. */
	for (int bit = 63; bit >= 4; bit--) {
		for (int s = 0; s < PCI_MAX_SLOTS; s++) {
			struct pci_func *f = bus->slot[s];

			if (!f)
				continue;
			for (int i = 0; i < PCI_NUM_BARS; i++) {
				uint64_t sz = f->bar_size[i];
				uint64_t a;

				if (sz != 1ULL << bit)
					continue;
				a = (next + sz - 1) & ~(sz - 1);
				if (a < next || a - base > size || sz > size - (a - base))
					return err_set(e, "pci: BARs do not fit in %#llx+%#llx",
						       (unsigned long long)base,
						       (unsigned long long)size);
				le_put32(f->cfg + CFG_BAR0 + 4 * i,
					 (uint32_t)a | (f->cfg[CFG_BAR0 + 4 * i] & 0xf));
				if (f->cfg[CFG_BAR0 + 4 * i] & PCI_BAR_MEM64)
					le_put32(f->cfg + CFG_BAR0 + 4 * (i + 1), (uint32_t)(a >> 32));
				else if (a >> 32)
					return err_set(e, "pci: 32-bit BAR above 4 GiB");
				next = a + sz;
			}
		}
	}
	for (int s = 0; s < PCI_MAX_SLOTS; s++) {
		if (!bus->slot[s])
			continue;
		bus->slot[s]->cfg[0x04] |= PCI_CMD_MEM;
		pci_func_update_bars(bus->slot[s]);
	}
	return 0;
}

bool pci_bus_pio(struct pci_bus *bus, uint16_t port, bool write, uint32_t *data, int size)
{
	uint32_t a = bus->config_addr, off;
	struct pci_func *f;

	if (port == PCI_CONFIG_ADDR && size == 4) {
		if (write)
			bus->config_addr = *data & 0x80fffffc;
		else
			*data = bus->config_addr;
		return true;
	}
	if (port < PCI_CONFIG_DATA || port > PCI_CONFIG_DATA + 3) {
		/* 0xcf9 is the chipset reset register: the core's, not ours.
		 * Other narrow accesses to 0xcf8-0xcfb (Linux's type-1 probe
		 * pokes 0xcfb) are ignored. */
		if (port < PCI_CONFIG_ADDR || port >= PCI_CONFIG_DATA || port == 0xcf9)
			return false;
		if (!write)
			*data = 0xffffffff;
		return true;
	}
	/* Enabled, bus 0, function 0, a populated slot; else nothing answers. */
	f = NULL;
	if ((a & 0x80000000) && ((a >> 16) & 0xff) == 0 && ((a >> 8) & 7) == 0)
		f = bus->slot[(a >> 11) & 0x1f];
	off = (a & 0xfc) + (port - PCI_CONFIG_DATA);
	if (!f || (uint32_t)size > 4u - (uint32_t)(port - PCI_CONFIG_DATA)) {
		if (!write)
			*data = 0xffffffff;
		return true;
	}
	if (write) {
		uint8_t b[4];

		le_put32(b, *data);
		pci_cfg_write(f, off, b, (uint32_t)size);
	} else {
		uint8_t b[4] = { 0 };

		pci_cfg_read(f, off, b, (uint32_t)size);
		*data = le_get32(b);
	}
	return true;
}

bool pci_bus_mmio(struct pci_bus *bus, uint64_t gpa, bool write, void *data, uint32_t len)
{
	for (int s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_func *f = bus->slot[s];

		if (!f || !f->bar_rw)
			continue;
		for (int i = 0; i < PCI_NUM_BARS; i++) {
			uint64_t a = f->bar_mapped[i], sz = f->bar_size[i];

			if (!a || gpa < a || gpa - a >= sz || len > sz - (gpa - a))
				continue;
			f->bar_rw(f->opaque, i, gpa - a, write, data, len);
			return true;
		}
	}
	return false;
}

int pci_bus_save(const struct pci_bus *bus, struct vmstate_writer *w, struct err *e)
{
	return vmstate_put_u32(w, bus->config_addr, e);
}

int pci_bus_load(struct pci_bus *bus, struct vcursor *c, struct err *e)
{
	if (vcursor_get_u32(c, &bus->config_addr) < 0)
		return err_set(e, "pci: truncated bus state");
	return 0;
}
