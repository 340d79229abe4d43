#include "vmm/virtio/net.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/vcursor.h"
#include "lib/vmstate.h"

#define RX_BUF		(VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX)	/* >= any tap frame */
#define CFG_STATUS	6	/* config: mac[6], status u16 */
#define CTRL_ANNOUNCE	3
#define CTRL_ANNOUNCE_ACK 0

struct net {
	int tap;
	uint64_t offloads_for;		/* guest_features the tap offloads match */
	bool offloads_set;
	uint32_t pending;		/* bytes of a packet waiting in rxbuf, 0 = none */
	uint64_t tx_dropped, rx_dropped;
	uint64_t tx_bad_hdr, rx_bad_hdr;	/* of those, refused by net_hdr_check_* */
	struct vq_elem elem, first;
	uint16_t heads[VIRTIO_NET_QUEUE_SIZE];
	uint32_t lens[VIRTIO_NET_QUEUE_SIZE];
	uint8_t rxbuf[RX_BUF];
};

static uint16_t net_status(struct virtio_dev *vd)
{
	return le_get16(vd->config + CFG_STATUS);
}

/* Tell the tap which offloads the guest can take in RX packets. Best
 * effort: without them the tap hands over segmented, checksummed frames
 * (and net_hdr_check_rx drops any frame the guest did not negotiate, e.g.
 * one queued in the tap before a change). */
static void net_sync_offloads(struct virtio_dev *vd, struct net *n)
{
	if (n->offloads_set && n->offloads_for == vd->guest_features)
		return;
	(void)ioctl(n->tap, TUNSETOFFLOAD, net_tap_offloads(vd->guest_features));
	n->offloads_for = vd->guest_features;
	n->offloads_set = true;
}

static void net_tx(struct virtio_dev *vd, struct net *n)
{
	struct virtq *vq = &vd->vq[VIRTIO_NET_Q_TX];
	struct iovec iov[VQ_MAX_SEGS + 1];
	uint8_t hdr[VIRTIO_NET_HDR_LEN];
	bool pushed = false;

	while (vq_pop(vq, &n->elem) == 1) {
		uint32_t flen;
		ssize_t r;
		int cnt;

		if (n->elem.out_len < VIRTIO_NET_HDR_LEN) {
			n->tx_dropped++;
			goto done;
		}
		flen = n->elem.out_len - VIRTIO_NET_HDR_LEN;
		/* The tap gets our checked copy of the header, not guest RAM,
		 * which the guest could change after the check. */
		vq_elem_read(&n->elem, 0, hdr, VIRTIO_NET_HDR_LEN);
		if (net_hdr_check_tx(hdr, flen, vd->guest_features)) {
			n->tx_dropped++;
			n->tx_bad_hdr++;
			goto done;
		}
		iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = VIRTIO_NET_HDR_LEN };
		cnt = vq_elem_iovec(&n->elem, false, VIRTIO_NET_HDR_LEN, flen, iov + 1);
		do
			r = writev(n->tap, iov, cnt + 1);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			n->tx_dropped++;	/* tap full or down, or refused: drop */
done:
		if (vq_push(vq, n->elem.head, 0) < 0)
			break;
		pushed = true;
	}
	virtio_dev_check_vq(vd, VIRTIO_NET_Q_TX);
	if (pushed)
		virtio_dev_used(vd, VIRTIO_NET_Q_TX);
}

/* Place the pending packet into guest buffers. 1 = delivered, 2 = dropped
 * for good, 0 = not enough buffers (packet stays pending), -1 = broken. */
static int net_rx_one(struct virtio_dev *vd, struct net *n)
{
	struct virtq *vq = &vd->vq[VIRTIO_NET_Q_RX];
	bool mrg = virtio_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF);
	uint32_t len = n->pending, off = 0;
	uint16_t nb = 0;
	int r;

	while (off < len) {
		uint32_t k;

		r = vq_pop(vq, &n->elem);
		if (r <= 0) {
			vq_unpop(vq, nb);	/* nothing was pushed: hand them back */
			return r;
		}
		if (nb == 0)
			n->first = n->elem;
		if (!mrg && n->elem.in_len < len) {
			/* Without MRG_RXBUF the packet must fit one chain. */
			vq_unpop(vq, 1);
			n->rx_dropped++;
			return 2;
		}
		k = vq_elem_write(vd->gm, &n->elem, 0, n->rxbuf + off, len - off);
		if (k == 0 || (nb == 0 && k < VIRTIO_NET_HDR_LEN)) {
			/* A buffer too small for the header is a driver bug. */
			vq_unpop(vq, (uint16_t)(nb + 1));
			return virtio_dev_broken(vd, "rx buffer too small for the header");
		}
		n->heads[nb] = n->elem.head;
		n->lens[nb] = k;
		nb++;
		off += k;
		/* The whole ring (or our bookkeeping) cannot hold it: a
		 * 64 KiB GSO frame into a small ring of small buffers would
		 * otherwise wait forever and stall RX. */
		if ((nb == VIRTIO_NET_QUEUE_SIZE || nb >= vq->size) && off < len) {
			vq_unpop(vq, nb);
			n->rx_dropped++;
			return 2;
		}
	}
	/* num_buffers lives in the first chain's header. */
	vq_elem_write(vd->gm, &n->first, 10, &(uint16_t){ nb }, 2);
	for (uint16_t i = 0; i < nb; i++)
		if (vq_push(vq, n->heads[i], n->lens[i]) < 0)
			return -1;
	return 1;
}

int virtio_net_rx(struct virtio_dev *vd)
{
	struct net *n = vd->priv;
	int delivered = 0;

	if (!(vd->status & VIRTIO_STAT_DRIVER_OK) || (vd->status & VIRTIO_STAT_NEEDS_RESET) ||
	    !vd->vq[VIRTIO_NET_Q_RX].ready)
		return 0;
	net_sync_offloads(vd, n);
	for (int i = 0; i < VIRTIO_NET_RX_BUDGET; i++) {
		int r;

		if (!n->pending) {
			ssize_t got;

			do
				got = read(n->tap, n->rxbuf, sizeof(n->rxbuf));
			while (got < 0 && errno == EINTR);
			if (got <= 0)
				break;		/* EAGAIN: tap drained */
			if (got < VIRTIO_NET_HDR_LEN) {
				n->rx_dropped++;
				continue;
			}
			/* Sets num_buffers to 1 (the tap leaves it alone). */
			if (net_hdr_check_rx(n->rxbuf, (uint32_t)got - VIRTIO_NET_HDR_LEN,
					     vd->guest_features)) {
				n->rx_dropped++;
				n->rx_bad_hdr++;
				continue;
			}
			n->pending = (uint32_t)got;
		}
		r = net_rx_one(vd, n);
		if (r <= 0)
			break;
		n->pending = 0;
		if (r == 1)
			delivered++;
	}
	virtio_dev_check_vq(vd, VIRTIO_NET_Q_RX);
	if (delivered)
		virtio_dev_used(vd, VIRTIO_NET_Q_RX);
	return delivered;
}

static void net_ctrl(struct virtio_dev *vd, struct net *n)
{
	struct virtq *vq = &vd->vq[VIRTIO_NET_Q_CTRL];
	bool pushed = false;

	while (vq_pop(vq, &n->elem) == 1) {
		uint8_t cmd[2] = { 0xff, 0xff }, ack = 1;	/* VIRTIO_NET_ERR */

		if (n->elem.in_len < 1) {
			virtio_dev_broken(vd, "control request without an ack byte");
			return;
		}
		vq_elem_read(&n->elem, 0, cmd, 2);
		if (cmd[0] == CTRL_ANNOUNCE && cmd[1] == CTRL_ANNOUNCE_ACK) {
			le_put16(vd->config + CFG_STATUS,
				 net_status(vd) & (uint16_t)~VIRTIO_NET_S_ANNOUNCE);
			ack = 0;	/* VIRTIO_NET_OK */
		}
		vq_elem_write(vd->gm, &n->elem, n->elem.in_len - 1, &ack, 1);
		if (vq_push(vq, n->elem.head, 1) < 0)
			break;
		pushed = true;
	}
	virtio_dev_check_vq(vd, VIRTIO_NET_Q_CTRL);
	if (pushed)
		virtio_dev_used(vd, VIRTIO_NET_Q_CTRL);
}

static void net_notify(struct virtio_dev *vd, uint16_t q)
{
	struct net *n = vd->priv;

	net_sync_offloads(vd, n);
	if (q == VIRTIO_NET_Q_TX)
		net_tx(vd, n);
	else if (q == VIRTIO_NET_Q_RX)
		virtio_net_rx(vd);	/* new buffers: a pending packet may fit */
	else if (q == VIRTIO_NET_Q_CTRL)
		net_ctrl(vd, n);
}

int virtio_net_announce(struct virtio_dev *vd)
{
	if (!virtio_has_feature(vd, VIRTIO_NET_F_GUEST_ANNOUNCE) ||
	    !(vd->status & VIRTIO_STAT_DRIVER_OK))
		return -1;
	le_put16(vd->config + CFG_STATUS, net_status(vd) | VIRTIO_NET_S_ANNOUNCE);
	virtio_dev_config_changed(vd);
	return 0;
}

/* ETH_ZLEN: the RARP below padded to Ethernet's minimum frame. */
#define RARP_FRAME_LEN	60

int virtio_net_send_rarp(struct virtio_dev *vd)
{
	struct net *n = vd->priv;
	uint8_t f[VIRTIO_NET_HDR_LEN + RARP_FRAME_LEN] = { 0 };	/* hdr: no offloads */
	uint8_t *e = f + VIRTIO_NET_HDR_LEN;
	const uint8_t *mac = vd->config;	/* config starts with the MAC */

	memset(e, 0xff, 6);			/* to: broadcast */
	memcpy(e + 6, mac, 6);			/* from: the guest */
	e[12] = 0x80;				/* ethertype 0x8035: RARP */
	e[13] = 0x35;
	e[15] = 1;				/* htype 1: Ethernet */
	e[16] = 0x08;				/* ptype 0x0800: IPv4 */
	e[18] = 6;				/* hlen */
	e[19] = 4;				/* plen */
	e[21] = 3;				/* op 3: reverse request */
	memcpy(e + 22, mac, 6);			/* sender hw (sender IP 0) */
	memcpy(e + 32, mac, 6);			/* target hw (target IP 0) */
	return write(n->tap, f, sizeof(f)) == (ssize_t)sizeof(f) ? 0 : -1;
}

static void net_reset(struct virtio_dev *vd)
{
	struct net *n = vd->priv;

	n->pending = 0;
	/* guest_features are 0 now: no offloads until the driver negotiates
	 * again, so the tap stops queueing GSO frames right away. */
	n->offloads_set = false;
	net_sync_offloads(vd, n);
	le_put16(vd->config + CFG_STATUS, VIRTIO_NET_S_LINK_UP);
}

/* Device payload: mac[6], u16 status. The guest knows the MAC, so the
 * saved one wins over the destination's configuration. */
static int net_save(struct virtio_dev *vd, struct vmstate_writer *w, struct err *e)
{
	if (vmstate_put(w, vd->config, 6, e) < 0 || vmstate_put_u16(w, net_status(vd), e) < 0)
		return -1;
	return 0;
}

static int net_load(struct virtio_dev *vd, struct vcursor *c, struct err *e)
{
	struct net *n = vd->priv;
	uint8_t mac[6];
	uint16_t st = 0;

	vcursor_get_bytes(c, mac, 6);
	vcursor_get_u16(c, &st);
	if (vcursor_failed(c))
		return err_set(e, "truncated state");
	memcpy(vd->config, mac, 6);
	le_put16(vd->config + CFG_STATUS, st);
	n->pending = 0;
	/* The destination's tap (or a restored one) starts with no offloads:
	 * give it the ones the restored features call for now, not on the
	 * first kick. guest_features were loaded before this hook runs. */
	n->offloads_set = false;
	net_sync_offloads(vd, n);
	return 0;
}

static void net_free(struct virtio_dev *vd)
{
	free(vd->priv);
}

const struct virtio_dev_ops virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.pci_class = 0x020000,	/* ethernet */
	.queue_notify = net_notify,
	.reset = net_reset,
	.save = net_save,
	.load = net_load,
	.free = net_free,
};

int virtio_net_init(struct virtio_dev *vd, const struct guest_mem *gm, int tap_fd,
		    const uint8_t mac[6], struct err *e)
{
	struct net *n = calloc(1, sizeof(*n));
	uint64_t feat = (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
			(1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
			(1ULL << VIRTIO_NET_F_STATUS) | (1ULL << VIRTIO_NET_F_CTRL_VQ) |
			(1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE) |
			(1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
			(1ULL << VIRTIO_NET_F_HOST_ECN) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |
			(1ULL << VIRTIO_NET_F_GUEST_TSO6) | (1ULL << VIRTIO_NET_F_GUEST_ECN);

	if (!n)
		return err_set(e, "virtio-net: out of memory");
	n->tap = tap_fd;
	virtio_dev_init(vd, &virtio_net_ops, n, gm, feat, 3, VIRTIO_NET_QUEUE_SIZE);
	vd->config_len = 8;	/* mac, status (max_virtqueue_pairs unused) */
	memcpy(vd->config, mac, 6);
	le_put16(vd->config + CFG_STATUS, VIRTIO_NET_S_LINK_UP);
	return 0;
}
