#include "vmm/virtio/virtio.h"

#include <stdio.h>
#include <string.h>

#include "lib/vcursor.h"
#include "lib/vmstate.h"

void virtio_dev_init(struct virtio_dev *vd, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *gm, uint64_t dev_features, uint16_t nqueues,
		     uint16_t qmax)
{
	memset(vd, 0, sizeof(*vd));
	vd->ops = ops;
	vd->priv = priv;
	vd->gm = gm;
	vd->host_features = dev_features | VIRTIO_TRANSPORT_FEATURES;
	vd->nqueues = nqueues > VIRTIO_MAX_QUEUES ? VIRTIO_MAX_QUEUES : nqueues;
	for (int i = 0; i < vd->nqueues; i++)
		vq_init(&vd->vq[i], gm, qmax);
}

void virtio_dev_free(struct virtio_dev *vd)
{
	if (vd->ops && vd->ops->free)
		vd->ops->free(vd);
	vd->priv = NULL;
}

void virtio_dev_reset(struct virtio_dev *vd)
{
	vd->status = 0;
	vd->guest_features = 0;
	err_clear(&vd->err);
	for (int i = 0; i < vd->nqueues; i++)
		vq_reset(&vd->vq[i]);
	if (vd->ops->reset)
		vd->ops->reset(vd);
}

void virtio_dev_set_status(struct virtio_dev *vd, uint8_t status)
{
	uint8_t added;

	if (status == 0) {
		virtio_dev_reset(vd);
		return;
	}
	/* NEEDS_RESET is the device's to set; the driver cannot clear bits. */
	status &= ~VIRTIO_STAT_NEEDS_RESET;
	added = status & ~vd->status;
	if (added & VIRTIO_STAT_FEATURES_OK) {
		uint64_t f = vd->guest_features;

		if (!(f & (1ULL << VIRTIO_F_VERSION_1_BIT)) || (f & ~vd->host_features))
			added &= ~VIRTIO_STAT_FEATURES_OK;	/* driver sees it didn't stick */
	}
	/* DRIVER_OK without FEATURES_OK is a driver bug; don't go live. */
	if ((added & VIRTIO_STAT_DRIVER_OK) &&
	    !((vd->status | added) & VIRTIO_STAT_FEATURES_OK))
		added &= ~VIRTIO_STAT_DRIVER_OK;
	vd->status |= added;
}

void virtio_dev_set_guest_features(struct virtio_dev *vd, uint32_t sel, uint32_t val)
{
	if (sel > 1 || (vd->status & VIRTIO_STAT_FEATURES_OK))
		return;
	vd->guest_features &= ~(0xffffffffULL << (32 * sel));
	vd->guest_features |= (uint64_t)val << (32 * sel);
}

void virtio_dev_queue_enable(struct virtio_dev *vd, uint16_t q)
{
	if (q >= vd->nqueues || vd->vq[q].ready)
		return;
	if (vq_enable(&vd->vq[q], virtio_has_feature(vd, VIRTIO_F_RING_EVENT_IDX_BIT),
		      virtio_has_feature(vd, VIRTIO_F_RING_INDIRECT_DESC_BIT)) < 0)
		virtio_dev_check_vq(vd, q);
}

void virtio_dev_notify(struct virtio_dev *vd, uint16_t q)
{
	if (q >= vd->nqueues || !(vd->status & VIRTIO_STAT_DRIVER_OK) ||
	    (vd->status & VIRTIO_STAT_NEEDS_RESET) || !vd->vq[q].ready)
		return;
	vd->ops->queue_notify(vd, q);
}

void virtio_dev_used(struct virtio_dev *vd, uint16_t q)
{
	if (q < vd->nqueues && vq_should_notify(&vd->vq[q]) && vd->irq_queue)
		vd->irq_queue(vd->transport, q);
}

void virtio_dev_config_changed(struct virtio_dev *vd)
{
	vd->config_generation++;
	if (vd->irq_config && (vd->status & VIRTIO_STAT_DRIVER_OK))
		vd->irq_config(vd->transport);
}

int virtio_dev_broken(struct virtio_dev *vd, const char *msg)
{
	if (vd->status & VIRTIO_STAT_NEEDS_RESET)
		return -1;
	err_set(&vd->err, "%s: %s", vd->ops->name, msg);
	vd->status |= VIRTIO_STAT_NEEDS_RESET;
	if (vd->irq_config)
		vd->irq_config(vd->transport);
	return -1;
}

void virtio_dev_check_vq(struct virtio_dev *vd, uint16_t q)
{
	char msg[sizeof(vd->err.msg)];

	if (q >= vd->nqueues || !vd->vq[q].broken)
		return;
	snprintf(msg, sizeof(msg), "queue %u: %.400s", q, vd->vq[q].err.msg);
	virtio_dev_broken(vd, msg);
}

/* Common payload: u64 host_features, u64 guest_features, u8 status,
 * u8 config_generation, u16 nqueues, nqueues x vq_save, then the device's
 * own payload (ops->save). */
int virtio_dev_save(struct virtio_dev *vd, struct vmstate_writer *w, struct err *e)
{
	if (vmstate_put_u64(w, vd->host_features, e) < 0 ||
	    vmstate_put_u64(w, vd->guest_features, e) < 0 ||
	    vmstate_put_u8(w, vd->status, e) < 0 ||
	    vmstate_put_u8(w, vd->config_generation, e) < 0 ||
	    vmstate_put_u16(w, vd->nqueues, e) < 0)
		return err_prefix(e, "%s", vd->ops->name);
	for (int i = 0; i < vd->nqueues; i++)
		if (vq_save(&vd->vq[i], w, e) < 0)
			return err_prefix(e, "%s: queue %d", vd->ops->name, i);
	if (vd->ops->save && vd->ops->save(vd, w, e) < 0)
		return err_prefix(e, "%s", vd->ops->name);
	return 0;
}

int virtio_dev_load(struct virtio_dev *vd, struct vcursor *c, struct err *e)
{
	uint64_t host = 0, guest = 0;
	uint8_t status = 0, gen = 0;
	uint16_t nq = 0;

	vcursor_get_u64(c, &host);
	vcursor_get_u64(c, &guest);
	vcursor_get_u8(c, &status);
	vcursor_get_u8(c, &gen);
	vcursor_get_u16(c, &nq);
	if (vcursor_failed(c))
		return err_set(e, "%s: truncated state", vd->ops->name);
	if (nq != vd->nqueues)
		return err_set(e, "%s: state has %u queues, device has %u", vd->ops->name, nq,
			       vd->nqueues);
	/* The driver negotiated against the source's offer; the destination
	 * must offer at least that (same backend configuration). */
	if (guest & ~vd->host_features)
		return err_set(e, "%s: negotiated features %#llx not offered here (%#llx)",
			       vd->ops->name, (unsigned long long)guest,
			       (unsigned long long)vd->host_features);
	vd->guest_features = guest;
	vd->status = status;
	vd->config_generation = gen;
	for (int i = 0; i < vd->nqueues; i++)
		if (vq_load(&vd->vq[i], c, e) < 0)
			return err_prefix(e, "%s: queue %d", vd->ops->name, i);
	if (vd->ops->load && vd->ops->load(vd, c, e) < 0)
		return err_prefix(e, "%s", vd->ops->name);
	if (status & VIRTIO_STAT_NEEDS_RESET)
		err_set(&vd->err, "%s: needed reset when saved", vd->ops->name);
	return 0;
}
