/* net_hdr_check_tx/rx with hostile and borderline headers: unknown and
 * un-negotiated GSO types, ECN, checksum offsets and hdr_len at and past
 * the frame end (including 0xffff + 0xffff), frames too short or too long;
 * normalization of what passes; TUNSETOFFLOAD flags per feature set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <linux/if_tun.h>

#include "lib/le.h"
#include "tests/unit/test_vnet_hdr.h"
#include "vmm/virtio/net_hdr.h"

#define F(b)	(1ULL << (b))
#define TXF	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) | \
		 F(VIRTIO_NET_F_HOST_ECN))
#define RXF	(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) | \
		 F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_ECN))

/* A TSO4 frame as Linux sends it: eth 14 + ip 20 + tcp 20, csum at 34+16. */
static void tso4(uint8_t *h)
{
	vnet_hdr_put(h, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
}

static void test_tx_good(void **state)
{
	uint8_t h[VIRTIO_NET_HDR_LEN];

	(void)state;
	vnet_hdr_put(h, 0, 0, 0, 0, 0, 0);
	assert_null(net_hdr_check_tx(h, 60, 0));		/* plain frame, no features */
	assert_int_equal(le_get16(h + 10), 0);
	tso4(h);
	h[0] |= VIRTIO_NET_HDR_F_DATA_VALID | 0x04;		/* meaningless on TX */
	assert_null(net_hdr_check_tx(h, 65000, TXF));
	assert_int_equal(h[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);	/* normalized */
	assert_int_equal(h[1], VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(le_get16(h + 2), 54);
	assert_int_equal(le_get16(h + 10), 0);
	vnet_hdr_put(h, 1, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, 74, 1428, 54, 16);
	assert_null(net_hdr_check_tx(h, 3000, TXF));
	/* checksum field exactly at the end of the frame */
	vnet_hdr_put(h, 1, 0, 0, 0, 40, 18);
	assert_null(net_hdr_check_tx(h, 60, F(VIRTIO_NET_F_CSUM)));
	vnet_hdr_put(h, 0, 0, 0, 0, 0, 0);
	assert_null(net_hdr_check_tx(h, VIRTIO_NET_FRAME_MAX, 0));
	assert_null(net_hdr_check_tx(h, VIRTIO_NET_ETH_HLEN, 0));
}

static void test_tx_hostile(void **state)
{
	static const struct {
		uint8_t flags, gso;
		uint16_t hdr_len, gso_size, cstart, coff;
		uint32_t flen;
		uint64_t feat;
	} bad[] = {
		{ 0, 0, 0, 0, 0, 0, 0, TXF },				/* empty frame */
		{ 0, 0, 0, 0, 0, 0, VIRTIO_NET_ETH_HLEN - 1, TXF },	/* runt */
		{ 0, 0, 0, 0, 0, 0, VIRTIO_NET_FRAME_MAX + 1, TXF },	/* oversized */
		{ 0, 0, 0, 0, 0, 0, UINT32_MAX, TXF },
		{ 1, 0, 0, 0, 34, 16, 60, TXF & ~F(VIRTIO_NET_F_CSUM) },	/* CSUM not negotiated */
		{ 1, 0, 0, 0, 40, 19, 60, TXF },			/* csum field one past the end */
		{ 1, 0, 0, 0, 0xffff, 0xffff, 60, TXF },		/* u16 + u16 must not wrap */
		{ 1, 0, 0, 0, 0xffff, 0xffff, VIRTIO_NET_FRAME_MAX, TXF },
		{ 0, 0, 61, 0, 0, 0, 60, TXF },				/* hdr_len past the end */
		{ 0, 0, 0xffff, 0, 0, 0, 60, TXF },
		{ 0, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 0, 0, 60, TXF },	/* ECN alone */
		{ 1, 3, 42, 1472, 34, 6, 3000, TXF },			/* UDP (UFO): not offered */
		{ 1, 5, 42, 1472, 34, 6, 3000, TXF },			/* UDP_L4 */
		{ 1, 0x7f, 54, 1448, 34, 16, 3000, TXF },		/* unknown type */
		{ 1, 0xff, 54, 1448, 34, 16, 3000, TXF },
		{ 1, 1, 54, 1448, 34, 16, 3000, TXF & ~F(VIRTIO_NET_F_HOST_TSO4) },
		{ 1, 4, 74, 1428, 54, 16, 3000, TXF & ~F(VIRTIO_NET_F_HOST_TSO6) },
		{ 1, 0x81, 54, 1448, 34, 16, 3000, TXF & ~F(VIRTIO_NET_F_HOST_ECN) },
		{ 0, 1, 54, 1448, 34, 16, 3000, TXF },			/* GSO without NEEDS_CSUM */
		{ 1, 1, 54, 0, 34, 16, 3000, TXF },			/* gso_size 0 */
		{ 1, 1, 3001, 1448, 34, 16, 3000, TXF },		/* GSO hdr_len past the end */
		{ 1, 1, 54, 1448, 34, 16, 3000, F(VIRTIO_NET_F_HOST_TSO4) },	/* TSO without CSUM */
		{ 1, 1, 54, 1448, 34, 16, 3000, RXF },			/* the other direction's bits */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t h[VIRTIO_NET_HDR_LEN];

		vnet_hdr_put(h, bad[i].flags, bad[i].gso, bad[i].hdr_len, bad[i].gso_size, bad[i].cstart,
		   bad[i].coff);
		if (!net_hdr_check_tx(h, bad[i].flen, bad[i].feat))
			fail_msg("bad TX header %zu accepted", i);
	}
}

static void test_rx(void **state)
{
	uint8_t h[VIRTIO_NET_HDR_LEN];

	(void)state;
	/* a GSO frame from the tap with everything negotiated */
	tso4(h);
	h[0] |= VIRTIO_NET_HDR_F_DATA_VALID;
	assert_null(net_hdr_check_rx(h, 65000, RXF));
	assert_int_equal(le_get16(h + 10), 1);			/* num_buffers starts at 1 */
	assert_int_equal(h[0], VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID);
	/* queued before the guest dropped GUEST_TSO4 (reset, renegotiation) */
	tso4(h);
	assert_non_null(net_hdr_check_rx(h, 65000, RXF & ~F(VIRTIO_NET_F_GUEST_TSO4)));
	tso4(h);
	assert_non_null(net_hdr_check_rx(h, 65000, 0));
	/* NEEDS_CSUM without GUEST_CSUM: dropped; DATA_VALID alone: cleared */
	vnet_hdr_put(h, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16);
	assert_non_null(net_hdr_check_rx(h, 100, 0));
	vnet_hdr_put(h, VIRTIO_NET_HDR_F_DATA_VALID | 0xf0, 0, 0, 0, 0, 0);
	assert_null(net_hdr_check_rx(h, 100, 0));
	assert_int_equal(h[0], 0);
	vnet_hdr_put(h, VIRTIO_NET_HDR_F_DATA_VALID | 0xf0, 0, 0, 0, 0, 0);
	assert_null(net_hdr_check_rx(h, 100, RXF));
	assert_int_equal(h[0], VIRTIO_NET_HDR_F_DATA_VALID);
	/* ECN without GUEST_ECN, and the host's bits do not count for RX */
	vnet_hdr_put(h, 1, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, 74, 1428, 54, 16);
	assert_non_null(net_hdr_check_rx(h, 3000, RXF & ~F(VIRTIO_NET_F_GUEST_ECN)));
	vnet_hdr_put(h, 1, VIRTIO_NET_HDR_GSO_TCPV6, 74, 1428, 54, 16);
	assert_non_null(net_hdr_check_rx(h, 3000, TXF));
	/* lengths are checked the same way as TX */
	vnet_hdr_put(h, 1, 0, 0, 0, 0xffff, 0xffff);
	assert_non_null(net_hdr_check_rx(h, 3000, RXF));
	vnet_hdr_put(h, 0, 0, 0xffff, 0, 0, 0);
	assert_non_null(net_hdr_check_rx(h, 3000, RXF));
	vnet_hdr_put(h, 0, 0, 0, 0, 0, 0);
	assert_non_null(net_hdr_check_rx(h, 0, RXF));
}

static void test_tap_offloads(void **state)
{
	(void)state;
	assert_int_equal(net_tap_offloads(0), 0);
	assert_int_equal(net_tap_offloads(TXF), 0);		/* host-side bits do not matter */
	assert_int_equal(net_tap_offloads(F(VIRTIO_NET_F_GUEST_CSUM)), TUN_F_CSUM);
	assert_int_equal(net_tap_offloads(RXF),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	assert_int_equal(net_tap_offloads(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO6)),
			 TUN_F_CSUM | TUN_F_TSO6);
	/* TSO without GUEST_CSUM (a driver bug): the kernel would refuse, ask nothing */
	assert_int_equal(net_tap_offloads(RXF & ~F(VIRTIO_NET_F_GUEST_CSUM)), 0);
	/* ECN without any TSO: no TSO_ECN */
	assert_int_equal(net_tap_offloads(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_ECN)),
			 TUN_F_CSUM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_good),
		cmocka_unit_test(test_tx_hostile),
		cmocka_unit_test(test_rx),
		cmocka_unit_test(test_tap_offloads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
