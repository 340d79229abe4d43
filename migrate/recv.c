/* Migration destination: the I/O loop around the mig_rx state machine. */
#include "migrate/recv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/cpuacct.h"
#include "lib/frame.h"
#include "migrate/fault.h"
#include "migrate/rxq.h"

static uint64_t mig_recv__now_ms(void)
{
	return mig_now_ns() / 1000000;
}

/* Test-only faults (migrate/fault.h), checked after every handled frame.
 * Returns 0 to go on, -1 (err set) to fail the migration WITHOUT telling
 * the source: the fault stands for a dead peer or a lost link. */
static int mig_recv__fault(struct frame_conn *c, const struct mig_rx *rx, uint8_t *buf,
			   struct err *e)
{
	static int fired;
	struct timespec tick = { 0, 100 * 1000000L };
	uint16_t type;
	size_t len;

	if (fired)
		return 0;
	switch (mig_fault_get()) {
	case MIG_FAULT_STALL_SWITCHOVER:
		if (rx->state != MIG_RX_RECV_STATE)
			return 0;
		fired = 1;
		fprintf(stderr, "migrate: recv: fault stall-switchover: not reading any more "
			"(the source is paused in switchover)\n");
		for (int i = 0; i < MIG_FAULT_STALL_MS / 100; i++)
			nanosleep(&tick, NULL);
		return err_set(e, "fault stall-switchover: stalled %d s", MIG_FAULT_STALL_MS / 1000);
	case MIG_FAULT_LOSE_GO:
		if (rx->state != MIG_RX_LOADED)
			return 0;
		fired = 1;
		if (frame_recv(c, &type, buf, MIG_FRAME_MAX, &len, e) < 0)
			return err_prefix(e, "fault lose-go: waiting for GO");
		fprintf(stderr, "migrate: recv: fault lose-go: %s thrown away as lost on the link\n",
			mig_frame_name(type));
		return err_set(e, "fault lose-go: %s lost, closing without GO_ACK",
			       mig_frame_name(type));
	default:
		return 0;
	}
}

/* 1 if fd is a stream socket: the receive pipeline needs shutdown() to
 * stop a reader blocked in read(). */
static int mig_recv__is_stream(int fd)
{
	int type = 0;
	socklen_t l = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM;
}

/* The next frame: from the pipeline's reader while it runs (*queued = 1:
 * release it after handling), else read here into own. */
static int mig_recv__next(struct frame_conn *c, struct mig_rxq *q, uint8_t *own,
			  uint16_t *type, uint8_t **p, size_t *len, int *queued, struct err *e)
{
	*queued = 0;
	if (q->running) {
		int r = mig_rxq_next(q, type, p, len, e);

		if (r < 0)
			return -1;
		if (r > 0) {
			*queued = 1;
			return 0;
		}
		mig_rxq_stop(q);	/* pre-copy is over; the reader has quit */
	}
	*p = own;
	return frame_recv(c, type, own, MIG_FRAME_MAX, len, e);
}

int mig_recv(void *vm, const struct mig_vm_ops *ops, int fd,
	     const struct auth_secret *secret, int timeout_ms,
	     struct mig_recv_stats *st, struct err *e)
{
	struct frame_conn c;
	struct mig_rx rx;
	struct mig_rxq q;
	uint8_t *buf = NULL, reply[MIG_RX_REPLY_MAX];
	uint64_t t0 = mig_recv__now_ms(), t_final = 0, t_last_re = 0;
	int have_conn = 0, have_rx = 0, peer_error = 0, ret = -1, pipeline;
	uint64_t cpu0 = 0, cpu1 = 0;	/* applying thread's CPU (ns) at pre-copy start, end */

	memset(&q, 0, sizeof(q));
	pipeline = mig_recv__is_stream(fd);
	if (timeout_ms <= 0)
		timeout_ms = MIG_RECV_TIMEOUT_MS;
	if (st)
		memset(st, 0, sizeof(*st));
	if (frame_conn_open(&c, fd, secret, AUTH_SERVER, timeout_ms, e) < 0) {
		err_prefix(e, "authentication");
		goto out;
	}
	have_conn = 1;
	c.max_len = MIG_FRAME_MAX;
	if (mig_rx_init(&rx, vm, ops, st, e) < 0) {
		mig_send_error(&c, e->msg);
		goto out;
	}
	have_rx = 1;
	buf = malloc(MIG_FRAME_MAX);
	if (!buf) {
		err_set(e, "out of memory");
		mig_send_error(&c, "destination out of memory");
		goto out;
	}
	for (;;) {
		uint16_t type, rtype;
		size_t len, rlen;
		uint8_t *p;
		int queued;

		/* Pre-copy: a reader thread reads and checks frames while
		 * this one decodes and writes pages (migrate/rxq.h). Without
		 * it (not a stream socket, no thread) we read here. */
		if (pipeline && rx.state == MIG_RX_RECV_PAGES) {
			pipeline = 0;
			cpu0 = cpuacct_thread_ns();
			if (mig_rxq_start(&q, &c, MIG_FRAME_MAX, e) < 0)
				fprintf(stderr, "migrate: recv: %s: reading in one thread\n", e->msg);
		}
		if (mig_recv__next(&c, &q, buf, &type, &p, &len, &queued, e) < 0) {
			mig_rxq_stop(&q);
			if (c.eof)
				err_set(e, "source closed connection");
			err_prefix(e, "%s", mig_rx_state_name(rx.state));
			rx.state = MIG_RX_FAILED;
			/* A receive error breaks only the inbound stream; our
			 * outbound frames are intact, so say why if we can. */
			c.broken = 0;
			mig_send_error(&c, e->msg);
			goto out;
		}
		if (mig_rx_frame(&rx, type, p, len, &rtype, reply, &rlen, e) < 0) {
			peer_error = type == MIG_F_ERROR;
			/* The reader owns the receive half: stop it first.
			 * Whatever it saw, our outbound stream is intact. */
			mig_rxq_stop(&q);
			c.broken = 0;
			/* Tell the source why (it resumes the guest on its side). */
			if (!peer_error)
				mig_send_error(&c, e->msg);
			goto out;
		}
		if (queued)
			mig_rxq_release(&q);
		if (cpu0 > 0 && cpu1 == 0 && rx.state != MIG_RX_RECV_PAGES)
			cpu1 = cpuacct_thread_ns();	/* pre-copy applied */
		if (type == MIG_F_ROUND_END) {
			/* The final round starts right after the previous
			 * ROUND_END; blackout is measured from there. */
			if (rx.state == MIG_RX_RECV_STATE && !t_final)
				t_final = t_last_re ? t_last_re : t0;
			t_last_re = mig_recv__now_ms();
		}
		if (rtype && frame_send(&c, rtype, reply, (uint32_t)rlen, e) < 0) {
			/* A failed GO_ACK does not undo GO: the source committed
			 * to not running the guest when it sent GO, so we own it
			 * now; the source will report AMBIGUOUS. */
			if (rx.state == MIG_RX_RUNNING)
				break;
			err_prefix(e, "sending %s", mig_frame_name(rtype));
			rx.state = MIG_RX_FAILED;
			goto out;
		}
		if (rx.state == MIG_RX_RUNNING)
			break;
		if (mig_recv__fault(&c, &rx, buf, e) < 0) {
			err_prefix(e, "%s", mig_rx_state_name(rx.state));
			rx.state = MIG_RX_FAILED;
			goto out;
		}
	}
	ret = 0;
out:
	if (st) {
		st->state = ret == 0 ? MIG_RX_RUNNING : MIG_RX_FAILED;
		st->total_ms = mig_recv__now_ms() - t0;
		st->blackout_ms = ret == 0 && t_final ? mig_recv__now_ms() - t_final : 0;
	}
	mig_rxq_stop(&q);	/* joined: its counters are final */
	if (st) {
		st->wait_frames_ms = q.next_wait_ns / 1e6;
		st->wait_slot_ms = q.full_wait_ns / 1e6;
		st->tag_ms = c.recv_tag_ns / 1e6;
		st->reader_cpu_ms = q.reader_cpu_ns / 1e6;
		st->apply_cpu_ms = cpu1 > cpu0 ? (cpu1 - cpu0) / 1e6 : 0;
	}
	mig_rxq_fini(&q);
	if (have_rx)
		mig_rx_fini(&rx);
	if (have_conn)
		frame_conn_close(&c);
	free(buf);
	if (ret < 0)
		err_prefix(e, "migrate: recv");
	return ret;
}
