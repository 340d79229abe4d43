/* Migration source: setup, pre-copy rounds, switchover and the ownership
 * hand-off (contract in migrate/send.h, wire format in migrate/proto.h). */
#include "migrate/send.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "lib/vmstate.h"
#include "migrate/tx.h"

#define MIG_BW_DEFAULT	125000000.0	/* bytes/s guess until measured (1 GbE) */
#define MIG_BW_MIN_SAMPLE (1u << 20)	/* a round this big gives a bw sample */
#define MIG_DRAIN_MAX_MS 2000		/* longest wait for the send queue before pausing */

void mig_params_default(struct mig_params *p)
{
	memset(p, 0, sizeof(*p));
	p->downtime_ms = 300;
	p->max_rounds = 30;
	p->force_factor = 4;
	p->auto_converge = 1;
	p->compress = -1;
	p->lz4_accel = MIG_LZ4_ACCEL_DEFAULT;
	p->io_timeout_ms = 30000;
	p->state_size_est = 256 << 10;
}

void mig_stats_init(struct mig_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
}

void mig_stats_destroy(struct mig_stats *st)
{
	pthread_mutex_destroy(&st->lock);
}

void mig_stats_get(struct mig_stats *st, struct mig_status *out)
{
	pthread_mutex_lock(&st->lock);
	*out = st->s;
	pthread_mutex_unlock(&st->lock);
}

const char *mig_outcome_name(enum mig_outcome o)
{
	switch (o) {
	case MIG_OUTCOME_NONE:		return "in progress";
	case MIG_OUTCOME_SUCCESS:	return "success";
	case MIG_OUTCOME_FAILED:	return "failed";
	case MIG_OUTCOME_CANCELLED:	return "cancelled";
	case MIG_OUTCOME_NOT_CONVERGED:	return "not converged";
	case MIG_OUTCOME_AMBIGUOUS:	return "AMBIGUOUS";
	}
	return "?";
}

const char *mig_times_format(const struct mig_times *t, char *buf, size_t cap)
{
	static const struct { const char *name; size_t off; } f[] = {
#define F(x) { #x, offsetof(struct mig_times, x) }
		F(auth), F(hello), F(dirty_start), F(sync_total), F(sync_max), F(drain), F(last_pass), F(sync), F(pause),
		F(final_sync), F(final_send), F(save), F(state_send), F(ack_wait), F(go),
		F(write), F(tag),
#undef F
	};
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && n < cap; i++) {
		uint64_t us = *(const uint64_t *)((const char *)t + f[i].off);

		n += (size_t)snprintf(buf + n, cap - n, "%s%s %.1f", n ? " " : "", f[i].name,
				      us / 1000.0);
	}
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n, " last_pass_pages %llu",
				      (unsigned long long)t->last_pass_pages);
	for (uint32_t i = 0; i < t->nrounds && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%.1f", i ? "," : " rounds ",
				      t->round[i] / 1000.0);
	if (n >= cap && cap > 4)
		memcpy(buf + cap - 4, "...", 4);
	return buf;
}

static uint64_t mig__us(uint64_t t0_ns)
{
	return (mig_now_ns() - t0_ns) / 1000;
}

/* dirty_sync, timed into sync_total / sync_max. */
static int mig__sync(struct mig_tx *tx, struct err *e)
{
	uint64_t t = mig_now_ns(), us;
	int r = tx->ops->dirty_sync(tx->vm, &tx->dirty, e);

	us = mig__us(t);
	tx->s.t.sync_total += us;
	if (us > tx->s.t.sync_max)
		tx->s.t.sync_max = us;
	return r;
}

const char *mig_phase_name(enum mig_phase p)
{
	switch (p) {
	case MIG_PHASE_SETUP:		return "setup";
	case MIG_PHASE_PRECOPY:		return "pre-copy";
	case MIG_PHASE_SWITCHOVER:	return "switchover";
	case MIG_PHASE_DONE:		return "done";
	}
	return "?";
}

struct mig_send_ctx {
	struct mig_tx tx;
	double bw;			/* bytes/s estimate */
	int dirty_on, paused, not_converged;
	int go_sent;			/* past the point of no return */
	uint64_t t_pause;
	char where[32];
};

static int mig__setup(struct mig_send_ctx *x, int fd, const struct auth_secret *secret,
		      struct err *e)
{
	struct mig_tx *tx = &x->tx;
	struct mig_hello mine, peer;
	struct timeval tv = { tx->p.io_timeout_ms / 1000, (tx->p.io_timeout_ms % 1000) * 1000 };
	uint8_t *compat = NULL, hb[MIG_TX_RBUF];
	size_t clen = 0, len;
	uint64_t t;
	int n = MIG_MAX_REGIONS, ret = -1;

	if (tx->ops->ram_regions(tx->vm, tx->ram, &n, e) < 0) {
		err_prefix(e, "RAM regions");
		goto out;
	}
	tx->nram = n;
	compat = malloc(MIG_COMPAT_MAX);
	tx->batch = malloc(MIG_PAGES_MAX);
	if (!compat || !tx->batch) {
		err_set(e, "out of memory");
		goto out;
	}
	if (tx->ops->compat_info &&
	    tx->ops->compat_info(tx->vm, compat, MIG_COMPAT_MAX, &clen, e) < 0) {
		err_prefix(e, "compat_info");
		goto out;
	}
	/* Auto = offer LZ4. Measured in the nested lab (migrate/README.md):
	 * with it off, hot64 took 1.6x longer (7x the bytes: a dirtied page
	 * often changes a few words and compresses ~40x, and every byte saved
	 * is a byte less to tag, copy and write on both sides); idle was no
	 * faster either. LZ4 gives up early on incompressible pages (output
	 * capacity below the page size). Zero pages are always markers. */
	if (tx->p.compress < 0)
		tx->p.compress = 1;
	if (mig_hello_from_regions(&mine, tx->ram, n, MIG_FEAT_SYNC | (tx->p.compress ? MIG_FEAT_LZ4 : 0),
				   compat, clen, e) < 0)
		goto out;
	for (int i = 0; i < n; i++)
		tx->first_page[i + 1] = tx->first_page[i] + tx->ram[i].size / PAGECODEC_PAGE_SIZE;
	tx->npages = tx->first_page[n];
	if (bitmap_init(&tx->dirty, tx->npages, e) < 0 ||
	    pagecodec_enc_init(&tx->enc, 0, e) < 0)
		goto out;
	tx->have_enc = 1;
	tx->enc.lz4_accel = tx->p.lz4_accel > 0 ? tx->p.lz4_accel : MIG_LZ4_ACCEL_DEFAULT;
	/* Frames are bounded by the connection's timeout (no progress for
	 * io_timeout_ms: lib/fdio.c); SO_SNDTIMEO also bounds any other
	 * blocking send: a destination that stops reading must not hang us
	 * (ENOTSOCK: not a socket, nothing to bound). */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 && errno != ENOTSOCK) {
		err_errno(e, errno, "SO_SNDTIMEO");
		goto out;
	}
	t = mig_now_ns();
	if (frame_conn_open(&tx->c, fd, secret, AUTH_CLIENT, tx->p.io_timeout_ms, e) < 0) {
		err_prefix(e, "authentication");
		goto out;
	}
	tx->have_conn = 1;
	tx->s.t.auth = mig__us(t);
	t = mig_now_ns();
	tx->c.max_len = MIG_TX_RBUF;
	if ((len = mig_hello_encode(&mine, hb, sizeof(hb), e)) == (size_t)-1 ||
	    frame_send(&tx->c, MIG_F_HELLO, hb, (uint32_t)len, e) < 0)
		goto out;
	if (mig_tx_wait(tx, MIG_F_HELLO, "answering HELLO", 1, &len, e) < 0 ||
	    mig_hello_decode(tx->rbuf, len, &peer, e) < 0 ||
	    mig_hello_check_layout(&mine, &peer, "destination", e) < 0)
		goto out;
	tx->s.t.hello = mig__us(t);
	/* Features: what we offered AND what the destination accepts. */
	if (!(mine.features & peer.features & MIG_FEAT_LZ4))
		tx->enc.flags |= PAGECODEC_ENC_NO_LZ4;
	tx->peer_sync = !!(peer.features & MIG_FEAT_SYNC);
	ret = 0;
out:
	free(compat);
	return ret;
}

static int mig__set_throttle(struct mig_send_ctx *x, int pct, struct err *e)
{
	struct mig_tx *tx = &x->tx;

	if (tx->ops->set_throttle(tx->vm, pct, e) < 0)
		return err_prefix(e, "set_throttle(%d)", pct);
	tx->s.throttle_pct = pct;
	return 0;
}

/* Pre-copy rounds. Returns 0 when it is time to switch over. */
static int mig__precopy(struct mig_send_ctx *x, struct err *e)
{
	struct mig_tx *tx = &x->tx;
	uint64_t prev = tx->npages, t_start = mig_now_ns();
	int stuck = 0;

	tx->s.phase = MIG_PHASE_PRECOPY;
	snprintf(x->where, sizeof(x->where), "dirty_start");
	if (tx->ops->dirty_start(tx->vm, e) < 0)
		return -1;
	x->dirty_on = 1;
	/* ORDERING: tracking is armed and synced BEFORE round 0 reads any
	 * page, so a write landing after round 0 read a page is reported by
	 * the next sync. What this first sync reports is irrelevant (round 0
	 * sends everything), it only re-arms tracking. */
	if (mig__sync(tx, e) < 0)
		return err_prefix(e, "dirty_sync");
	bitmap_set_all(&tx->dirty);
	tx->s.t.dirty_start = mig__us(t_start);	/* t_start: before dirty_start */
	tx->s.setup_ms = (mig_now_ns() - tx->t0) / 1000000;

	for (uint32_t round = 0;; round++) {
		uint64_t t_r = mig_now_ns(), bytes0 = tx->s.bytes_sent, dt, n, pred;

		tx->s.round = round;
		snprintf(x->where, sizeof(x->where), "round %u", round);
		if (mig_tx_send_dirty(tx, e) < 0 || mig_tx_round_end(tx, 0, e) < 0)
			return -1;
		dt = mig_now_ns() - t_r;
		if (tx->s.bytes_sent - bytes0 >= MIG_BW_MIN_SAMPLE && dt > 0)
			x->bw = (double)(tx->s.bytes_sent - bytes0) * 1e9 / (double)dt;
		/* A round that fits the token bucket's burst runs faster than
		 * the cap; the switchover will not. */
		if (tx->p.bandwidth_mbs && x->bw > tx->p.bandwidth_mbs * 1e6)
			x->bw = tx->p.bandwidth_mbs * 1e6;
		/* Pages written while this round was sending; sending them
		 * is the next round. */
		if (mig__sync(tx, e) < 0)
			return err_prefix(e, "dirty_sync");
		n = bitmap_count(&tx->dirty);
		dt = mig_now_ns() - t_r;
		if (round < MIG_TIMED_ROUNDS)
			tx->s.t.round[tx->s.t.nrounds++] = dt / 1000;
		tx->s.dirty_rate = dt ? (uint64_t)((double)n * 1e9 / (double)dt) : 0;
		tx->s.bandwidth = (uint64_t)x->bw;
		tx->s.bytes_remaining = n * PAGECODEC_PAGE_SIZE;
		pred = (uint64_t)(((double)n * PAGECODEC_MAX_RECORD + (double)tx->p.state_size_est) *
				  1000.0 / x->bw);
		tx->s.expected_downtime_ms = pred;
		mig_tx_publish(tx);
		if (pred <= tx->p.downtime_ms)
			return 0;
		if (mig_tx_check_cancel(tx, e) < 0)
			return -1;
		if (round + 1 >= tx->p.max_rounds ||
		    (tx->p.max_time_ms && mig_now_ns() - t_start >= tx->p.max_time_ms * 1000000ull)) {
			if (pred <= (uint64_t)tx->p.downtime_ms * tx->p.force_factor) {
				tx->s.forced = 1;
				return 0;
			}
			x->not_converged = 1;
			return err_set(e, "did not converge after %u rounds (expected downtime %llu ms > %u x %u ms target)",
				       round + 1, (unsigned long long)pred, tx->p.force_factor,
				       tx->p.downtime_ms);
		}
		/* Stuck = shrank by less than 5% since the previous round. */
		stuck = n * 20 >= prev * 19 ? stuck + 1 : 0;
		prev = n;
		if (stuck >= 2 && tx->p.auto_converge && tx->ops->set_throttle) {
			int pct = tx->s.throttle_pct ? tx->s.throttle_pct + 10 : 20;

			if (pct > 99)
				pct = 99;
			if (pct != tx->s.throttle_pct && mig__set_throttle(x, pct, e) < 0)
				return -1;
		}
	}
}

/* Wait (at most MIG_DRAIN_MAX_MS) until the kernel has handed every byte
 * sent so far to the destination (SIOCOUTQ = 0): what still sits in our
 * send buffer when the guest pauses is pre-copy data the destination must
 * process during the downtime. Not a socket (tests): nothing to wait for. */
static uint64_t mig__drain(struct mig_tx *tx)
{
	uint64_t t0 = mig_now_ns();
	struct timespec ts = { 0, 1000000L };
	int q;

	while (ioctl(tx->c.fd, SIOCOUTQ, &q) == 0 && q > 0 &&
	       mig_now_ns() - t0 < MIG_DRAIN_MAX_MS * 1000000ull &&
	       !(tx->cancel && __atomic_load_n(tx->cancel, __ATOMIC_RELAXED)))
		nanosleep(&ts, NULL);
	return mig__us(t0);
}

/* Still running, right before pause: the drain gave the guest tens to
 * hundreds of ms to dirty pages, which would otherwise all be sent paused.
 * Sync and send them now if they fit the downtime target (a hot guest
 * redirties them anyway: then they wait for the final round, as before),
 * and drain again, so the blackout sends only what was dirtied since.
 * No ROUND_END follows: these pages belong to the final round, whose
 * ROUND_END(FINAL) counts them (the destination sees one round). The final
 * sync after pause() reports every write made after this sync. */
static int mig__last_pass(struct mig_send_ctx *x, struct err *e)
{
	struct mig_tx *tx = &x->tx;
	uint64_t t0 = mig_now_ns(), n;

	if (mig__sync(tx, e) < 0)
		return err_prefix(e, "dirty_sync");
	n = bitmap_count(&tx->dirty);
	if (n && (double)n * PAGECODEC_MAX_RECORD * 1000.0 / x->bw <= tx->p.downtime_ms) {
		if (mig_tx_send_dirty(tx, e) < 0)
			return -1;
		tx->s.t.last_pass_pages = n;
		(void)mig__drain(tx);	/* counted in last_pass */
	}
	tx->s.t.last_pass = mig__us(t0);
	return 0;
}

/* Pause, last round, state, COMMIT, ACK_LOADED, GO, GO_ACK. Returns 0,
 * -1 (not yet committed: caller resumes) or -2 (AMBIGUOUS). */
static int mig__switchover(struct mig_send_ctx *x, struct err *e)
{
	struct mig_tx *tx = &x->tx;
	struct vmstate_writer w;
	const void *sbuf;
	size_t slen, len;
	uint64_t pages, state_len, t;
	int ret = -1;

	if (vmstate_writer_init(&w, 0, e) < 0)
		return -1;
	tx->s.phase = MIG_PHASE_SWITCHOVER;
	tx->s.round++;
	snprintf(x->where, sizeof(x->where), "switchover");
	mig_tx_publish(tx);
	/* Still running: let the pre-copy backlog reach the destination. */
	tx->s.t.drain = mig__drain(tx);
	if (mig__last_pass(x, e) < 0)
		goto out;
	/* Still running: wait until the destination has applied everything
	 * sent so far. The drains only emptied our send queue; what sits in
	 * the destination's receive buffer and read-ahead would otherwise be
	 * decoded during the downtime. Pages dirtied meanwhile go to the
	 * final round. Older destinations (no MIG_FEAT_SYNC): skipped. */
	if (tx->peer_sync) {
		t = mig_now_ns();
		if (mig_tx_sync(tx, e) < 0)
			goto out;
		tx->s.t.sync = mig__us(t);
	}
	x->t_pause = t = mig_now_ns();
	x->paused = 1;	/* set first: a half-done pause is undone by resume */
	if (tx->ops->pause(tx->vm, e) < 0) {
		err_prefix(e, "pause");
		goto out;
	}
	tx->s.t.pause = mig__us(t);
	t = mig_now_ns();
	/* ORDERING: the final sync comes after pause() returned - vCPUs out
	 * of KVM_RUN, device I/O quiesced - so nothing can dirty a page after
	 * it and this last round is complete. */
	if (mig__sync(tx, e) < 0) {
		err_prefix(e, "final dirty_sync");
		goto out;
	}
	tx->s.t.final_sync = mig__us(t);
	t = mig_now_ns();
	if (mig_tx_send_dirty(tx, e) < 0 || mig_tx_round_end(tx, MIG_RE_FINAL, e) < 0)
		goto out;
	tx->s.t.final_send = mig__us(t);
	t = mig_now_ns();
	if (tx->ops->save_state(tx->vm, &w, e) < 0) {
		err_prefix(e, "save_state");
		goto out;
	}
	if (vmstate_writer_finish(&w, &sbuf, &slen, e) < 0)
		goto out;
	tx->s.t.save = mig__us(t);
	t = mig_now_ns();
	tx->s.state_bytes = slen;
	if (mig_tx_send_state(tx, sbuf, slen, e) < 0)
		goto out;
	tx->s.t.state_send = mig__us(t);
	t = mig_now_ns();
	if (mig_tx_wait(tx, MIG_F_ACK_LOADED, "acknowledging", 1, &len, e) < 0 ||
	    mig_ack_decode(tx->rbuf, len, &pages, &state_len, e) < 0)
		goto out;
	tx->s.t.ack_wait = mig__us(t);
	if (pages != tx->total_pages || state_len != slen) {
		err_set(e, "destination acknowledged %llu pages / %llu state bytes, sent %llu / %zu",
			(unsigned long long)pages, (unsigned long long)state_len,
			(unsigned long long)tx->total_pages, slen);
		goto out;
	}
	/* Last chance to cancel: without GO the destination never runs. */
	if (mig_tx_check_cancel(tx, e) < 0)
		goto out;
	/* POINT OF NO RETURN. From the first byte of GO on, the destination
	 * may run the guest, so we never resume on our own again. */
	x->go_sent = 1;
	ret = -2;
	t = mig_now_ns();
	if (frame_send(&tx->c, MIG_F_GO, NULL, 0, e) < 0) {
		err_prefix(e, "sending GO");
		goto out;
	}
	if (mig_tx_wait(tx, MIG_F_GO_ACK, "confirming GO", 0, &len, e) < 0)
		goto out;
	tx->s.t.go = mig__us(t);
	ret = 0;
out:
	vmstate_writer_free(&w);
	if (x->paused)
		tx->s.downtime_ms = (mig_now_ns() - x->t_pause) / 1000000;
	return ret;
}

/* Append to the message without losing it (err_prefix only prepends). */
static void mig__append(struct err *e, const char *what)
{
	size_t n = strnlen(e->msg, sizeof(e->msg) - 1), w = strlen(what);

	if (w > sizeof(e->msg) - 1 - n)
		w = sizeof(e->msg) - 1 - n;
	memcpy(e->msg + n, what, w);
	e->msg[n + w] = 0;
}

int mig_send(void *vm, const struct mig_vm_ops *ops, int fd,
	     const struct auth_secret *secret, const struct mig_params *p,
	     struct mig_stats *live, volatile int *cancel, struct err *e)
{
	struct mig_send_ctx *x = calloc(1, sizeof(*x));
	struct mig_tx *tx;
	struct err e2;
	int ret = MIG_RET_RESUMED, r;

	if (!x)
		return err_set(e, "migrate: out of memory");
	tx = &x->tx;
	tx->t0 = mig_now_ns();
	tx->vm = vm;
	tx->ops = ops;
	tx->live = live;
	tx->cancel = cancel;
	if (p)
		tx->p = *p;
	else
		mig_params_default(&tx->p);
	if (!tx->p.downtime_ms)
		tx->p.downtime_ms = 300;
	if (!tx->p.max_rounds)
		tx->p.max_rounds = 30;
	if (!tx->p.force_factor)
		tx->p.force_factor = 4;
	if (tx->p.io_timeout_ms <= 0)
		tx->p.io_timeout_ms = 30000;
	if (!tx->p.state_size_est)
		tx->p.state_size_est = 256 << 10;
	tx->rate = tx->p.bandwidth_mbs * 1e6 / 1e9;	/* bytes per ns */
	tx->tb_last = tx->t0;
	x->bw = tx->p.bandwidth_mbs ? tx->p.bandwidth_mbs * 1e6 : MIG_BW_DEFAULT;
	snprintf(x->where, sizeof(x->where), "setup");
	tx->s.phase = MIG_PHASE_SETUP;
	mig_tx_publish(tx);

	r = mig__setup(x, fd, secret, e);
	if (r == 0)
		r = mig__precopy(x, e);
	if (r == 0)
		r = mig__switchover(x, e);

	if (r == 0) {
		ret = MIG_RET_OK;
		tx->s.outcome = MIG_OUTCOME_SUCCESS;
	} else if (x->go_sent) {
		/* Neither side may resume on its own; see send.h. */
		ret = MIG_RET_AMBIGUOUS;
		tx->s.outcome = MIG_OUTCOME_AMBIGUOUS;
		mig__append(e, " (outcome AMBIGUOUS: destination may be running; source stays paused)");
		err_prefix(e, "%s", x->where);
	} else {
		if (tx->have_conn)
			mig_send_error(&tx->c, e->msg);	/* tell the destination why */
		tx->s.outcome = tx->cancelled ? MIG_OUTCOME_CANCELLED :
				x->not_converged ? MIG_OUTCOME_NOT_CONVERGED : MIG_OUTCOME_FAILED;
	}
	/* Undo throttling and tracking on every path (harmless when paused). */
	if (tx->s.throttle_pct && mig__set_throttle(x, 0, &e2) < 0 && ret == MIG_RET_RESUMED)
		mig__append(e, "; unthrottle failed");
	if (x->dirty_on)
		(void)ops->dirty_stop(vm, &e2);
	if (ret == MIG_RET_RESUMED) {
		if (x->paused && ops->resume(vm, &e2) < 0) {
			mig__append(e, " (resume on source FAILED: ");
			mig__append(e, e2.msg);
			mig__append(e, ")");
		} else {
			mig__append(e, x->paused ? " (VM resumed on source)"
					       : " (VM keeps running on source)");
		}
		err_prefix(e, "%s", x->where);
	}
	tx->s.phase = MIG_PHASE_DONE;
	if (tx->have_conn) {
		tx->s.t.write = tx->c.write_ns / 1000;
		tx->s.t.tag = (tx->c.tag_ns + tx->c.recv_tag_ns) / 1000;
	}
	mig_tx_publish(tx);
	if (ret != MIG_RET_OK)
		err_prefix(e, "migrate");
	if (tx->have_conn)
		frame_conn_close(&tx->c);
	if (tx->have_enc)
		pagecodec_enc_fini(&tx->enc);
	bitmap_free(&tx->dirty);
	free(tx->batch);
	free(x);
	return ret;
}
