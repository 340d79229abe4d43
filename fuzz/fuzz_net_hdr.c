/* Fuzz the virtio-net header checks and the device's TX/RX paths.
 * Input: u64 features | u32 frame_len | 12-byte header | u8 ring flags |
 * u16 rx frame length | u8 mode | the rest = guest RAM (rings, TX headers,
 * buffers).
 * 1. net_hdr_check_tx/rx on the header: whatever they accept must satisfy
 *    the invariants the tap relies on (abort otherwise).
 * 2. A live virtio-net device over a SOCK_DGRAM socketpair "tap" with the
 *    fuzzed features and hostile rings in a heap buffer of exactly RAM
 *    bytes (ASan flags any access outside it): one frame from the network
 *    (the header from the input), RX, then a TX kick. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <unistd.h>

#include "lib/le.h"
#include "vmm/virtio/net.h"

#define RAM 65536

static void mark(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	if (gpa >= RAM || len > RAM - gpa)
		abort();
}

static void check_accepted(const uint8_t *h, uint32_t flen, uint64_t feat, int csum, int tso4,
			   int tso6, int ecn)
{
	uint8_t gso = h[1] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if (flen < VIRTIO_NET_ETH_HLEN || flen > VIRTIO_NET_FRAME_MAX || le_get16(h + 2) > flen)
		abort();
	if ((h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (!(feat & (1ULL << csum)) || le_get16(h + 6) + le_get16(h + 8) + 2u > flen))
		abort();
	if (gso == VIRTIO_NET_HDR_GSO_NONE) {
		if (h[1] & VIRTIO_NET_HDR_GSO_ECN)
			abort();
		return;
	}
	if (!(h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) || !le_get16(h + 4))
		abort();
	if (!(gso == VIRTIO_NET_HDR_GSO_TCPV4 && (feat & (1ULL << tso4))) &&
	    !(gso == VIRTIO_NET_HDR_GSO_TCPV6 && (feat & (1ULL << tso6))))
		abort();
	if ((h[1] & VIRTIO_NET_HDR_GSO_ECN) && !(feat & (1ULL << ecn)))
		abort();
}

static void run_dev(struct guest_mem *gm, uint64_t feat, uint8_t fl, const uint8_t *hdr,
		    uint16_t rxlen)
{
	static int sv[2] = { -1, -1 };
	static uint8_t pkt[VIRTIO_NET_HDR_LEN + 4096], sink[VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX];
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	struct virtio_dev vd;
	struct err err;

	if (sv[0] < 0 && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	if (virtio_net_init(&vd, gm, sv[0], mac, &err) < 0)
		abort();
	vd.guest_features = (feat & vd.host_features) | (1ULL << VIRTIO_F_VERSION_1_BIT);
	vd.status = VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER | VIRTIO_STAT_FEATURES_OK |
		    VIRTIO_STAT_DRIVER_OK;
	/* RX rings in the first 4 KiB, TX in the second; sizes from the flags */
	for (int q = 0; q < 2; q++) {
		vd.vq[q].size = (uint16_t)(1u << ((fl >> (3 * q)) & 7));
		vd.vq[q].desc_addr = 0x1000 * (uint64_t)q;
		vd.vq[q].avail_addr = 0x1000 * (uint64_t)q + 0x800;
		vd.vq[q].used_addr = 0x1000 * (uint64_t)q + 0xc00;
		virtio_dev_queue_enable(&vd, (uint16_t)q);
	}
	memcpy(pkt, hdr, VIRTIO_NET_HDR_LEN);
	for (uint32_t i = VIRTIO_NET_HDR_LEN; i < sizeof(pkt); i++)
		pkt[i] = (uint8_t)i;
	rxlen %= sizeof(pkt) + 1;
	if (write(sv[1], pkt, rxlen) < 0 && rxlen)
		abort();
	virtio_net_rx(&vd);
	virtio_dev_notify(&vd, VIRTIO_NET_Q_RX);
	virtio_dev_notify(&vd, VIRTIO_NET_Q_TX);
	while (read(sv[1], sink, sizeof(sink)) >= 0)
		;
	while (read(sv[0], sink, sizeof(sink)) >= 0)	/* what RX left behind */
		;
	virtio_dev_free(&vd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[VIRTIO_NET_HDR_LEN], hdr0[VIRTIO_NET_HDR_LEN], fl;
	struct guest_mem gm;
	uint64_t feat;
	uint32_t flen;
	uint16_t rxlen;
	uint8_t *ram;

	if (size < 28)
		return 0;
	feat = le_get64(data);
	flen = le_get32(data + 8);
	if (!(data[27] & 1))	/* mostly lengths near the interesting range */
		flen %= VIRTIO_NET_FRAME_MAX + 64;
	memcpy(hdr0, data + 12, sizeof(hdr0));
	memcpy(h, hdr0, sizeof(h));
	if (!net_hdr_check_tx(h, flen, feat)) {
		check_accepted(h, flen, feat, VIRTIO_NET_F_CSUM, VIRTIO_NET_F_HOST_TSO4,
			       VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_HOST_ECN);
		if (h[0] & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
			abort();
	}
	memcpy(h, hdr0, sizeof(h));
	if (!net_hdr_check_rx(h, flen, feat)) {
		check_accepted(h, flen, feat, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4,
			       VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_ECN);
		if (le_get16(h + 10) != 1)
			abort();
	}
	fl = data[24];
	rxlen = le_get16(data + 25);
	data += 28;
	size -= 28;
	ram = calloc(1, RAM);
	if (!ram)
		abort();
	memcpy(ram, data, size < RAM ? size : RAM);
	gm_init_flat(&gm, ram, RAM);
	gm.mark_dirty = mark;
	run_dev(&gm, feat, fl, hdr0, rxlen);
	free(ram);
	return 0;
}
