/* virtio-net over a tap fd (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, vnet header
 * size 12 = struct virtio_net_hdr_v1, so headers pass through after the
 * checks in net_hdr.h).
 *
 * Offloads: CSUM/HOST_TSO4/HOST_TSO6/HOST_ECN hand the guest's partial-
 * checksum and GSO frames (up to 64 KiB) to the tap, which checksums and
 * segments them; GUEST_CSUM/GUEST_TSO4/GUEST_TSO6/GUEST_ECN become the
 * tap's TUNSETOFFLOAD flags, so the tap hands us unsegmented frames. The
 * flags follow the negotiated features: set on the first kick or RX after
 * negotiation, cleared on reset, set again on load (restore, migration).
 *
 * Queues: 0 RX, 1 TX, 2 control (only ANNOUNCE_ACK is meaningful).
 * TX runs on the TX kick. RX runs from virtio_net_rx(), which the core
 * calls when the tap fd is readable (and which also runs on an RX kick,
 * i.e. when the driver adds buffers). The tap fd must be non-blocking.
 * A packet read from the tap but not yet placed (no guest buffers) waits in
 * the device; it is dropped on save/reset (networks tolerate loss). */
#ifndef VMM_VIRTIO_NET_H
#define VMM_VIRTIO_NET_H

#include <stdint.h>

#include "vmm/virtio/net_hdr.h"
#include "vmm/virtio/virtio.h"

#define VIRTIO_NET_S_LINK_UP	1
#define VIRTIO_NET_S_ANNOUNCE	2

#define VIRTIO_NET_QUEUE_SIZE	256
#define VIRTIO_NET_RX_BUDGET	256	/* packets per virtio_net_rx call */
#define VIRTIO_NET_Q_RX		0
#define VIRTIO_NET_Q_TX		1
#define VIRTIO_NET_Q_CTRL	2

extern const struct virtio_dev_ops virtio_net_ops;

/* tap_fd stays owned by the caller (see tap_open). */
int virtio_net_init(struct virtio_dev *vd, const struct guest_mem *gm, int tap_fd,
		    const uint8_t mac[6], struct err *e);
/* Move packets from the tap into guest RX buffers (up to the budget).
 * Returns the number of packets delivered. */
int virtio_net_rx(struct virtio_dev *vd);
/* After migration: ask the guest to announce itself (gratuitous ARP etc.):
 * sets the ANNOUNCE status bit and raises a config interrupt. No-op unless
 * the driver negotiated GUEST_ANNOUNCE. Returns 0 if requested. */
int virtio_net_announce(struct virtio_dev *vd);
/* Send one RARP for the guest's MAC out of the tap, as QEMU's self-announce
 * does: switches and bridges learn the NIC's new port without the guest's
 * help (it may not support GUEST_ANNOUNCE, or run much later). Returns 0
 * when the frame was written, -1 if the tap refused it (best effort). */
int virtio_net_send_rarp(struct virtio_dev *vd);

/* Open (or attach to) tap ifname ("" = kernel picks vmmtap%d) with
 * IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, vnet header size 12, non-blocking.
 * Returns the fd; the chosen name goes to name_out if not NULL (IFNAMSIZ). */
int tap_open(const char *ifname, char *name_out, struct err *e);

#endif
