/* Split virtqueue (virtio 1.x, section 2.7), device side.
 *
 * The ring lives in guest memory, which the guest may change at any moment
 * and which may be hostile. Rules kept throughout virtqueue.c:
 *  - every guest value is read once into a local and validated there;
 *  - every host pointer comes from gm_ptr() with the exact length used;
 *  - every loop is bounded by the queue size or VQ_MAX_SEGS;
 *  - every write into guest memory is reported via gm_mark_dirty();
 *  - any violation marks the queue broken (sticky until reset) with a
 *    message in vq->err; the device then sets DEVICE_NEEDS_RESET.
 *
 * Threading: one queue is used by one thread at a time (the caller holds
 * the device lock). */
#ifndef VMM_VIRTIO_VIRTQUEUE_H
#define VMM_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/err.h"
#include "vmm/virtio/guest_mem.h"

struct vmstate_writer;
struct vcursor;

#define VQ_MAX_SIZE	1024	/* largest queue size a device may offer */
#define VQ_MAX_SEGS	128	/* segments per popped chain (device limit) */

#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* Feature bits the queue code implements. */
#define VIRTIO_F_RING_INDIRECT_DESC_BIT	28
#define VIRTIO_F_RING_EVENT_IDX_BIT	29
#define VIRTIO_F_VERSION_1_BIT		32

struct vq_iov {
	uint8_t *base;		/* host pointer, valid for len bytes */
	uint64_t gpa;		/* for dirty marking */
	uint32_t len;
};

/* A popped descriptor chain: out (device-readable) segments first, then in
 * (device-writable) segments. */
struct vq_elem {
	uint16_t head;		/* id to push back */
	uint16_t n_out, n_in;
	uint32_t out_len, in_len;	/* totals; never overflow (checked) */
	struct vq_iov iov[VQ_MAX_SEGS];
};

struct virtq {
	/* Driver-programmed configuration. */
	uint16_t size;		/* current size; power of 2 when ready */
	uint16_t max_size;	/* device's limit (power of 2, <= VQ_MAX_SIZE) */
	bool ready;
	uint64_t desc_addr, avail_addr, used_addr;

	/* Device-side progress. */
	uint16_t last_avail_idx;	/* next avail entry to pop */
	uint16_t used_idx;		/* our copy of used->idx */
	uint16_t signalled_used;	/* used_idx at the last interrupt (EVENT_IDX) */
	bool signalled_used_valid;
	uint16_t inflight;		/* popped, not yet pushed */

	/* Negotiated features affecting the ring. */
	bool event_idx;
	bool indirect;

	bool broken;
	struct err err;			/* why broken */
	const struct guest_mem *gm;
};

/* Power-on state; max_size must be a power of 2 in [1, VQ_MAX_SIZE]. */
void vq_init(struct virtq *vq, const struct guest_mem *gm, uint16_t max_size);
/* Back to power-on state (keeps gm and max_size). */
void vq_reset(struct virtq *vq);
/* Driver enables the queue: checks size and ring placement. -1 = broken. */
int vq_enable(struct virtq *vq, bool event_idx, bool indirect);

/* Pop the next available chain. 1 = got one in *elem, 0 = ring empty (or
 * queue not ready), -1 = the queue is broken (vq->err says why). */
int vq_pop(struct virtq *vq, struct vq_elem *elem);
/* Give back the last n popped-but-unpushed chains (they will pop again). */
void vq_unpop(struct virtq *vq, uint16_t n);
/* Return a chain to the driver with len bytes written. -1 = broken. */
int vq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* After one or more pushes: does the driver want an interrupt now?
 * Updates the EVENT_IDX bookkeeping, so call it once per batch. */
bool vq_should_notify(struct virtq *vq);

/* Copy bytes from the chain's out segments starting at byte off; returns
 * the number of bytes copied (less than len if the chain is shorter). */
uint32_t vq_elem_read(const struct vq_elem *e, uint32_t off, void *dst, uint32_t len);
/* Copy into the in segments at byte off, marking dirty; returns bytes copied. */
uint32_t vq_elem_write(const struct guest_mem *gm, const struct vq_elem *e, uint32_t off,
		       const void *src, uint32_t len);
/* Mark in-segment bytes [off, off+len) dirty (after writing through iovecs). */
void vq_elem_mark_dirty(const struct guest_mem *gm, const struct vq_elem *e, uint32_t off,
			uint32_t len);
/* Build a struct iovec list for bytes [off, off+len) of the out (in=false)
 * or in (in=true) segments. Returns the iovec count (<= VQ_MAX_SEGS); the
 * list covers fewer bytes if the chain is shorter. */
int vq_elem_iovec(const struct vq_elem *e, bool in, uint32_t off, uint32_t len,
		  struct iovec *iov);

/* Save/load the queue (payload appended to the open section / read from
 * the cursor). A loaded queue that was ready is re-validated; in-flight
 * chains are rewound so they pop again (devices complete in order). */
int vq_save(const struct virtq *vq, struct vmstate_writer *w, struct err *e);
int vq_load(struct virtq *vq, struct vcursor *c, struct err *e);

#endif
