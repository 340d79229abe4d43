/* Virtio devices (blk, net, rng, balloon) as entries of the VM's device list. */
#include "vmm/dev_virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/pci_glue.h"
#include "vmm/virtio/balloon.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/rng.h"
#include "vmm/vm.h"

int dev_virtio_count(const struct vm_config *c)
{
	return c->ndisks + c->nnets + (c->rng ? 1 : 0) + (c->balloon ? 1 : 0);
}

const struct device_ops *dev_virtio_ops(const struct vm_config *c, int i)
{
	if (i < c->ndisks)
		return &virtio_blk_dev_ops;
	if (i < c->ndisks + c->nnets)
		return &virtio_net_dev_ops;
	if (i == c->ndisks + c->nnets && c->rng)
		return &virtio_rng_dev_ops;
	return &virtio_balloon_dev_ops;
}

/* ---- transport callbacks ---- */

static void cb_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct vdev *v = opaque;
	struct kvm_msi m = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};

	ioctl(v->glue->vm->vm_fd, KVM_SIGNAL_MSI, &m);
}

static void cb_intx(void *opaque, int level)
{
	struct vdev *v = opaque;

	vm_irq_line(v->glue->vm, v->gsi, level);
}

static void cb_bar_moved(void *opaque)
{
	pci_glue_update_ioeventfds(opaque);
}

/* ---- device ops ---- */

static int instance_index(struct device *dev)
{
	int k = 0;

	for (struct device *d = dev->vm->devs; d < dev; d++)
		if (d->ops == dev->ops)
			k++;
	return k;
}

static void vdev_exit(struct device *dev)
{
	struct vdev *v = dev->priv;

	if (!v)
		return;
	if (v->glue)
		pci_glue_remove(v->glue, v);
	if (v->vd_inited && v->kind == VDEV_BALLOON) {
		struct virtio_balloon_stats st;

		/* tests/integration/vmm_linux_boot checks this line */
		virtio_balloon_get_stats(&v->vd, &st);
		fprintf(stderr, "vmm: virtio-balloon: guest reported %llu MiB free (%llu ranges "
			"punched), inflated %llu MiB, %llu ranges skipped\n",
			(unsigned long long)(st.reported_bytes >> 20), (unsigned long long)st.ranges,
			(unsigned long long)(st.inflated_bytes >> 20), (unsigned long long)st.skipped);
	}
	if (v->vd_inited)
		virtio_dev_free(&v->vd);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
	dev->priv = NULL;
}

static int backend_init(struct vdev *v, struct vm *vm, struct err *e)
{
	const struct guest_mem *gm = &vm->pci->gm;

	switch (v->kind) {
	case VDEV_BLK: {
		const struct vm_disk_cfg *d = &vm->cfg.disks[v->index];
		char serial[VIRTIO_BLK_ID_BYTES + 1];

		v->fd = open(d->path, (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (v->fd < 0)
			return err_errno(e, errno, "%s", d->path);
		snprintf(serial, sizeof(serial), "vmm-disk%d", v->index);
		if (virtio_blk_init(&v->vd, gm, v->fd, d->readonly, serial, e) < 0)
			return err_prefix(e, "%s", d->path);
		return 0;
	}
	case VDEV_NET: {
		const struct vm_net_cfg *n = &vm->cfg.nets[v->index];
		uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + v->index) };

		if (n->has_mac)
			memcpy(mac, n->mac, 6);
		v->fd = tap_open(n->ifname, NULL, e);
		if (v->fd < 0)
			return -1;
		return virtio_net_init(&v->vd, gm, v->fd, mac, e);
	}
	case VDEV_RNG:
		return virtio_rng_init(&v->vd, gm, e);
	case VDEV_BALLOON:
		return virtio_balloon_init(&v->vd, gm, vm->mem.memfd, vm->mem.ram, vm->mem.size, e);
	}
	return err_set(e, "unknown device kind");
}

static int vdev_realize(struct device *dev, struct err *e)
{
	struct vm *vm = dev->vm;
	struct vdev *v;
	const struct virtio_pci_cb cb = { cb_msi, cb_intx, cb_bar_moved };

	if (!vm->pci)
		return err_set(e, "no PCI bus");
	v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(e, "out of memory");
	dev->priv = v;
	v->dev = dev;
	v->fd = -1;
	v->slot_idx = -1;
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		v->qfd[q] = -1;
	v->kind = dev->ops == &virtio_blk_dev_ops ? VDEV_BLK
		: dev->ops == &virtio_net_dev_ops ? VDEV_NET
		: dev->ops == &virtio_rng_dev_ops ? VDEV_RNG : VDEV_BALLOON;
	v->index = instance_index(dev);
	if (backend_init(v, vm, e) < 0)
		goto fail;
	v->vd_inited = true;
	if (virtio_pci_init(&v->vp, &v->vd, &cb, v, e) < 0)
		goto fail;
	v->vp_inited = true;
	v->glue = vm->pci;
	if (pci_glue_add(vm->pci, v, e) < 0)
		goto fail;
	return 0;
fail:
	err_prefix(e, "%s%d", dev->ops->name, instance_index(dev));
	vdev_exit(dev);
	return -1;
}

static void vdev_reset(struct device *dev)
{
	struct vdev *v = dev->priv;
	struct err e;

	virtio_pci_reset(&v->vp);
	/* Firmware placement again (all functions; vCPUs are not running). */
	if (pci_glue_assign_bars(v->glue, &e) < 0)
		fprintf(stderr, "vmm: %s\n", e.msg);
	pci_glue_update_ioeventfds(v);
}

static int vdev_save(struct device *dev, struct vmstate_writer *w, struct err *e)
{
	struct vdev *v = dev->priv;

	return virtio_pci_save(&v->vp, w, e);
}

static int vdev_load(struct device *dev, const void *payload, size_t len, uint16_t version,
		     struct err *e)
{
	struct vdev *v = dev->priv;

	if (virtio_pci_load(&v->vp, payload, len, version, e) < 0)
		return -1;
	pci_glue_update_ioeventfds(v);
	if (v->kind == VDEV_NET)
		virtio_net_announce(&v->vd);	/* no-op unless negotiated */
	return 0;
}

void dev_virtio_announce(struct device *dev)
{
	struct vdev *v = dev->priv;

	if (v && v->kind == VDEV_NET) {
		/* The host-side RARP first: it needs no guest vCPU time. */
		virtio_net_send_rarp(&v->vd);
		virtio_net_announce(&v->vd);	/* no-op unless negotiated */
	}
}

#define VDEV_OPS(n) { .name = n, .realize = vdev_realize, .reset = vdev_reset, \
	.save = vdev_save, .load = vdev_load, .exit = vdev_exit }

const struct device_ops virtio_blk_dev_ops = VDEV_OPS("virtio-blk");
const struct device_ops virtio_net_dev_ops = VDEV_OPS("virtio-net");
const struct device_ops virtio_rng_dev_ops = VDEV_OPS("virtio-rng");
const struct device_ops virtio_balloon_dev_ops = VDEV_OPS("virtio-balloon");
