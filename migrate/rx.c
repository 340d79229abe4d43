/* Receiver state machine (no I/O), see migrate/recv.h and the drawing in
 * migrate/proto.h. Invariant: nothing is ever written to guest RAM except
 * through a pagecodec record whose gfn pagecodec_next() checked against
 * rx->npages, mapped to its region with first_page[]. */
#include "migrate/recv.h"

#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"

const char *mig_rx_state_name(enum mig_rx_state s)
{
	switch (s) {
	case MIG_RX_WAIT_HELLO:	return "waiting for HELLO";
	case MIG_RX_RECV_PAGES:	return "receiving pages";
	case MIG_RX_RECV_STATE:	return "receiving device state";
	case MIG_RX_LOADED:	return "loaded, waiting for GO";
	case MIG_RX_RUNNING:	return "running";
	case MIG_RX_FAILED:	return "failed";
	}
	return "?";
}

int mig_rx_init(struct mig_rx *rx, void *vm, const struct mig_vm_ops *ops,
		struct mig_recv_stats *st, struct err *e)
{
	int n = MIG_MAX_REGIONS;

	memset(rx, 0, sizeof(*rx));
	rx->vm = vm;
	rx->ops = ops;
	rx->st = st ? st : &rx->own;
	memset(rx->st, 0, sizeof(*rx->st));
	if (ops->ram_regions(vm, rx->ram, &n, e) < 0)
		return err_prefix(e, "RAM regions");
	if (mig_hello_from_regions(&rx->mine, rx->ram, n, MIG_FEAT_ALL, NULL, 0, e) < 0)
		return -1;
	rx->nram = n;
	for (int i = 0; i < n; i++)
		rx->first_page[i + 1] = rx->first_page[i] + rx->ram[i].size / PAGECODEC_PAGE_SIZE;
	rx->npages = rx->first_page[n];
	rx->dec = malloc(sizeof(*rx->dec));
	if (!rx->dec)
		return err_set(e, "out of memory");
	pagecodec_dec_init(rx->dec, rx->npages);
	return 0;
}

void mig_rx_fini(struct mig_rx *rx)
{
	free(rx->dec);
	free(rx->sbuf);
	rx->dec = NULL;
	rx->sbuf = NULL;
}

static uint8_t *mig_rx__page(struct mig_rx *rx, uint64_t gfn)
{
	int k = 0;

	/* gfn < npages (checked by pagecodec_next), so some region holds it. */
	while (gfn >= rx->first_page[k + 1])
		k++;
	return rx->ram[k].host + (gfn - rx->first_page[k]) * PAGECODEC_PAGE_SIZE;
}

static void *mig_rx__addr(void *rx, uint64_t gfn)
{
	return mig_rx__page(rx, gfn);
}

/* The memfd behind page gfn (pwritev target), or -1. */
static int mig_rx__file(void *opaque, uint64_t gfn, off_t *off)
{
	struct mig_rx *rx = opaque;
	int k = 0;

	while (gfn >= rx->first_page[k + 1])
		k++;
	*off = (off_t)(rx->ram[k].memfd_off + (gfn - rx->first_page[k]) * PAGECODEC_PAGE_SIZE);
	return rx->ram[k].memfd;
}

static int mig_rx__pages(struct mig_rx *rx, const uint8_t *p, size_t len, struct err *e)
{
	uint64_t n = 0;
	int r;

	if (len == 0 || len > MIG_PAGES_MAX)
		return err_set(e, "PAGES: %zu byte batch (1..%u allowed)", len, MIG_PAGES_MAX);
	/* Runs: zero pages punch holes, RAW pages are pwritev'd into the
	 * memfd; neither faults pages in (lib/pagecodec). */
	r = pagecodec_decode_to(rx->dec, p, len, mig_rx__addr, mig_rx__file, rx, &n, e);
	rx->round_pages += n;
	rx->total_pages += n;
	if (r < 0)
		return -1;
	rx->round_bytes += len;
	rx->st->pages = rx->total_pages;
	rx->st->zero_pages = rx->dec->st.zero_pages;
	rx->st->raw_pages = rx->dec->st.raw_pages;
	rx->st->lz4_pages = rx->dec->st.lz4_pages;
	return 0;
}

static int mig_rx__round_end(struct mig_rx *rx, const uint8_t *p, size_t len, struct err *e)
{
	struct mig_round_end re;

	if (mig_round_end_decode(p, len, &re, e) < 0)
		return -1;
	if (re.round != rx->round)
		return err_set(e, "ROUND_END for round %u, expected round %u", re.round, rx->round);
	/* The frames are authenticated, so a mismatch is a sender bug, but it
	 * is cheap to catch before we run a guest with missing pages. */
	if (re.pages != rx->round_pages || re.bytes != rx->round_bytes)
		return err_set(e, "round %u: source sent %llu pages / %llu bytes, received %llu / %llu",
			       re.round, (unsigned long long)re.pages, (unsigned long long)re.bytes,
			       (unsigned long long)rx->round_pages,
			       (unsigned long long)rx->round_bytes);
	rx->round++;
	rx->st->rounds = rx->round;
	rx->round_pages = rx->round_bytes = 0;
	if (re.flags & MIG_RE_FINAL)
		rx->state = MIG_RX_RECV_STATE;
	return 0;
}

static int mig_rx__state(struct mig_rx *rx, const uint8_t *p, size_t len, struct err *e)
{
	uint64_t total, off;

	if (mig_state_hdr_decode(p, len, &total, &off, e) < 0)
		return -1;
	if (!rx->sbuf) {
		if (off != 0)
			return err_set(e, "STATE: first slice at offset %llu, want 0",
				       (unsigned long long)off);
		rx->sbuf = malloc(total);
		if (!rx->sbuf)
			return err_set(e, "STATE: cannot allocate %llu bytes",
				       (unsigned long long)total);
		rx->state_len = total;
	}
	if (total != rx->state_len || off != rx->state_got)
		return err_set(e, "STATE: slice (total %llu, offset %llu) out of order, want (%llu, %llu)",
			       (unsigned long long)total, (unsigned long long)off,
			       (unsigned long long)rx->state_len,
			       (unsigned long long)rx->state_got);
	memcpy(rx->sbuf + off, p + MIG_STATE_HDR, len - MIG_STATE_HDR);
	rx->state_got += len - MIG_STATE_HDR;
	rx->st->state_bytes = rx->state_got;
	return 0;
}

static int mig_rx__commit(struct mig_rx *rx, const uint8_t *p, size_t len, struct err *e)
{
	struct mig_commit c;
	uint32_t crc;

	if (mig_commit_decode(p, len, &c, e) < 0)
		return -1;
	if (!rx->sbuf || c.state_len != rx->state_len || rx->state_got != rx->state_len)
		return err_set(e, "COMMIT: device state incomplete (%llu of %llu bytes, source says %llu)",
			       (unsigned long long)rx->state_got,
			       (unsigned long long)rx->state_len,
			       (unsigned long long)c.state_len);
	crc = crc32c(rx->sbuf, rx->state_len);
	if (crc != c.state_crc)
		return err_set(e, "COMMIT: device state crc32c 0x%08x, source says 0x%08x",
			       crc, c.state_crc);
	if (c.rounds != rx->round || c.total_pages != rx->total_pages)
		return err_set(e, "COMMIT: source sent %u rounds / %llu pages, received %u / %llu",
			       c.rounds, (unsigned long long)c.total_pages, rx->round,
			       (unsigned long long)rx->total_pages);
	if (rx->ops->load_state(rx->vm, rx->sbuf, rx->state_len, e) < 0)
		return err_prefix(e, "load_state");
	return 0;
}

static int mig_rx__step(struct mig_rx *rx, uint16_t type, const uint8_t *p, size_t len,
			uint16_t *rtype, uint8_t *reply, size_t *rlen, struct err *e)
{
	struct mig_hello peer;
	char text[MIG_ERROR_MAX + 1];
	int n;

	if (type == MIG_F_ERROR) {
		mig_error_text(p, len, text, sizeof(text));
		return err_set(e, "source gave up: %s", text);
	}
	switch (rx->state) {
	case MIG_RX_WAIT_HELLO:
		if (type != MIG_F_HELLO)
			break;
		if (mig_hello_decode(p, len, &peer, e) < 0 ||
		    mig_hello_check_layout(&rx->mine, &peer, "source", e) < 0)
			return -1;
		if (rx->ops->compat_check &&
		    rx->ops->compat_check(rx->vm, peer.compat, peer.compat_len, e) < 0)
			return err_prefix(e, "incompatible source");
		n = mig_hello_encode(&rx->mine, reply, MIG_RX_REPLY_MAX, e);
		if (n < 0)
			return -1;
		*rtype = MIG_F_HELLO;
		*rlen = n;
		rx->state = MIG_RX_RECV_PAGES;
		return 0;
	case MIG_RX_RECV_PAGES:
		if (type == MIG_F_PAGES)
			return mig_rx__pages(rx, p, len, e);
		if (type == MIG_F_ROUND_END)
			return mig_rx__round_end(rx, p, len, e);
		if (type == MIG_F_SYNC) {
			/* Frames are applied in order, so everything before
			 * this one is in guest memory now. */
			if (len != 0)
				return err_set(e, "SYNC with a %zu byte payload", len);
			mig_synced_encode(reply, rx->total_pages);
			*rtype = MIG_F_SYNCED;
			*rlen = 8;
			return 0;
		}
		break;
	case MIG_RX_RECV_STATE:
		if (type == MIG_F_STATE)
			return mig_rx__state(rx, p, len, e);
		if (type != MIG_F_COMMIT)
			break;
		if (mig_rx__commit(rx, p, len, e) < 0)
			return -1;
		mig_ack_encode(reply, rx->total_pages, rx->state_len);
		*rtype = MIG_F_ACK_LOADED;
		*rlen = 16;
		rx->state = MIG_RX_LOADED;
		return 0;
	case MIG_RX_LOADED:
		if (type != MIG_F_GO)
			break;
		if (len != 0)
			return err_set(e, "GO with a %zu byte payload", len);
		*rtype = MIG_F_GO_ACK;
		*rlen = 0;
		rx->state = MIG_RX_RUNNING;
		return 0;
	case MIG_RX_RUNNING:
	case MIG_RX_FAILED:
		break;
	}
	return err_set(e, "unexpected %s frame (type %u)", mig_frame_name(type), type);
}

int mig_rx_frame(struct mig_rx *rx, uint16_t type, const uint8_t *p, size_t len,
		 uint16_t *reply_type, uint8_t *reply, size_t *reply_len, struct err *e)
{
	enum mig_rx_state was = rx->state;

	*reply_type = 0;
	*reply_len = 0;
	if (was == MIG_RX_FAILED)
		return err_set(e, "failed earlier");
	rx->st->bytes += len;
	if (mig_rx__step(rx, type, p, len, reply_type, reply, reply_len, e) < 0) {
		rx->state = MIG_RX_FAILED;
		rx->st->state = MIG_RX_FAILED;
		*reply_type = 0;
		if (was == MIG_RX_RECV_PAGES)
			return err_prefix(e, "%s (round %u)", mig_rx_state_name(was), rx->round);
		return err_prefix(e, "%s", mig_rx_state_name(was));
	}
	rx->st->state = rx->state;
	return 0;
}
