/* Fuzz the split virtqueue with hostile ring contents. The input's first
 * bytes pick the queue size, features and ring addresses; the rest becomes
 * guest RAM (a heap buffer of exactly RAM bytes, so ASan flags any access
 * outside it). The device loop pops, writes into the chain, pushes, and
 * asks for notification decisions, as a device would; dirty marks must
 * stay inside RAM. With flag bit 5 the same ring feeds a live virtio-blk
 * device (memfd disk) instead, so request parsing sees hostile chains; with
 * flag bit 5 and size bit 7 a virtio-balloon (inflate PFN lists, reported
 * ranges punched from a memfd standing in for RAM) on queue size % 3. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <unistd.h>

#include "vmm/virtio/balloon.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

#define RAM 16384

static void mark(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (gpa >= RAM || len > RAM - gpa)
		abort();
}

/* virtio-blk on a 64 KiB memfd disk, through the device core. */
static void run_blk(struct guest_mem *gm, const struct virtq *shape)
{
	static int disk = -1;
	struct virtio_dev vd;
	struct err err;

	if (disk < 0) {
		disk = memfd_create("fuzzdisk", 0);
		if (disk < 0 || ftruncate(disk, 65536) < 0)
			abort();
	}
	if (virtio_blk_init(&vd, gm, disk, shape->size & 2, "fuzz", &err) < 0)
		abort();
	vd.guest_features = vd.host_features & ~(shape->size & 4 ? 1ULL << VIRTIO_BLK_F_FLUSH : 0);
	vd.status = VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER | VIRTIO_STAT_FEATURES_OK |
		    VIRTIO_STAT_DRIVER_OK;
	vd.vq[0].size = shape->size;
	vd.vq[0].desc_addr = shape->desc_addr;
	vd.vq[0].avail_addr = shape->avail_addr;
	vd.vq[0].used_addr = shape->used_addr;
	virtio_dev_queue_enable(&vd, 0);
	for (int i = 0; i < 3; i++)
		virtio_dev_notify(&vd, 0);
	virtio_dev_free(&vd);
}

/* virtio-balloon: the heap RAM's offsets stand for memfd offsets, so punches
 * land in a scratch memfd (the heap bytes stay; parsing is what is fuzzed). */
static void run_balloon(struct guest_mem *gm, uint8_t *ram, const struct virtq *shape)
{
	static int memfd = -1;
	struct virtio_dev vd;
	struct err err;
	uint16_t q = shape->size % 3;

	if (memfd < 0) {
		memfd = memfd_create("fuzzram", 0);
		if (memfd < 0 || ftruncate(memfd, RAM) < 0)
			abort();
	}
	if (virtio_balloon_init(&vd, gm, memfd, ram, RAM, &err) < 0)
		abort();
	vd.guest_features = vd.host_features;
	vd.status = VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER | VIRTIO_STAT_FEATURES_OK |
		    VIRTIO_STAT_DRIVER_OK;
	vd.vq[q].size = shape->size;
	vd.vq[q].desc_addr = shape->desc_addr;
	vd.vq[q].avail_addr = shape->avail_addr;
	vd.vq[q].used_addr = shape->used_addr;
	virtio_dev_queue_enable(&vd, q);
	for (int i = 0; i < 3; i++)
		virtio_dev_notify(&vd, q);
	virtio_dev_free(&vd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vq_elem e;
	struct guest_mem gm;
	struct virtq vq;
	uint8_t *ram;
	uint8_t sz, fl;
	uint16_t a[3];

	if (size < 8)
		return 0;
	sz = data[0];
	fl = data[1];
	memcpy(a, data + 2, 6);
	data += 8;
	size -= 8;
	ram = calloc(1, RAM);
	memcpy(ram, data, size < RAM ? size : RAM);
	gm_init_flat(&gm, ram, RAM);
	gm.mark_dirty = mark;
	vq_init(&vq, &gm, 256);
	vq.size = (uint16_t)(sz & 0x7f ? (sz & 0x7f) * ((fl & 0x80) ? 2 : 1) : 256);
	/* addresses in RAM, sometimes misaligned, sometimes just past it */
	vq.desc_addr = a[0] % (RAM + 64);
	vq.avail_addr = a[1] % (RAM + 64);
	vq.used_addr = a[2] % (RAM + 64);
	vq.last_avail_idx = (fl & 0x40) ? 0xfff0 : 0;
	vq.used_idx = vq.last_avail_idx;
	if ((fl & 0x20) && (sz & 0x80)) {
		run_balloon(&gm, ram, &vq);
	} else if (fl & 0x20) {
		run_blk(&gm, &vq);
	} else if (vq_enable(&vq, fl & 1, fl & 2) == 0) {
		for (int i = 0; i < 300; i++) {
			int r = vq_pop(&vq, &e);
			uint8_t scratch[64];

			if (r <= 0)
				break;
			vq_elem_read(&e, fl & 8, scratch, sizeof(scratch));
			vq_elem_write(&gm, &e, fl & 16, scratch, sizeof(scratch));
			if (e.in_len && (fl & 4))
				vq_elem_mark_dirty(&gm, &e, 0, e.in_len);
			if (vq_push(&vq, e.head, e.in_len) < 0)
				break;
			vq_should_notify(&vq);
		}
	}
	free(ram);
	return 0;
}
