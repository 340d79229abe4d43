/* virtio-balloon (virtio 1.2, 5.5) used for free page reporting only: the
 * guest hands back ranges of free RAM and we punch them out of the RAM
 * memfd, so the host gets the pages back and they read as zeros later.
 *
 * Offered: VIRTIO_BALLOON_F_FREE_PAGE_REPORTING alone. Queues are numbered
 * consecutively with absent ones skipped (Linux vp_find_vqs uses a running
 * queue index since 5.10), so without STATS_VQ and FREE_PAGE_HINT they are
 * 0 inflateq, 1 deflateq, 2 reporting_vq. num_pages stays 0: the guest
 * never inflates on its own; a driver that inflates anyway gets its pages
 * punched (honoured), deflate needs nothing (no MUST_TELL_HOST).
 *
 * Every range the guest gives is checked: the chain comes from the
 * validated vq_pop (segments wholly in guest RAM), and a range must also be
 * 4 KiB aligned and inside the memfd; anything else is skipped and counted,
 * never fatal. */
#ifndef VMM_VIRTIO_BALLOON_H
#define VMM_VIRTIO_BALLOON_H

#include "vmm/virtio/virtio.h"

#define VIRTIO_ID_BALLOON		5
#define VIRTIO_BALLOON_F_REPORTING_BIT	5
#define VIRTIO_BALLOON_QUEUE_SIZE	128	/* Linux needs >= 32 (PAGE_REPORTING_CAPACITY) */
#define VIRTIO_BALLOON_Q_INFLATE	0
#define VIRTIO_BALLOON_Q_DEFLATE	1
#define VIRTIO_BALLOON_Q_REPORTING	2
#define VIRTIO_BALLOON_PAGE		4096	/* PFN unit and punch granularity */

struct virtio_balloon_stats {
	uint64_t reported_bytes;	/* punched from reporting_vq */
	uint64_t inflated_bytes;	/* punched from inflateq */
	uint64_t ranges;		/* ranges punched */
	uint64_t skipped;		/* unaligned/outside/readable ranges, failed punches */
};

extern const struct virtio_dev_ops virtio_balloon_ops;

/* memfd backs guest RAM; ram is its mapping (ram_size bytes) that gm's
 * region host pointers point into: host pointer - ram = memfd offset. */
int virtio_balloon_init(struct virtio_dev *vd, const struct guest_mem *gm, int memfd,
			uint8_t *ram, uint64_t ram_size, struct err *e);
void virtio_balloon_get_stats(const struct virtio_dev *vd, struct virtio_balloon_stats *out);

#endif
