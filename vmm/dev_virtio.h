/* Virtio devices from the configuration (--disk, --net, --rng, balloon unless
 * --no-balloon), appended to vm->devs after the fixed device table, in this
 * order: disks, NICs, rng, balloon. Each is one struct device with save/load (virtio_pci_save/load);
 * devices of one kind share an ops table (snapshot names them dev.NAME,
 * dev.NAME.1, ...). */
#ifndef VMM_DEV_VIRTIO_H
#define VMM_DEV_VIRTIO_H

#include "vmm/config.h"
#include "vmm/device.h"

extern const struct device_ops pci_host_ops;
extern const struct device_ops virtio_blk_dev_ops;
extern const struct device_ops virtio_net_dev_ops;
extern const struct device_ops virtio_rng_dev_ops;
extern const struct device_ops virtio_balloon_dev_ops;

int dev_virtio_count(const struct vm_config *c);
const struct device_ops *dev_virtio_ops(const struct vm_config *c, int i);

/* Migration: ask the guest behind a virtio-net device to announce itself
 * (gratuitous ARP); d->lock held. No-op for other kinds. */
void dev_virtio_announce(struct device *dev);

#endif
