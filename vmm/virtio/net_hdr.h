/* The virtio-net packet header (struct virtio_net_hdr_v1, 12 bytes,
 * little-endian) and its checks, in both directions:
 *
 *   u8 flags | u8 gso_type | u16 hdr_len | u16 gso_size | u16 csum_start |
 *   u16 csum_offset | u16 num_buffers
 *
 * TX headers come from the guest, RX headers from the tap (the kernel), and
 * either may disagree with what the driver negotiated: a guest may send a
 * GSO frame it never negotiated HOST_TSO for, and the tap may still hold a
 * GSO frame queued before the offloads were turned off (reset, feature
 * change). Both are dropped. The checks only read the 12 header bytes and
 * compare against the frame length the caller measured; nothing here
 * touches the frame. */
#ifndef VMM_VIRTIO_NET_HDR_H
#define VMM_VIRTIO_NET_HDR_H

#include <stdint.h>

#define VIRTIO_NET_F_CSUM		0
#define VIRTIO_NET_F_GUEST_CSUM		1
#define VIRTIO_NET_F_MAC		5
#define VIRTIO_NET_F_GUEST_TSO4		7
#define VIRTIO_NET_F_GUEST_TSO6		8
#define VIRTIO_NET_F_GUEST_ECN		9
#define VIRTIO_NET_F_HOST_TSO4		11
#define VIRTIO_NET_F_HOST_TSO6		12
#define VIRTIO_NET_F_HOST_ECN		13
#define VIRTIO_NET_F_MRG_RXBUF		15
#define VIRTIO_NET_F_STATUS		16
#define VIRTIO_NET_F_CTRL_VQ		17
#define VIRTIO_NET_F_GUEST_ANNOUNCE	21

#define VIRTIO_NET_HDR_LEN	12	/* virtio_net_hdr_v1 incl. num_buffers */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM	1
#define VIRTIO_NET_HDR_F_DATA_VALID	2
#define VIRTIO_NET_HDR_GSO_NONE		0
#define VIRTIO_NET_HDR_GSO_TCPV4	1
#define VIRTIO_NET_HDR_GSO_TCPV6	4
#define VIRTIO_NET_HDR_GSO_ECN		0x80

#define VIRTIO_NET_ETH_HLEN	14
/* Largest frame (after the header) we move either way: a 64 KiB GSO
 * frame (IP total length is 16 bits) plus link headers, with room. */
#define VIRTIO_NET_FRAME_MAX	(65536 + 4096)

/* Guest->tap. Checks hdr against the frame length (bytes after the header)
 * and the negotiated features; on success normalizes it in place (flags
 * other than NEEDS_CSUM and num_buffers cleared) and returns NULL. On
 * failure returns why (a static string); the frame must be dropped. */
const char *net_hdr_check_tx(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint32_t frame_len,
			     uint64_t features);
/* Tap->guest. Same for a header the tap produced: anything the driver did
 * not negotiate (NEEDS_CSUM without GUEST_CSUM, GSO without GUEST_TSO4/6/
 * ECN) returns why and the frame is dropped; DATA_VALID without GUEST_CSUM
 * is cleared. On success num_buffers is set to 1 (the caller overwrites
 * it with the real count once the frame is placed). */
const char *net_hdr_check_rx(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint32_t frame_len,
			     uint64_t features);
/* TUNSETOFFLOAD flags (TUN_F_*) for the negotiated features: what the
 * guest can take in RX frames. The kernel refuses TSO flags without
 * TUN_F_CSUM, and the spec makes GUEST_TSO4/6 depend on GUEST_CSUM and
 * GUEST_ECN on GUEST_TSO4/6: each flag only comes with what it needs. */
unsigned long net_tap_offloads(uint64_t features);

#endif
