/* Sender internals shared by migrate/send.c (phases) and migrate/tx.c
 * (page batches, rate limiting, peer messages). Not a public API. */
#ifndef MIGRATE_TX_H
#define MIGRATE_TX_H

#include <stdint.h>

#include "lib/bitmap.h"
#include "lib/frame.h"
#include "lib/pagecodec.h"
#include "migrate/proto.h"
#include "migrate/send.h"

#define MIG_TX_RBUF	4096	/* destination frames are small */
#define MIG_TX_BATCH_PAGES 4096	/* pages per PAGES frame at most (16 MiB of RAM) */

/* One memfd extent known to be a hole or data (see mig_tx__hole). */
struct mig_hole_cache {
	int region;			/* -1: nothing cached */
	int is_hole;
	int64_t lo, hi;			/* memfd byte range [lo, hi) */
};

struct mig_tx {
	void *vm;
	const struct mig_vm_ops *ops;
	struct mig_params p;
	volatile int *cancel;
	struct mig_stats *live;
	struct mig_status s;		/* private copy, published to live */

	struct frame_conn c;
	int have_conn;
	struct mig_ram ram[MIG_MAX_REGIONS];
	uint64_t first_page[MIG_MAX_REGIONS + 1];
	int nram;
	uint64_t npages;

	struct bitmap dirty;		/* pages to send in the current round */
	struct pagecodec_enc enc;
	int have_enc;
	uint8_t *batch;			/* PAGES payload being built */
	size_t blen;
	uint32_t bpages;		/* page records in batch */
	struct mig_hole_cache hole;
	int no_holes;			/* memfd cannot SEEK_DATA: always read */
	uint8_t rbuf[MIG_TX_RBUF];

	/* token bucket (bandwidth cap) */
	double tokens, rate;		/* bytes, bytes per ns; rate 0 = none */
	uint64_t tb_last;

	uint64_t round_pages, round_bytes, total_pages;
	uint64_t round_left;		/* pages of this round not yet sent */
	int cancelled;
	int peer_sync;			/* the destination accepted MIG_FEAT_SYNC */
	uint64_t t0;			/* mig_send start */
};

/* Send every page set in tx->dirty (clearing the bits), in PAGES frames
 * <= MIG_PAGES_MAX, then nothing else. Checks cancel and the peer between
 * batches. */
int mig_tx_send_dirty(struct mig_tx *tx, struct err *e);
/* Send SYNC and wait (cancellable, io_timeout_ms) for SYNCED: every page
 * sent so far is applied on the destination. Checks its page count. */
int mig_tx_sync(struct mig_tx *tx, struct err *e);
/* Send ROUND_END for round tx->s.round and reset the round counters. */
int mig_tx_round_end(struct mig_tx *tx, uint32_t flags, struct err *e);
/* Send the device-state blob in STATE slices, then COMMIT. */
int mig_tx_send_state(struct mig_tx *tx, const uint8_t *buf, size_t len, struct err *e);

/* Wait for one frame of type want (timeout io_timeout_ms, polled in 50 ms
 * slices so cancel is seen when cancellable). An ERROR frame, EOF, another
 * type or a timeout fail with a message naming `what`. */
int mig_tx_wait(struct mig_tx *tx, uint16_t want, const char *what, int cancellable,
		size_t *len, struct err *e);
/* Fail (-1, "cancelled") if *cancel is set. */
int mig_tx_check_cancel(struct mig_tx *tx, struct err *e);
/* Publish tx->s to the live stats. */
void mig_tx_publish(struct mig_tx *tx);

#endif
