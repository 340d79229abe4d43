/* virtio-net against a SOCK_DGRAM socketpair standing in for the tap
 * (packet boundaries kept; TUNSETOFFLOAD on it is recorded by the ioctl()
 * below instead of reaching the kernel): TX, RX with and without
 * MRG_RXBUF, waiting for buffers, GSO frames both ways and hostile TX
 * headers, tap offloads following the features (negotiation, reset, load),
 * announce + ctrl ack, dirty marks, save/load. */
#include "tests/unit/test_virtio_vq.h"
#include "tests/unit/test_vnet_hdr.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "lib/le.h"
#include "lib/vmstate.h"
#include "vmm/virtio/net.h"

#define QS 16
/* per-queue ring bases: desc, avail, used */
static const uint64_t ring[3][3] = {
	{ 0x1000, 0x1800, 0x2000 }, { 0x3000, 0x3800, 0x4000 }, { 0x5000, 0x5800, 0x6000 },
};

struct fix {
	struct fake_ram *fr;
	struct virtio_dev vd;
	int sv[2];		/* sv[0] device side, sv[1] "network" */
	int irqs[3], cfg_irqs;
	uint16_t avail[3];	/* driver's avail idx per queue */
};

/* The device's tap fd and the last TUNSETOFFLOAD it got (-1 = none). The
 * executable's ioctl() wins over libc's for the objects linked into it. */
static int offload_fd = -1;
static long offload_last = -1;
static int offload_calls;

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	unsigned long arg;

	va_start(ap, req);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	if (fd == offload_fd && req == TUNSETOFFLOAD) {
		offload_last = (long)arg;
		offload_calls++;
		return 0;
	}
	return (int)syscall(SYS_ioctl, fd, req, arg);
}

static void irq_q(void *t, uint16_t q) { ((struct fix *)t)->irqs[q]++; }
static void irq_c(void *t) { ((struct fix *)t)->cfg_irqs++; }

/* Negotiate everything offered except the bits in drop. */
static struct fix *fix_new_drop(uint64_t drop)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct fix *f = calloc(1, sizeof(*f));
	struct virtio_dev *vd = &f->vd;
	uint64_t feat;
	struct err err;

	f->fr = fr_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, f->sv), 0);
	offload_fd = f->sv[0];
	offload_last = -1;
	offload_calls = 0;
	assert_int_equal(virtio_net_init(vd, &f->fr->gm, f->sv[0], mac, &err), 0);
	vd->irq_queue = irq_q;
	vd->irq_config = irq_c;
	vd->transport = f;
	feat = vd->host_features & ~(1ULL << VIRTIO_F_RING_EVENT_IDX_BIT) & ~drop;
	virtio_dev_set_guest_features(vd, 0, (uint32_t)feat);
	virtio_dev_set_guest_features(vd, 1, (uint32_t)(feat >> 32));
	virtio_dev_set_status(vd, VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER | VIRTIO_STAT_FEATURES_OK);
	for (int q = 0; q < 3; q++) {
		vd->vq[q].size = QS;
		vd->vq[q].desc_addr = ring[q][0];
		vd->vq[q].avail_addr = ring[q][1];
		vd->vq[q].used_addr = ring[q][2];
		virtio_dev_queue_enable(vd, q);
		assert_true(vd->vq[q].ready);
	}
	virtio_dev_set_status(vd, vd->status | VIRTIO_STAT_DRIVER_OK);
	assert_int_equal(vd->status, 0x0f);
	fr_snapshot(f->fr);
	return f;
}

static struct fix *fix_new(bool mrg)
{
	return fix_new_drop(mrg ? 0 : 1ULL << VIRTIO_NET_F_MRG_RXBUF);
}

static void fix_free(struct fix *f)
{
	virtio_dev_free(&f->vd);
	close(f->sv[0]);
	close(f->sv[1]);
	fr_free(f->fr);
	free(f);
}

/* Post a chain on queue q: n descriptors starting at index d0. */
static void post(struct fix *f, int q, uint16_t d0, int n, const uint64_t *addr,
		 const uint32_t *len, bool writable)
{
	uint16_t idx = f->avail[q];

	for (int i = 0; i < n; i++)
		put_desc(f->fr, ring[q][0], d0 + i, addr[i], len[i],
			 (writable ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
			 d0 + i + 1);
	drv_write(f->fr, ring[q][1] + 4 + 2 * (idx % QS), &d0, 2);
	idx++;
	f->avail[q] = idx;
	drv_write(f->fr, ring[q][1] + 2, &idx, 2);
}

static uint16_t used(struct fix *f, int q, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint16_t u;

	memcpy(&u, f->fr->ram + ring[q][2] + 2, 2);
	memcpy(id, f->fr->ram + ring[q][2] + 4 + 8 * (i % QS), 4);
	memcpy(len, f->fr->ram + ring[q][2] + 8 + 8 * (i % QS), 4);
	return u;
}

static void test_tx(void **state)
{
	struct fix *f = fix_new(true);
	uint8_t pkt[200], got[300];
	uint64_t a[2] = { DATA_GPA, DATA_GPA + 0x1000 };
	uint32_t l[2] = { VIRTIO_NET_HDR_LEN, 100 }, id, len;

	(void)state;
	for (int i = 0; i < 200; i++)
		pkt[i] = (uint8_t)i;
	memset(pkt, 0, VIRTIO_NET_HDR_LEN);	/* no offload: all-zero header */
	drv_write(f->fr, DATA_GPA, pkt, 12);
	drv_write(f->fr, DATA_GPA + 0x1000, pkt + 12, 100);
	post(f, VIRTIO_NET_Q_TX, 0, 2, a, l, false);
	virtio_dev_notify(&f->vd, VIRTIO_NET_Q_TX);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), 112);
	assert_memory_equal(got, pkt, 112);
	assert_int_equal(used(f, VIRTIO_NET_Q_TX, 0, &id, &len), 1);
	assert_int_equal(id, 0);
	assert_int_equal(f->irqs[VIRTIO_NET_Q_TX], 1);
	fr_check_dirty(f->fr);
	fix_free(f);
}

static void send_pkt(struct fix *f, uint32_t n, uint8_t seed)
{
	uint8_t p[4096] = { 0 };

	for (uint32_t i = VIRTIO_NET_HDR_LEN; i < n; i++)
		p[i] = (uint8_t)(seed + i);
	p[0] = 1;	/* flags: NEEDS_CSUM, passed through */
	assert_int_equal(write(f->sv[1], p, n), n);
}

static void test_rx_single(void **state)
{
	struct fix *f = fix_new(false);
	uint64_t a = DATA_GPA;
	uint32_t l = 2048, id, len;
	uint8_t *b = f->fr->ram + DATA_GPA;

	(void)state;
	assert_int_equal(virtio_net_rx(&f->vd), 0);	/* nothing on the wire */
	send_pkt(f, 112, 7);
	assert_int_equal(virtio_net_rx(&f->vd), 0);	/* no buffers: stays pending */
	post(f, VIRTIO_NET_Q_RX, 0, 1, &a, &l, true);
	virtio_dev_notify(&f->vd, VIRTIO_NET_Q_RX);	/* the kick delivers it */
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 0, &id, &len), 1);
	assert_int_equal(len, 112);
	assert_int_equal(b[0], 1);
	assert_int_equal(le_get16(b + 10), 1);		/* num_buffers */
	for (int i = 12; i < 112; i++)
		assert_int_equal(b[i], (uint8_t)(7 + i));
	assert_int_equal(f->irqs[VIRTIO_NET_Q_RX], 1);
	/* a packet bigger than the only buffer is dropped, buffer kept */
	l = 64;
	post(f, VIRTIO_NET_Q_RX, 1, 1, &a, &l, true);
	send_pkt(f, 200, 1);
	assert_int_equal(virtio_net_rx(&f->vd), 0);
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 0, &id, &len), 1);
	send_pkt(f, 60, 1);
	assert_int_equal(virtio_net_rx(&f->vd), 1);
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 1, &id, &len), 2);
	assert_int_equal(len, 60);
	fr_check_dirty(f->fr);
	fix_free(f);
}

static void test_rx_mrg(void **state)
{
	struct fix *f = fix_new(true);
	uint64_t a[3] = { DATA_GPA, DATA_GPA + 0x100, DATA_GPA + 0x200 };
	uint32_t l = 64, id, len;
	uint8_t *b = f->fr->ram + DATA_GPA;

	(void)state;
	post(f, VIRTIO_NET_Q_RX, 0, 1, &a[0], &l, true);
	send_pkt(f, 162, 3);
	assert_int_equal(virtio_net_rx(&f->vd), 0);	/* needs 3 buffers, has 1 */
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 0, &id, &len), 0);
	post(f, VIRTIO_NET_Q_RX, 1, 1, &a[1], &l, true);
	post(f, VIRTIO_NET_Q_RX, 2, 1, &a[2], &l, true);
	virtio_dev_notify(&f->vd, VIRTIO_NET_Q_RX);
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 0, &id, &len), 3);
	assert_int_equal(id, 0);
	assert_int_equal(len, 64);
	used(f, VIRTIO_NET_Q_RX, 2, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, 34);
	assert_int_equal(le_get16(b + 10), 3);
	assert_int_equal(b[0x100], (uint8_t)(3 + 64));
	assert_int_equal(b[0x200 + 33], (uint8_t)(3 + 161));
	fr_check_dirty(f->fr);
	fix_free(f);
}

/* The VMM's own RARP after migration: one broadcast frame out of the tap,
 * behind a vnet header without offloads, that names the guest's MAC. */
static void test_rarp(void **state)
{
	static const uint8_t want[60] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 1, 2, 3,	/* dst, src */
		0x80, 0x35, 0, 1, 0x08, 0x00, 6, 4, 0, 3,			/* RARP request */
		0x52, 0x54, 0, 1, 2, 3, 0, 0, 0, 0,				/* sender */
		0x52, 0x54, 0, 1, 2, 3, 0, 0, 0, 0,				/* target */
	};
	uint8_t got[VIRTIO_NET_HDR_LEN + 100], zero[VIRTIO_NET_HDR_LEN] = { 0 };
	struct fix *f = fix_new(true);

	(void)state;
	assert_int_equal(virtio_net_send_rarp(&f->vd), 0);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), VIRTIO_NET_HDR_LEN + 60);
	assert_memory_equal(got, zero, VIRTIO_NET_HDR_LEN);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, want, 60);
	/* the guest's memory and its queues are untouched */
	fr_check_dirty(f->fr);
	assert_int_equal(f->cfg_irqs, 0);
	/* a tap that refuses the frame: -1, nothing else happens */
	close(f->sv[1]);
	f->sv[1] = -1;
	assert_int_equal(virtio_net_send_rarp(&f->vd), -1);
	fix_free(f);
}

static void test_announce_and_save(void **state)
{
	struct fix *f = fix_new(true);
	uint64_t a[2] = { DATA_GPA, DATA_GPA + 0x100 };
	uint32_t l[2] = { 2, 1 }, id, len;
	struct vmstate_writer w;
	struct vcursor c;
	struct err err;
	struct virtio_dev vd2;
	struct vmstate_reader r;
	const void *p;
	size_t plen;

	(void)state;
	assert_int_equal(le_get16(f->vd.config + 6), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(virtio_net_announce(&f->vd), 0);
	assert_int_equal(f->cfg_irqs, 1);
	assert_int_equal(le_get16(f->vd.config + 6), VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	assert_int_equal(f->vd.config_generation, 1);

	/* save with the announce pending; load elsewhere keeps it */
	section_begin(&w, "net", 1);
	assert_int_equal(virtio_dev_save(&f->vd, &w, &err), 0);
	section_parse(&w, &r, "net", &p, &plen, NULL);
	assert_int_equal(virtio_net_init(&vd2, &f->fr->gm, f->sv[0],
					 (const uint8_t[6]){ 9, 9, 9, 9, 9, 9 }, &err), 0);
	vcursor_init(&c, p, plen);
	offload_last = -1;
	assert_int_equal(virtio_dev_load(&vd2, &c, &err), 0);
	/* the restored features put the tap offloads back at load time */
	assert_int_equal(offload_last, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	assert_true(vcursor_at_end(&c));
	assert_memory_equal(vd2.config, f->vd.config, 8);
	assert_true(vd2.vq[2].ready);
	virtio_dev_free(&vd2);
	vmstate_reader_free(&r);
	vmstate_writer_free(&w);

	/* the driver acks on the control queue: class 3 cmd 0 */
	drv_write(f->fr, DATA_GPA, (const uint8_t[2]){ 3, 0 }, 2);
	put_desc(f->fr, ring[2][0], 0, a[0], l[0], VIRTQ_DESC_F_NEXT, 1);
	put_desc(f->fr, ring[2][0], 1, a[1], l[1], VIRTQ_DESC_F_WRITE, 0);
	drv_write(f->fr, ring[2][1] + 4, &(uint16_t){ 0 }, 2);
	drv_write(f->fr, ring[2][1] + 2, &(uint16_t){ 1 }, 2);
	virtio_dev_notify(&f->vd, VIRTIO_NET_Q_CTRL);
	assert_int_equal(used(f, VIRTIO_NET_Q_CTRL, 0, &id, &len), 1);
	assert_int_equal(f->fr->ram[DATA_GPA + 0x100], 0);	/* VIRTIO_NET_OK */
	assert_int_equal(le_get16(f->vd.config + 6), VIRTIO_NET_S_LINK_UP);
	fr_check_dirty(f->fr);
	fix_free(f);
}

/* Post a TX chain: header at DATA_GPA, frame of flen bytes at +0x1000. */
static void tx_chain(struct fix *f, uint16_t d0, const uint8_t *hdr, uint32_t hlen, uint32_t flen)
{
	uint64_t a[2] = { DATA_GPA, DATA_GPA + 0x1000 };
	uint32_t l[2] = { hlen, flen };

	drv_write(f->fr, DATA_GPA, hdr, hlen);
	post(f, VIRTIO_NET_Q_TX, d0, flen ? 2 : 1, a, l, false);
	virtio_dev_notify(&f->vd, VIRTIO_NET_Q_TX);
}

static void test_tx_gso_hostile(void **state)
{
	/* the guest did not get HOST_TSO6 */
	struct fix *f = fix_new_drop(1ULL << VIRTIO_NET_F_HOST_TSO6);
	static uint8_t frame[3000], got[4000];
	uint8_t h[VIRTIO_NET_HDR_LEN];
	uint32_t id, len;

	(void)state;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	drv_write(f->fr, DATA_GPA + 0x1000, frame, sizeof(frame));

	/* a TSO4 frame goes to the tap with the (normalized) header */
	vnet_hdr_put(h, VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID,
		VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	tx_chain(f, 0, h, sizeof(h), sizeof(frame));
	assert_int_equal(read(f->sv[1], got, sizeof(got)), VIRTIO_NET_HDR_LEN + sizeof(frame));
	assert_int_equal(got[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(got[1], VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(le_get16(got + 4), 1448);
	assert_int_equal(le_get16(got + 10), 0);
	assert_memory_equal(got + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));

	/* hostile or un-negotiated headers: dropped, chain returned, device fine */
	vnet_hdr_put(h, 1, VIRTIO_NET_HDR_GSO_TCPV6, 74, 1428, 54, 16);	/* no HOST_TSO6 */
	tx_chain(f, 2, h, sizeof(h), sizeof(frame));
	vnet_hdr_put(h, 1, 0, 0, 0, 0xffff, 0xffff);				/* csum far outside */
	tx_chain(f, 4, h, sizeof(h), sizeof(frame));
	vnet_hdr_put(h, 1, VIRTIO_NET_HDR_GSO_TCPV4, 0xffff, 1448, 34, 16);	/* hdr_len outside */
	tx_chain(f, 6, h, sizeof(h), sizeof(frame));
	vnet_hdr_put(h, 1, 3, 42, 1472, 34, 6);				/* UFO: not offered */
	tx_chain(f, 8, h, sizeof(h), sizeof(frame));
	vnet_hdr_put(h, 0, 0, 0, 0, 0, 0);
	tx_chain(f, 10, h, 5, 0);					/* shorter than a header */
	tx_chain(f, 11, h, sizeof(h), 10);				/* runt frame */
	assert_int_equal(read(f->sv[1], got, sizeof(got)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(used(f, VIRTIO_NET_Q_TX, 6, &id, &len), 7);
	assert_int_equal(id, 11);
	assert_int_equal(len, 0);
	assert_false(f->vd.status & VIRTIO_STAT_NEEDS_RESET);

	/* and a plain frame still goes out */
	tx_chain(f, 12, h, sizeof(h), 60);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), VIRTIO_NET_HDR_LEN + 60);
	fr_check_dirty(f->fr);
	fix_free(f);
}

/* 16 RX buffers of 4 KiB at DATA_GPA, descriptors d0.. */
static void rx_bufs(struct fix *f, uint16_t d0, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t a = DATA_GPA + 0x1000 * (uint64_t)i;
		uint32_t l = 0x1000;

		post(f, VIRTIO_NET_Q_RX, (uint16_t)(d0 + i), 1, &a, &l, true);
	}
}

static void send_gso(struct fix *f, uint32_t flen, uint8_t gso)
{
	static uint8_t p[VIRTIO_NET_HDR_LEN + 65536];

	assert_true(flen <= 65536);
	for (uint32_t i = 0; i < flen; i++)
		p[VIRTIO_NET_HDR_LEN + i] = (uint8_t)(i * 13 + 1);
	vnet_hdr_put(p, gso ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0, gso, gso ? 54 : 0, gso ? 1448 : 0,
		gso ? 34 : 0, gso ? 16 : 0);
	assert_int_equal(write(f->sv[1], p, VIRTIO_NET_HDR_LEN + flen), VIRTIO_NET_HDR_LEN + flen);
}

static void test_rx_gso(void **state)
{
	struct fix *f = fix_new(true);
	uint8_t *b = f->fr->ram + DATA_GPA;
	uint32_t id, len;

	(void)state;
	rx_bufs(f, 0, 8);
	send_gso(f, 20000, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(virtio_net_rx(&f->vd), 1);
	/* the first RX put the negotiated offloads on the tap */
	assert_int_equal(offload_last, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	/* 12 + 20000 bytes over 4 KiB buffers: 5 of them */
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 4, &id, &len), 5);
	assert_int_equal(id, 4);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + 20000 - 4 * 0x1000);
	assert_int_equal(b[1], VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(le_get16(b + 4), 1448);
	assert_int_equal(le_get16(b + 10), 5);			/* num_buffers */
	assert_int_equal(b[4 * 0x1000 + 100], (uint8_t)((4 * 0x1000 + 100 - 12) * 13 + 1));

	/* a 64 KiB frame cannot fit the whole 16 x 4 KiB ring with its header:
	 * dropped, not left pending forever; the buffers stay available */
	rx_bufs(f, 8, 8);	/* 3 left from above + 8 = 11 buffers */
	send_gso(f, 65536, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(virtio_net_rx(&f->vd), 0);	/* 11 buffers: waits */
	rx_bufs(f, 0, 5);	/* now all 16 */
	virtio_dev_notify(&f->vd, VIRTIO_NET_Q_RX);
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 0, &id, &len), 5);
	send_gso(f, 100, 0);
	assert_int_equal(virtio_net_rx(&f->vd), 1);
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 5, &id, &len), 6);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + 100);

	/* reset: guest features are gone, so are the tap offloads */
	virtio_dev_set_status(&f->vd, 0);
	assert_int_equal(offload_last, 0);
	fr_check_dirty(f->fr);
	fix_free(f);
}

static void test_rx_gso_not_negotiated(void **state)
{
	struct fix *f = fix_new_drop(1ULL << VIRTIO_NET_F_GUEST_TSO4);
	uint8_t *b = f->fr->ram + DATA_GPA;
	uint32_t id, len;

	(void)state;
	rx_bufs(f, 0, 8);
	/* a TSO4 frame the tap still had queued: dropped, the next one goes in */
	send_gso(f, 20000, VIRTIO_NET_HDR_GSO_TCPV4);
	send_gso(f, 20000, VIRTIO_NET_HDR_GSO_TCPV6);
	assert_int_equal(virtio_net_rx(&f->vd), 1);
	assert_int_equal(offload_last, TUN_F_CSUM | TUN_F_TSO6 | TUN_F_TSO_ECN);
	assert_int_equal(used(f, VIRTIO_NET_Q_RX, 0, &id, &len), 5);
	assert_int_equal(b[1], VIRTIO_NET_HDR_GSO_TCPV6);
	fr_check_dirty(f->fr);
	fix_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx),
		cmocka_unit_test(test_rx_single),
		cmocka_unit_test(test_rx_mrg),
		cmocka_unit_test(test_rarp),
		cmocka_unit_test(test_announce_and_save),
		cmocka_unit_test(test_tx_gso_hostile),
		cmocka_unit_test(test_rx_gso),
		cmocka_unit_test(test_rx_gso_not_negotiated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
