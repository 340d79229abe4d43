/* A tiny PCI bus: bus 0 only, function 0 only, host bridge at 00:00.0,
 * configuration mechanism #1 (ports 0xCF8/0xCFC), memory BARs only.
 *
 * A struct pci_func is a type-0 configuration space described as data:
 * cfg[] holds the bytes, wmask[] says which bits the guest may write. BAR
 * sizing falls out of that: a BAR's wmask covers only its address bits, so
 * writing all-ones reads back ~(size-1) | flags, as the spec requires.
 *
 * The core routes port I/O on 0xCF8-0xCFF to pci_bus_pio() and MMIO exits
 * in its PCI window to pci_bus_mmio(). All calls must be serialized by the
 * caller (one lock for the bus and its functions). */
#ifndef VMM_VIRTIO_PCI_BUS_H
#define VMM_VIRTIO_PCI_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct vmstate_writer;
struct vcursor;

#define PCI_CFG_SIZE		256
#define PCI_NUM_BARS		6
#define PCI_MAX_SLOTS		32
#define PCI_CONFIG_ADDR		0xcf8
#define PCI_CONFIG_DATA		0xcfc

#define PCI_BAR_MEM64		0x4	/* BAR flag bits (low nibble) */
#define PCI_BAR_PREFETCH	0x8

#define PCI_CMD_MEM		0x2
#define PCI_CMD_INTX_DISABLE	0x400
#define PCI_CAP_ID_VNDR		0x09
#define PCI_CAP_ID_MSIX		0x11

struct pci_func {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];	/* 1 = guest-writable bit */
	uint64_t bar_size[PCI_NUM_BARS];	/* 0 = no BAR; power of 2 >= 16 */
	uint64_t bar_mapped[PCI_NUM_BARS];	/* address decoded now, 0 = none */
	uint16_t cap_free;		/* next free config offset for a capability */
	uint8_t cap_tail;		/* offset of the last capability's next pointer */
	int slot;			/* device number on bus 0, -1 = not plugged */

	void *opaque;
	/* Called before a config read of [off, off+len) (refresh cfg bytes)
	 * and after a config write landed in cfg; may be NULL. */
	void (*cfg_pre_read)(void *opaque, uint32_t off, uint32_t len);
	void (*cfg_written)(void *opaque, uint32_t off, uint32_t len);
	/* Access at byte off inside BAR bar (len 1..8, inside the BAR). */
	void (*bar_rw)(void *opaque, int bar, uint64_t off, bool write, void *data, uint32_t len);
	/* BAR bar now decodes at bar_mapped[bar] (0 = not at all); may be NULL.
	 * The core re-registers ioeventfds for it here. */
	void (*bar_moved)(void *opaque, int bar);
};

/* Header type 0 with the given identity; class = class<<16|sub<<8|progif. */
void pci_func_init(struct pci_func *f, uint16_t vendor, uint16_t device, uint32_t class,
		   uint16_t subsys_vendor, uint16_t subsys_id);
/* Memory BAR idx (64-bit ones take idx and idx+1). size: power of 2 >= 16. */
void pci_func_add_bar(struct pci_func *f, int idx, uint64_t size, uint8_t flags);
/* Append a capability of len bytes (id and next filled in); returns its
 * offset, or 0 if config space is full. */
uint8_t pci_func_add_cap(struct pci_func *f, uint8_t id, uint8_t len);
uint64_t pci_func_bar_addr(const struct pci_func *f, int idx);
void pci_func_set_irq_line(struct pci_func *f, uint8_t line);

/* Config space accesses (len 1, 2 or 4; off + len <= 256, others ignored). */
void pci_cfg_read(struct pci_func *f, uint32_t off, void *data, uint32_t len);
void pci_cfg_write(struct pci_func *f, uint32_t off, const void *data, uint32_t len);

/* Config space state: the 256 bytes. Load keeps read-only bytes of this
 * function and takes writable bits from the state; identity must match. */
int pci_func_save(const struct pci_func *f, struct vmstate_writer *w, struct err *e);
int pci_func_load(struct pci_func *f, struct vcursor *c, struct err *e);

struct pci_bus {
	uint32_t config_addr;		/* last value written to 0xCF8 */
	struct pci_func host;		/* 00:00.0 */
	struct pci_func *slot[PCI_MAX_SLOTS];
};

void pci_bus_init(struct pci_bus *bus);
/* Plug f into slot (1..31) or the first free one if slot < 0. */
int pci_bus_add(struct pci_bus *bus, struct pci_func *f, int slot, struct err *e);
/* Firmware's job: place every BAR naturally aligned in [base, base+size)
 * (largest first) and enable memory decoding. */
int pci_bus_assign_bars(struct pci_bus *bus, uint64_t base, uint64_t size, struct err *e);
/* Port I/O on 0xCF8..0xCFF (size 1, 2, 4). Returns false if not ours
 * (including 0xCF9, the reset control register the core may emulate). */
bool pci_bus_pio(struct pci_bus *bus, uint16_t port, bool write, uint32_t *data, int size);
/* MMIO: true if a BAR decodes [gpa, gpa+len) and handled it. */
bool pci_bus_mmio(struct pci_bus *bus, uint64_t gpa, bool write, void *data, uint32_t len);
/* The 0xCF8 latch is the only bus state (functions save themselves). */
int pci_bus_save(const struct pci_bus *bus, struct vmstate_writer *w, struct err *e);
int pci_bus_load(struct pci_bus *bus, struct vcursor *c, struct err *e);

#endif
