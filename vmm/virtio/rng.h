/* virtio-rng (entropy device): one queue, fills writable buffers from
 * getrandom(). No config, no state beyond the common virtio state. */
#ifndef VMM_VIRTIO_RNG_H
#define VMM_VIRTIO_RNG_H

#include "vmm/virtio/virtio.h"

#define VIRTIO_RNG_QUEUE_SIZE	64
/* Bytes served per request at most: a driver asking for more gets less. */
#define VIRTIO_RNG_MAX_CHUNK	4096

extern const struct virtio_dev_ops virtio_rng_ops;

int virtio_rng_init(struct virtio_dev *vd, const struct guest_mem *gm, struct err *e);

#endif
