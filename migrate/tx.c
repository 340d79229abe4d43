/* Sender mechanics: page batches, the bandwidth token bucket, listening
 * for the destination between batches, device-state slices. */
#include "migrate/tx.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/crc32c.h"

void mig_tx_publish(struct mig_tx *tx)
{
	tx->s.total_ms = (mig_now_ns() - tx->t0) / 1000000;
	if (!tx->live)
		return;
	pthread_mutex_lock(&tx->live->lock);
	tx->live->s = tx->s;
	pthread_mutex_unlock(&tx->live->lock);
}

int mig_tx_check_cancel(struct mig_tx *tx, struct err *e)
{
	if (tx->cancel && __atomic_load_n(tx->cancel, __ATOMIC_RELAXED)) {
		tx->cancelled = 1;
		return err_set(e, "cancelled");
	}
	return 0;
}

/* Sleep until the bucket holds n bytes; sleeps in <= 50 ms slices so a
 * cancel is noticed. The bucket holds at most one batch plus 50 ms worth,
 * so an idle period cannot buy a long burst over the cap. */
static int mig_tx__throttle(struct mig_tx *tx, size_t n, struct err *e)
{
	double burst;

	if (tx->rate <= 0)
		return 0;
	burst = MIG_PAGES_MAX + 64 + tx->rate * 50e6;
	for (;;) {
		uint64_t now = mig_now_ns();
		double need;
		struct timespec ts;

		tx->tokens += (double)(now - tx->tb_last) * tx->rate;
		tx->tb_last = now;
		if (tx->tokens > burst)
			tx->tokens = burst;
		if (tx->tokens >= (double)n) {
			tx->tokens -= (double)n;
			return 0;
		}
		if (mig_tx_check_cancel(tx, e) < 0)
			return -1;
		need = ((double)n - tx->tokens) / tx->rate;	/* ns */
		if (need > 50e6)
			need = 50e6;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)need + 1000;
		nanosleep(&ts, NULL);
	}
}

/* The destination only speaks during pre-copy to give up (ERROR) or by
 * closing; notice that between batches instead of when a send fails. */
static int mig_tx__peer_check(struct mig_tx *tx, struct err *e)
{
	struct pollfd pfd = { .fd = tx->c.fd, .events = POLLIN };
	char text[MIG_ERROR_MAX + 1];
	uint16_t type;
	size_t len;

	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if (frame_recv(&tx->c, &type, tx->rbuf, sizeof(tx->rbuf), &len, e) < 0) {
		if (tx->c.eof)
			return err_set(e, "destination closed connection");
		return err_prefix(e, "receive");
	}
	if (type == MIG_F_ERROR) {
		mig_error_text(tx->rbuf, len, text, sizeof(text));
		return err_set(e, "destination failed: %s", text);
	}
	return err_set(e, "unexpected %s frame from destination", mig_frame_name(type));
}

/* A send failed: if the destination said why before closing, report that
 * instead of "Broken pipe". The receive direction is still frame-aligned
 * (only the send side broke), so reading one more frame is sound. */
static int mig_tx__send_failed(struct mig_tx *tx, int errnum, struct err *e)
{
	struct err why;
	int broken = tx->c.broken;

	if (errnum == ETIMEDOUT || errnum == EAGAIN || errnum == EWOULDBLOCK)
		return err_set(e, "send timed out after %d ms (destination stopped reading)",
			       tx->p.io_timeout_ms);
	tx->c.broken = 0;
	if (mig_tx__peer_check(tx, &why) < 0 && strstr(why.msg, "destination failed"))
		err_set(e, "%s", why.msg);
	tx->c.broken = broken;
	return -1;
}

static int mig_tx__send(struct mig_tx *tx, uint16_t type, const void *buf, size_t len,
			struct err *e)
{
	if (mig_tx__throttle(tx, len, e) < 0)
		return -1;
	if (frame_send(&tx->c, type, buf, (uint32_t)len, e) < 0)
		return mig_tx__send_failed(tx, errno, e);
	tx->s.bytes_sent += len;
	return 0;
}

static int mig_tx__flush(struct mig_tx *tx, struct err *e)
{
	if (tx->blen == 0)
		return 0;
	if (mig_tx__send(tx, MIG_F_PAGES, tx->batch, tx->blen, e) < 0)
		return -1;
	tx->round_bytes += tx->blen;
	tx->blen = 0;
	tx->bpages = 0;
	tx->s.bytes_remaining = tx->round_left * PAGECODEC_PAGE_SIZE;
	mig_tx_publish(tx);
	if (mig_tx_check_cancel(tx, e) < 0)
		return -1;
	return mig_tx__peer_check(tx, e);
}

/* 1 if byte offset off of region k lies in a hole of its memfd (the page
 * reads as zero and has never been allocated), 0 if not or unknown.
 * Reading a hole through a shared mapping would allocate and zero a page
 * (no zero-page sharing for shmem): for the untouched part of a guest that
 * is most of round 0's cost. One SEEK_DATA/SEEK_HOLE pair per extent,
 * cached; offsets only grow within a pass (mig_tx_send_dirty resets it).
 * ORDERING: the query stands in for reading the page, after the same
 * dirty_sync: a write landing later is reported by the next sync, exactly
 * as for a page read. SEEK_DATA is exact for shmem (swapped pages are data). */
static int mig_tx__hole(struct mig_tx *tx, int k, uint64_t off)
{
	struct mig_hole_cache *h = &tx->hole;
	off_t fo, d;

	if (tx->ram[k].memfd < 0 || tx->no_holes)
		return 0;
	fo = (off_t)(tx->ram[k].memfd_off + off);
	if (h->region == k && fo >= h->lo && fo < h->hi)
		return h->is_hole;
	d = lseek(tx->ram[k].memfd, fo, SEEK_DATA);
	h->region = k;
	h->lo = fo;
	if (d < 0) {
		if (errno != ENXIO) {	/* not seekable: never ask again */
			tx->no_holes = 1;
			h->region = -1;
			return 0;
		}
		h->hi = INT64_MAX;	/* hole up to the end of the file */
		h->is_hole = 1;
	} else if (d > fo) {
		h->hi = d;
		h->is_hole = 1;
	} else {
		d = lseek(tx->ram[k].memfd, fo, SEEK_HOLE);
		h->hi = d > fo ? d : fo + PAGECODEC_PAGE_SIZE;
		h->is_hole = 0;
	}
	return h->is_hole;
}

int mig_tx_send_dirty(struct mig_tx *tx, struct err *e)
{
	uint64_t i;
	int k = 0;

	tx->round_left = bitmap_count(&tx->dirty);
	tx->hole.region = -1;	/* extents may have changed since the last pass */
	for (i = bitmap_next_set(&tx->dirty, 0); i < tx->npages;
	     i = bitmap_next_set(&tx->dirty, i + 1)) {
		const uint8_t *page;
		size_t before = tx->blen;
		int kind;

		while (i >= tx->first_page[k + 1])
			k++;
		page = tx->ram[k].host + (i - tx->first_page[k]) * PAGECODEC_PAGE_SIZE;
		/* Clear before reading: dirty is our private copy, a new
		 * write to this page is recorded by the VM's tracker (armed
		 * by the dirty_sync that produced this bit) for the next sync. */
		bitmap_clear(&tx->dirty, i);
		/* Zero pages are 16-byte records: a full 1 MiB batch could
		 * stand for 256 MiB of RAM. Capping a batch at
		 * MIG_TX_BATCH_PAGES pages keeps progress (bytes_sent,
		 * remaining), cancel and peer checks flowing (each flush). */
		if ((tx->blen + PAGECODEC_MAX_RECORD > MIG_PAGES_MAX ||
		     tx->bpages >= MIG_TX_BATCH_PAGES) && mig_tx__flush(tx, e) < 0)
			return -1;
		before = tx->blen;
		if (mig_tx__hole(tx, k, (i - tx->first_page[k]) * PAGECODEC_PAGE_SIZE)) {
			kind = pagecodec_encode_zero(&tx->enc, i, tx->batch, MIG_PAGES_MAX,
						     &tx->blen, e);
			tx->s.hole_pages++;
		} else
			kind = pagecodec_encode(&tx->enc, i, page, tx->batch, MIG_PAGES_MAX,
						&tx->blen, e);
		if (kind < 0)
			return -1;
		tx->s.pages_sent++;
		tx->bpages++;
		tx->round_pages++;

		tx->total_pages++;
		tx->round_left--;
		if (kind == PAGECODEC_ZERO)
			tx->s.zero_pages++;
		else if (kind == PAGECODEC_LZ4) {
			tx->s.lz4_pages++;
			tx->s.compressed_bytes += tx->blen - before;
		} else {
			tx->s.raw_pages++;
		}
	}
	return mig_tx__flush(tx, e);
}

int mig_tx_round_end(struct mig_tx *tx, uint32_t flags, struct err *e)
{
	struct mig_round_end re = {
		.round = tx->s.round,
		.flags = flags,
		.pages = tx->round_pages,
		.bytes = tx->round_bytes,
		.dirty_left = tx->round_left,
		.dirty_rate = tx->s.dirty_rate,
		.bandwidth = tx->s.bandwidth,
	};
	uint8_t buf[64];
	int n = mig_round_end_encode(&re, buf, sizeof(buf));

	if (mig_tx__send(tx, MIG_F_ROUND_END, buf, n, e) < 0)
		return err_prefix(e, "ROUND_END");
	tx->round_pages = tx->round_bytes = 0;
	return 0;
}

int mig_tx_sync(struct mig_tx *tx, struct err *e)
{
	uint64_t pages;
	size_t len;

	if (mig_tx__send(tx, MIG_F_SYNC, NULL, 0, e) < 0)
		return err_prefix(e, "SYNC");
	if (mig_tx_wait(tx, MIG_F_SYNCED, "applying pre-copy (SYNCED)", 1, &len, e) < 0 ||
	    mig_synced_decode(tx->rbuf, len, &pages, e) < 0)
		return -1;
	if (pages != tx->total_pages)
		return err_set(e, "destination applied %llu pages, sent %llu",
			       (unsigned long long)pages, (unsigned long long)tx->total_pages);
	return 0;
}

int mig_tx_send_state(struct mig_tx *tx, const uint8_t *buf, size_t len, struct err *e)
{
	struct mig_commit c = {
		.state_len = len,
		.state_crc = crc32c(buf, len),
		.rounds = tx->s.round + 1,
		.total_pages = tx->total_pages,
	};
	uint8_t cbuf[32];
	size_t off = 0;
	int n;

	if (len == 0 || len > MIG_STATE_MAX)
		return err_set(e, "device state of %zu bytes (1..%u allowed)", len, MIG_STATE_MAX);
	/* Slices go through the batch buffer: header + up to MIG_STATE_CHUNK. */
	while (off < len) {
		size_t take = len - off < MIG_STATE_CHUNK - MIG_STATE_HDR ?
			      len - off : MIG_STATE_CHUNK - MIG_STATE_HDR;

		mig_state_hdr_encode(tx->batch, len, off);
		memcpy(tx->batch + MIG_STATE_HDR, buf + off, take);
		if (mig_tx__send(tx, MIG_F_STATE, tx->batch, MIG_STATE_HDR + take, e) < 0)
			return err_prefix(e, "STATE");
		off += take;
		if (mig_tx_check_cancel(tx, e) < 0)
			return -1;
	}
	n = mig_commit_encode(&c, cbuf, sizeof(cbuf));
	if (mig_tx__send(tx, MIG_F_COMMIT, cbuf, n, e) < 0)
		return err_prefix(e, "COMMIT");
	return 0;
}

int mig_tx_wait(struct mig_tx *tx, uint16_t want, const char *what, int cancellable,
		size_t *len, struct err *e)
{
	uint64_t deadline = mig_now_ns() + (uint64_t)tx->p.io_timeout_ms * 1000000ull;
	char text[MIG_ERROR_MAX + 1];
	uint16_t type;

	for (;;) {
		struct pollfd pfd = { .fd = tx->c.fd, .events = POLLIN };
		int pr;

		if (cancellable && mig_tx_check_cancel(tx, e) < 0)
			return -1;
		pr = poll(&pfd, 1, 50);
		if (pr < 0 && errno != EINTR)
			return err_errno(e, errno, "poll");
		if (pr > 0)
			break;
		if (mig_now_ns() > deadline)
			return err_set(e, "no %s from destination within %d ms", what,
				       tx->p.io_timeout_ms);
	}
	if (frame_recv(&tx->c, &type, tx->rbuf, sizeof(tx->rbuf), len, e) < 0) {
		if (tx->c.eof)
			return err_set(e, "destination closed connection before %s", what);
		return err_prefix(e, "waiting for %s", what);
	}
	if (type == MIG_F_ERROR) {
		mig_error_text(tx->rbuf, *len, text, sizeof(text));
		return err_set(e, "destination failed: %s", text);
	}
	if (type != want)
		return err_set(e, "unexpected %s frame from destination while waiting for %s",
			       mig_frame_name(type), what);
	return 0;
}
