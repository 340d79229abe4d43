/* The core side of vmm/virtio: the PCI bus as a device ("pci": host bridge,
 * ports 0xCF8-0xCFF), MMIO exit dispatch to BARs, guest_mem over the VM's
 * RAM regions with dirty marking into vm->dma_dirty, KVM_SIGNAL_MSI and
 * INTx delivery, ioeventfds for queue notify and one I/O thread (epoll over
 * the ioeventfds and tap fds).
 *
 * Locking: each virtio device's struct device lock serializes every call
 * into that device (vCPU MMIO exits, the I/O thread, config space through
 * CF8/CFC, save/load). The "pci" device's lock guards the bus latch; CFC
 * accesses then also take the addressed device's lock (order: pci, dev). */
#ifndef VMM_PCI_GLUE_H
#define VMM_PCI_GLUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "vmm/device.h"
#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/pci.h"
#include "vmm/virtio/pci_bus.h"
#include "vmm/virtio/virtio.h"

struct vm;

#define PCI_GLUE_MAX_DEVS	16

enum vdev_kind { VDEV_BLK, VDEV_NET, VDEV_RNG, VDEV_BALLOON };

/* One virtio-pci device (dev->priv of its struct device). */
struct vdev {
	struct device *dev;
	struct pci_glue *glue;
	enum vdev_kind kind;
	int index;			/* among devices of its kind */
	int fd;				/* disk image or tap, -1 if none */
	int gsi;			/* INTx line */
	struct virtio_dev vd;
	struct virtio_pci vp;
	bool vd_inited, vp_inited;
	int slot_idx;			/* in glue->vdevs, -1 if not added */
	int qfd[VIRTIO_MAX_QUEUES];	/* ioeventfds, -1 if none */
	uint64_t qaddr[VIRTIO_MAX_QUEUES];	/* where registered, 0 = nowhere */
};

struct pci_glue {
	struct vm *vm;
	struct device *dev;
	struct pci_bus bus;
	struct guest_mem gm;
	int nvdevs;
	struct vdev *vdevs[PCI_GLUE_MAX_DEVS];
	struct vdev *by_slot[PCI_MAX_SLOTS];
	int epfd, stop_fd;
	pthread_t io_thread;
	bool io_started;
};

extern const struct device_ops pci_host_ops;

/* MMIO exit: true if a BAR decodes [gpa, gpa+len) (then handled). */
bool pci_glue_mmio(struct vm *vm, uint64_t gpa, bool is_write, void *data, uint32_t len);
/* Plug v into the bus, create its ioeventfds, poll them (and its tap fd). */
int pci_glue_add(struct pci_glue *g, struct vdev *v, struct err *e);
/* Unplug v: deassign and close its ioeventfds. Stops the I/O thread first. */
void pci_glue_remove(struct pci_glue *g, struct vdev *v);
/* (Re)register v's ioeventfds at the current notify addresses. */
void pci_glue_update_ioeventfds(struct vdev *v);
/* Firmware's BAR placement (again after reset). */
int pci_glue_assign_bars(struct pci_glue *g, struct err *e);

#endif
