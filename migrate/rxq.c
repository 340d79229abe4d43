/* Destination receive pipeline, see migrate/rxq.h. */
#include "migrate/rxq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/cpuacct.h"
#include "migrate/proto.h"

/* 1 if frames may still follow this one within pre-copy (the reader goes
 * on), 0 if it ends pre-copy or is not a pre-copy frame (the reader hands
 * it over and stops; the state machine judges it). */
static int mig_rxq__precopy(uint16_t type, const uint8_t *p, size_t len)
{
	struct mig_round_end re;
	struct err e;

	if (type == MIG_F_PAGES || type == MIG_F_SYNC)
		return 1;
	if (type != MIG_F_ROUND_END || mig_round_end_decode(p, len, &re, &e) < 0)
		return 0;
	return !(re.flags & MIG_RE_FINAL);
}

static void *mig_rxq__reader(void *arg)
{
	struct mig_rxq *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		unsigned k;
		uint16_t type;
		size_t len;
		int r;

		if (!q->stop && q->tail - q->head >= MIG_RXQ_SLOTS) {
			uint64_t t = mig_now_ns();

			while (!q->stop && q->tail - q->head >= MIG_RXQ_SLOTS)
				pthread_cond_wait(&q->cv, &q->mu);
			q->full_wait_ns += mig_now_ns() - t;
		}
		if (q->stop)
			break;
		/* slot[tail] is ours: the caller only touches head..tail-1. */
		k = q->tail % MIG_RXQ_SLOTS;
		pthread_mutex_unlock(&q->mu);
		r = frame_recv(q->c, &type, q->slot[k].buf, q->cap, &len, &q->rerr);
		pthread_mutex_lock(&q->mu);
		if (r < 0) {
			q->failed = 1;
			break;
		}
		q->slot[k].type = type;
		q->slot[k].len = len;
		q->tail++;
		pthread_cond_broadcast(&q->cv);
		if (!mig_rxq__precopy(type, q->slot[k].buf, len))
			break;
	}
	q->done = 1;
	q->reader_cpu_ns = cpuacct_thread_ns();
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int mig_rxq_start(struct mig_rxq *q, struct frame_conn *c, size_t cap, struct err *e)
{
	int r, i;

	memset(q, 0, sizeof(*q));
	q->c = c;
	q->cap = cap;
	for (i = 0; i < MIG_RXQ_SLOTS; i++) {
		q->slot[i].buf = malloc(cap);
		if (!q->slot[i].buf) {
			err_set(e, "out of memory");
			goto undo_bufs;
		}
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	r = pthread_create(&q->th, NULL, mig_rxq__reader, q);
	if (r) {
		err_errno(e, r, "receive thread");
		pthread_cond_destroy(&q->cv);
		pthread_mutex_destroy(&q->mu);
		goto undo_bufs;
	}
	q->running = 1;
	return 0;
undo_bufs:
	while (i-- > 0)
		free(q->slot[i].buf);
	memset(q, 0, sizeof(*q));
	return -1;
}

int mig_rxq_next(struct mig_rxq *q, uint16_t *type, uint8_t **buf, size_t *len,
		 struct err *e)
{
	unsigned k;

	pthread_mutex_lock(&q->mu);
	if (q->tail == q->head && !q->done) {
		uint64_t t = mig_now_ns();

		while (q->tail == q->head && !q->done)
			pthread_cond_wait(&q->cv, &q->mu);
		q->next_wait_ns += mig_now_ns() - t;
	}
	if (q->tail == q->head) {
		int failed = q->failed;

		if (failed)
			*e = q->rerr;
		pthread_mutex_unlock(&q->mu);
		return failed ? -1 : 0;
	}
	k = q->head % MIG_RXQ_SLOTS;
	*type = q->slot[k].type;
	*buf = q->slot[k].buf;
	*len = q->slot[k].len;
	q->held = 1;
	pthread_mutex_unlock(&q->mu);
	return 1;
}

void mig_rxq_release(struct mig_rxq *q)
{
	pthread_mutex_lock(&q->mu);
	if (q->held) {
		q->head++;
		q->held = 0;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
}

void mig_rxq_stop(struct mig_rxq *q)
{
	int done;

	if (!q->running)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	done = q->done;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	/* Blocked in a read: end it (the read returns EOF). Only the
	 * receive half: the caller may still tell the source why. */
	if (!done)
		(void)shutdown(q->c->fd, SHUT_RD);
	pthread_join(q->th, NULL);
	q->running = 0;
}

void mig_rxq_fini(struct mig_rxq *q)
{
	if (!q->slot[0].buf)
		return;		/* never started */
	mig_rxq_stop(q);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	for (int i = 0; i < MIG_RXQ_SLOTS; i++)
		free(q->slot[i].buf);
	memset(q, 0, sizeof(*q));
}
