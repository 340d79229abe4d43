#include "vmm/virtio/net_hdr.h"

#include <linux/if_tun.h>
#include <stddef.h>

#include "lib/le.h"

#define F(bit)	(1ULL << (bit))

/* What both directions share: gso_type known and negotiated (tso4/tso6/ecn
 * are the feature bits of the direction), lengths inside the frame. */
static const char *check_common(const uint8_t *hdr, uint32_t frame_len, uint64_t features,
				unsigned csum, unsigned tso4, unsigned tso6, unsigned ecn)
{
	uint8_t flags = hdr[0], gso = hdr[1] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	uint32_t hdr_len = le_get16(hdr + 2), gso_size = le_get16(hdr + 4);
	uint32_t cstart = le_get16(hdr + 6), coff = le_get16(hdr + 8);

	if (frame_len < VIRTIO_NET_ETH_HLEN)
		return "frame shorter than an ethernet header";
	if (frame_len > VIRTIO_NET_FRAME_MAX)
		return "frame longer than 64 KiB + 4 KiB";
	if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!(features & F(csum)))
			return "NEEDS_CSUM without the checksum feature";
		/* the 16-bit checksum field must lie inside the frame (u32: no overflow) */
		if (cstart + coff + 2 > frame_len)
			return "csum_start + csum_offset beyond the frame";
	}
	if (hdr_len > frame_len)
		return "hdr_len beyond the frame";
	if (gso == VIRTIO_NET_HDR_GSO_NONE) {
		if (hdr[1] & VIRTIO_NET_HDR_GSO_ECN)
			return "ECN bit without a GSO type";
		return NULL;
	}
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4) {
		if (!(features & F(tso4)))
			return "GSO TCPv4 not negotiated";
	} else if (gso == VIRTIO_NET_HDR_GSO_TCPV6) {
		if (!(features & F(tso6)))
			return "GSO TCPv6 not negotiated";
	} else {
		return "unsupported GSO type";
	}
	if ((hdr[1] & VIRTIO_NET_HDR_GSO_ECN) && !(features & F(ecn)))
		return "GSO ECN not negotiated";
	/* GSO frames are partial-checksum frames (virtio 1.1 5.1.6.2). */
	if (!(flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return "GSO without NEEDS_CSUM";
	if (gso_size == 0)
		return "GSO with gso_size 0";
	return NULL;
}

const char *net_hdr_check_tx(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint32_t frame_len,
			     uint64_t features)
{
	const char *why = check_common(hdr, frame_len, features, VIRTIO_NET_F_CSUM,
				       VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
				       VIRTIO_NET_F_HOST_ECN);

	if (why)
		return why;
	/* DATA_VALID and RSC bits mean nothing on TX; the tap gets none. */
	hdr[0] &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	le_put16(hdr + 10, 0);
	return NULL;
}

const char *net_hdr_check_rx(uint8_t hdr[VIRTIO_NET_HDR_LEN], uint32_t frame_len,
			     uint64_t features)
{
	const char *why;

	/* Only NEEDS_CSUM and DATA_VALID are defined for the tap's headers. */
	hdr[0] &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	if (!(features & F(VIRTIO_NET_F_GUEST_CSUM)))
		hdr[0] &= (uint8_t)~VIRTIO_NET_HDR_F_DATA_VALID;	/* spec: flags 0 */
	why = check_common(hdr, frame_len, features, VIRTIO_NET_F_GUEST_CSUM,
			   VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
			   VIRTIO_NET_F_GUEST_ECN);
	if (why)
		return why;
	le_put16(hdr + 10, 1);
	return NULL;
}

unsigned long net_tap_offloads(uint64_t features)
{
	unsigned long off;

	if (!(features & F(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	off = TUN_F_CSUM;
	if (features & F(VIRTIO_NET_F_GUEST_TSO4))
		off |= TUN_F_TSO4;
	if (features & F(VIRTIO_NET_F_GUEST_TSO6))
		off |= TUN_F_TSO6;
	if ((off & (TUN_F_TSO4 | TUN_F_TSO6)) && (features & F(VIRTIO_NET_F_GUEST_ECN)))
		off |= TUN_F_TSO_ECN;
	return off;
}
