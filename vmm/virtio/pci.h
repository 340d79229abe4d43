/* Modern (virtio 1.x, non-transitional) virtio-pci transport.
 *
 * PCI identity: vendor 0x1af4, device 0x1040 + virtio type, revision 1.
 * One 64-bit memory BAR (BAR0, VIRTIO_PCI_BAR_SIZE bytes) holds everything:
 *
 *   0x0000 common cfg   (struct virtio_pci_common_cfg, 0x38 bytes)
 *   0x1000 ISR          (1 byte, read-to-clear)
 *   0x2000 device cfg   (vd->config)
 *   0x3000 notify       (queue q at 0x3000 + 4*q; notify_off_multiplier 4)
 *   0x4000 MSI-X table  (16 bytes per vector)
 *   0x5000 MSI-X PBA
 *
 * Capabilities: common, notify, ISR, device, PCI-cfg-access (vendor caps)
 * and MSI-X. With MSI-X enabled interrupts go out through cb->msi (the core
 * uses KVM_SIGNAL_MSI or an irqfd with a GSI route); otherwise the ISR bit
 * is set and cb->intx raises the level-triggered INTx line, lowered again
 * when the driver reads the ISR. */
#ifndef VMM_VIRTIO_PCI_H
#define VMM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "vmm/virtio/pci_bus.h"
#include "vmm/virtio/virtio.h"

#define VIRTIO_PCI_VENDOR	0x1af4
#define VIRTIO_PCI_DEVICE_BASE	0x1040
#define VIRTIO_PCI_BAR_SIZE	0x8000

#define VIRTIO_PCI_COMMON_OFF	0x0000
#define VIRTIO_PCI_COMMON_LEN	0x38
#define VIRTIO_PCI_ISR_OFF	0x1000
#define VIRTIO_PCI_DEVICE_OFF	0x2000
#define VIRTIO_PCI_NOTIFY_OFF	0x3000
#define VIRTIO_PCI_NOTIFY_MULT	4
#define VIRTIO_PCI_MSIX_OFF	0x4000
#define VIRTIO_PCI_PBA_OFF	0x5000
#define VIRTIO_PCI_MSIX_MAX	(VIRTIO_MAX_QUEUES + 1)	/* one per queue + config */
#define VIRTIO_PCI_NO_VECTOR	0xffff

/* Hooks into the core. opaque is what virtio_pci_init was given. */
struct virtio_pci_cb {
	/* Deliver an MSI (KVM_SIGNAL_MSI / irqfd). Required. */
	void (*msi)(void *opaque, uint64_t addr, uint32_t data);
	/* Set the INTx line level (KVM_IRQ_LINE on cfg[0x3c]). Required. */
	void (*intx)(void *opaque, int level);
	/* BAR0 now decodes at virtio_pci_bar_addr() (0 = off): re-register
	 * ioeventfds at virtio_pci_notify_addr(q). May be NULL. */
	void (*bar_moved)(void *opaque);
};

struct virtio_pci {
	struct pci_func pci;
	struct virtio_dev *vd;
	struct virtio_pci_cb cb;
	void *opaque;

	/* Common cfg registers that live in the transport. */
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint16_t config_vector;
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];
	uint8_t isr;			/* bit 0 queue, bit 1 config */
	bool intx_level;

	uint16_t msix_nvec;
	uint8_t msix_cap, pcicfg_cap;	/* capability offsets in cfg */
	uint8_t msix_table[16 * VIRTIO_PCI_MSIX_MAX];
	uint64_t msix_pba;		/* pending bits */
};

/* Wrap vd (already initialized by its device's init). vd stays owned by
 * the caller. The function still has to be plugged with pci_bus_add. */
int virtio_pci_init(struct virtio_pci *p, struct virtio_dev *vd, const struct virtio_pci_cb *cb,
		    void *opaque, struct err *e);

/* Entry points for the core's exit handlers (len 1, 2, 4; BAR also 8). */
void virtio_pci_cfg_read(struct virtio_pci *p, uint32_t offset, void *data, uint32_t len);
void virtio_pci_cfg_write(struct virtio_pci *p, uint32_t offset, const void *data, uint32_t len);
void virtio_pci_bar_read(struct virtio_pci *p, uint64_t offset, void *data, uint32_t len);
void virtio_pci_bar_write(struct virtio_pci *p, uint64_t offset, const void *data, uint32_t len);

/* Guest-physical address of BAR0 (0 if not decoding) and of queue q's
 * notify register: register a 2-byte ioeventfd there (no datamatch) and
 * call virtio_pci_queue_notify(p, q) when it fires. */
uint64_t virtio_pci_bar_addr(const struct virtio_pci *p);
uint64_t virtio_pci_notify_addr(const struct virtio_pci *p, uint16_t q);
void virtio_pci_queue_notify(struct virtio_pci *p, uint16_t q);

/* Device and transport back to power-on (guest reboot). */
void virtio_pci_reset(struct virtio_pci *p);

/* Section payload: see README.md. Load into a freshly initialized p whose
 * device was created with the same configuration and runtime resources. */
#define VIRTIO_PCI_STATE_VERSION 1
int virtio_pci_save(struct virtio_pci *p, struct vmstate_writer *w, struct err *e);
int virtio_pci_load(struct virtio_pci *p, const void *payload, size_t len, uint16_t version,
		    struct err *e);

#endif
