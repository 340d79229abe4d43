/* Transport-independent virtio device core (virtio 1.x).
 *
 * A device model is one file with one struct virtio_dev_ops table and an
 * init function that fills a struct virtio_dev (features, config bytes,
 * queues, priv). The transport (pci.c) owns the register interface and
 * calls back into the device through the ops; the device reports work done
 * with virtio_dev_used() and problems with virtio_dev_broken().
 *
 * Runtime resources (backing fds, tap fds) are given to the device's init
 * function, never saved: restore = init with the resources, then load.
 *
 * Locking: all calls for one device must be serialized by the caller (the
 * core's per-device mutex); the core's I/O threads take the same lock. */
#ifndef VMM_VIRTIO_VIRTIO_H
#define VMM_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

struct vmstate_writer;
struct vcursor;

#define VIRTIO_MAX_QUEUES	4
#define VIRTIO_CONFIG_MAX	256

/* Device status bits (virtio 1.x 2.1). */
#define VIRTIO_STAT_ACKNOWLEDGE		0x01
#define VIRTIO_STAT_DRIVER		0x02
#define VIRTIO_STAT_DRIVER_OK		0x04
#define VIRTIO_STAT_FEATURES_OK		0x08
#define VIRTIO_STAT_NEEDS_RESET		0x40
#define VIRTIO_STAT_FAILED		0x80

/* Device types (virtio 1.x 5). */
#define VIRTIO_ID_NET	1
#define VIRTIO_ID_BLK	2
#define VIRTIO_ID_RNG	4

/* Transport feature bits every device gets. */
#define VIRTIO_TRANSPORT_FEATURES \
	((1ULL << VIRTIO_F_VERSION_1_BIT) | (1ULL << VIRTIO_F_RING_EVENT_IDX_BIT) | \
	 (1ULL << VIRTIO_F_RING_INDIRECT_DESC_BIT))

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;
	uint16_t device_id;	/* virtio device type */
	uint32_t pci_class;	/* class << 16 | subclass << 8 | prog-if */
	/* Driver wrote [off, off+len) of vd->config (already stored). NULL =
	 * config is read-only and the write is dropped. */
	void (*config_write)(struct virtio_dev *vd, uint32_t off, uint32_t len);
	/* Driver kicked queue q (q < nqueues, DRIVER_OK set, not broken). */
	void (*queue_notify)(struct virtio_dev *vd, uint16_t q);
	/* Device-specific part of a reset; may be NULL. */
	void (*reset)(struct virtio_dev *vd);
	/* Device-specific state after the common state; may be NULL. */
	int (*save)(struct virtio_dev *vd, struct vmstate_writer *w, struct err *e);
	int (*load)(struct virtio_dev *vd, struct vcursor *c, struct err *e);
	/* Free priv (not the runtime fds the caller gave). May be NULL. */
	void (*free)(struct virtio_dev *vd);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv;
	const struct guest_mem *gm;
	uint64_t host_features;		/* offered, transport bits included */
	uint64_t guest_features;	/* written by the driver */
	uint8_t status;
	uint8_t config_generation;	/* bumped on every device-side config change */
	uint16_t nqueues;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	uint32_t config_len;
	uint8_t config[VIRTIO_CONFIG_MAX];	/* device config, little-endian */
	struct err err;			/* why NEEDS_RESET was set */

	/* Interrupt hooks, set by the transport. */
	void (*irq_queue)(void *transport, uint16_t q);
	void (*irq_config)(void *transport);
	void *transport;
};

/* Common part of a device's init: ops, features (device bits only), queues
 * of qmax entries each. */
void virtio_dev_init(struct virtio_dev *vd, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *gm, uint64_t dev_features, uint16_t nqueues,
		     uint16_t qmax);
void virtio_dev_free(struct virtio_dev *vd);
void virtio_dev_reset(struct virtio_dev *vd);

static inline bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
	return vd->guest_features & (1ULL << bit);
}

/* Driver writes the status register: 0 resets; FEATURES_OK is kept only if
 * the driver's features are acceptable (VERSION_1 set, subset of offered);
 * bits other than via reset are never cleared. */
void virtio_dev_set_status(struct virtio_dev *vd, uint8_t status);
/* Driver writes 32 feature bits at word sel (ignored after FEATURES_OK). */
void virtio_dev_set_guest_features(struct virtio_dev *vd, uint32_t sel, uint32_t val);
/* Driver enabled queue q. */
void virtio_dev_queue_enable(struct virtio_dev *vd, uint16_t q);
/* Queue kick from the transport (register write or ioeventfd). */
void virtio_dev_notify(struct virtio_dev *vd, uint16_t q);

/* Device side: after pushing to queue q, raise its interrupt if wanted. */
void virtio_dev_used(struct virtio_dev *vd, uint16_t q);
/* Device side: config bytes changed (bump generation, config interrupt). */
void virtio_dev_config_changed(struct virtio_dev *vd);
/* Device side: the driver broke the protocol; set NEEDS_RESET, keep the
 * message, raise a config interrupt, stop processing until reset. Returns -1. */
int virtio_dev_broken(struct virtio_dev *vd, const char *msg);
/* Device side: if vq_pop/vq_push failed, mark the device broken. */
void virtio_dev_check_vq(struct virtio_dev *vd, uint16_t q);

/* Common state then the device's own (see README.md for the layout). */
int virtio_dev_save(struct virtio_dev *vd, struct vmstate_writer *w, struct err *e);
int virtio_dev_load(struct virtio_dev *vd, struct vcursor *c, struct err *e);

#endif
