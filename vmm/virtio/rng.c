#include "vmm/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

struct rng {
	struct vq_elem elem;
	uint8_t buf[VIRTIO_RNG_MAX_CHUNK];
};

static void rng_notify(struct virtio_dev *vd, uint16_t q)
{
	struct rng *r = vd->priv;
	struct virtq *vq = &vd->vq[q];
	bool pushed = false;

	while (vq_pop(vq, &r->elem) == 1) {
		uint32_t want = r->elem.in_len < sizeof(r->buf) ? r->elem.in_len : sizeof(r->buf);
		ssize_t got;

		do
			got = getrandom(r->buf, want, 0);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			got = 0;	/* a zero-length answer; the driver retries */
		vq_elem_write(vd->gm, &r->elem, 0, r->buf, (uint32_t)got);
		if (vq_push(vq, r->elem.head, (uint32_t)got) < 0)
			break;
		pushed = true;
	}
	virtio_dev_check_vq(vd, q);
	if (pushed)
		virtio_dev_used(vd, q);
}

static void rng_free(struct virtio_dev *vd)
{
	free(vd->priv);
}

const struct virtio_dev_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.pci_class = 0xff0000,	/* unclassified */
	.queue_notify = rng_notify,
	.free = rng_free,
};

int virtio_rng_init(struct virtio_dev *vd, const struct guest_mem *gm, struct err *e)
{
	struct rng *r = calloc(1, sizeof(*r));

	if (!r)
		return err_set(e, "virtio-rng: out of memory");
	virtio_dev_init(vd, &virtio_rng_ops, r, gm, 0, 1, VIRTIO_RNG_QUEUE_SIZE);
	return 0;
}
