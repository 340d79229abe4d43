/* Destination receive pipeline (internal to migrate/recv.c): during
 * pre-copy a reader thread reads frames and checks their tags
 * (frame_recv) into a few buffers while the caller's thread decodes and
 * writes pages, so the two halves of the destination's per-byte work run
 * on two cores. Frames come out in stream order, errors at the position
 * they occurred, so the receiver behaves exactly as with frame_recv.
 *
 * The reader stops by itself after handing over the first frame that is
 * not PAGES or a non-final ROUND_END: from the final round's end on (state,
 * COMMIT, GO) the caller reads synchronously again (mig_rxq_next says so).
 * While the reader runs it owns the receive half of the frame_conn (the
 * caller may still send); mig_rxq_stop gives it back. */
#ifndef MIGRATE_RXQ_H
#define MIGRATE_RXQ_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/frame.h"

/* Frames read ahead of the one being applied (1 MiB each). With 2 the
 * reader waited for a free buffer 110-570 ms of an idle move in the lab
 * while the source sat blocked in write(); with 8, 0-240 ms (2026-12-05).
 * The read-ahead does not lengthen the downtime: SYNC (MIG_FEAT_SYNC)
 * makes the source wait until everything before it is applied before it
 * pauses the guest. */
#define MIG_RXQ_SLOTS 8

struct mig_rxq {
	struct frame_conn *c;
	size_t cap;			/* bytes per slot */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct {
		uint8_t *buf;
		size_t len;
		uint16_t type;
	} slot[MIG_RXQ_SLOTS];
	uint64_t head, tail;		/* consumed, filled; tail - head <= SLOTS */
	int running;			/* thread started and not joined */
	int done;			/* reader finished (handed over its last frame or failed) */
	int failed;			/* ... with rerr, after the frames before it */
	int stop;			/* caller asks the reader to quit */
	int held;			/* caller holds slot[head] (next/release) */
	struct err rerr;
	/* where the pipeline waits (diagnosis: which half is the bottleneck) */
	uint64_t next_wait_ns;		/* caller waited for a frame in mig_rxq_next */
	uint64_t full_wait_ns;		/* reader waited for a free slot */
	uint64_t reader_cpu_ns;		/* the reader thread's CPU time, set as it ends */
};

/* Start the reader on c (a stream socket: mig_rxq_stop unblocks it with
 * shutdown(SHUT_RD)). Returns 0, or -1 with e set (nothing to undo). */
int mig_rxq_start(struct mig_rxq *q, struct frame_conn *c, size_t cap, struct err *e);
/* Next frame in stream order: 1 = *type, *buf, *len set (valid until
 * mig_rxq_release), 0 = the reader has stopped after its last frame (read
 * the rest with frame_recv), -1 = the reader's receive error (e set, c->eof
 * as frame_recv left it). */
int mig_rxq_next(struct mig_rxq *q, uint16_t *type, uint8_t **buf, size_t *len,
		 struct err *e);
void mig_rxq_release(struct mig_rxq *q);
/* Make the reader quit and join it; idempotent. Afterwards the caller owns
 * the whole connection (c->broken reflects what the reader saw). */
void mig_rxq_stop(struct mig_rxq *q);
/* Stop, then free the buffers. */
void mig_rxq_fini(struct mig_rxq *q);

#endif
