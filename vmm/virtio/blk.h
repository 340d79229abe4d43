/* virtio-blk over a raw image (file or block device) accessed with
 * pread/pwrite on a caller-owned fd. Requests are completed synchronously
 * in queue_notify, so nothing is ever in flight across a save. */
#ifndef VMM_VIRTIO_BLK_H
#define VMM_VIRTIO_BLK_H

#include <stdbool.h>

#include "vmm/virtio/virtio.h"

#define VIRTIO_BLK_F_SEG_MAX	2
#define VIRTIO_BLK_F_RO		5
#define VIRTIO_BLK_F_BLK_SIZE	6
#define VIRTIO_BLK_F_FLUSH	9

#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_BLK_T_FLUSH	4
#define VIRTIO_BLK_T_GET_ID	8

#define VIRTIO_BLK_S_OK		0
#define VIRTIO_BLK_S_IOERR	1
#define VIRTIO_BLK_S_UNSUPP	2

#define VIRTIO_BLK_QUEUE_SIZE	256
#define VIRTIO_BLK_SEG_MAX	(VQ_MAX_SEGS - 2)	/* + header + status */
#define VIRTIO_BLK_ID_BYTES	20

extern const struct virtio_dev_ops virtio_blk_ops;

/* fd stays owned by the caller (and must stay open while vd lives).
 * serial may be NULL (GET_ID then returns an empty id). Capacity is the
 * image size rounded down to 512-byte sectors. */
int virtio_blk_init(struct virtio_dev *vd, const struct guest_mem *gm, int fd, bool readonly,
		    const char *serial, struct err *e);

#endif
