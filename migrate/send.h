/* Migration source: pre-copy live migration of one VM over one connection.
 *
 *   setup      authenticate (lib/auth, source = client), exchange HELLO
 *              (the destination checks the RAM layout and compat blob)
 *   round 0    dirty_start, dirty_sync, then every page (zero pages as
 *              16-byte markers, others RAW or LZ4)
 *   round N    dirty_sync, send the pages dirtied during round N-1; measure
 *              bandwidth and dirty rate; predict the downtime as
 *              (dirty bytes + state estimate) / bandwidth
 *   switchover when the prediction <= downtime_ms: pause, final dirty_sync,
 *              last pages, device state, COMMIT; wait for ACK_LOADED; GO;
 *              wait for GO_ACK.
 *
 * Auto-converge: when the dirty set shrinks by less than 5% for 2 rounds in
 * a row, set_throttle(20), then +10 per further stuck round, up to 99.
 * Caps: after max_rounds rounds or max_time_ms, switch over anyway if the
 * predicted downtime is within force_factor x downtime_ms (stats.forced),
 * else abort with outcome NOT_CONVERGED and leave the VM running.
 *
 * OWNERSHIP (the core guarantee):
 *  - Until ACK_LOADED arrives the source owns the guest. Any failure before
 *    it (send/receive error, timeout, cancel, ERROR from the destination)
 *    resumes the VM if it was paused and returns MIG_RET_RESUMED.
 *  - After ACK_LOADED the source may still cancel (GO not yet sent: the
 *    destination never runs without GO).
 *  - Once the source starts sending GO it never resumes on its own. If GO
 *    cannot be sent or GO_ACK does not arrive, the outcome is AMBIGUOUS: the
 *    destination may or may not be running; the source stays paused and
 *    mig_send returns MIG_RET_AMBIGUOUS. An operator (or a fencing
 *    mechanism) must decide; resuming both would split-brain the guest.
 *  - GO_ACK received: SUCCESS; the source stays paused, to be destroyed.
 */
#ifndef MIGRATE_SEND_H
#define MIGRATE_SEND_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/auth.h"
#include "lib/err.h"
#include "migrate/vmif.h"

struct mig_params {
	uint32_t downtime_ms;		/* target; default 300 */
	uint32_t bandwidth_mbs;		/* cap in MB/s (10^6 bytes), 0 = none */
	uint32_t max_rounds;		/* pre-copy rounds before the cap; default 30 */
	uint32_t max_time_ms;		/* pre-copy time cap; 0 = none */
	uint32_t force_factor;		/* force switchover within factor x target; default 4 */
	int auto_converge;		/* throttle when stuck; default 1 */
	int compress;			/* LZ4 records: 1 on, 0 off, -1 auto (default):
				 * on (see mig__setup) */
	int lz4_accel;			/* LZ4 acceleration (1 = best ratio); default
					 * MIG_LZ4_ACCEL_DEFAULT, 0 = default */
	int io_timeout_ms;		/* every wait for the peer; default 30000 */
	uint64_t state_size_est;	/* device-state guess for prediction; default 256 KiB */
};

/* LZ4 compressing is the sender's main per-byte cost (~10x decoding). */
#define MIG_LZ4_ACCEL_DEFAULT 4

void mig_params_default(struct mig_params *p);

enum mig_phase {
	MIG_PHASE_SETUP,
	MIG_PHASE_PRECOPY,
	MIG_PHASE_SWITCHOVER,		/* source paused */
	MIG_PHASE_DONE,
};

enum mig_outcome {
	MIG_OUTCOME_NONE,		/* still running */
	MIG_OUTCOME_SUCCESS,		/* destination runs; source paused */
	MIG_OUTCOME_FAILED,		/* source running (resumed if it was paused) */
	MIG_OUTCOME_CANCELLED,		/* source running */
	MIG_OUTCOME_NOT_CONVERGED,	/* source running */
	MIG_OUTCOME_AMBIGUOUS,		/* source paused; destination unknown */
};

#define MIG_RET_OK		0
#define MIG_RET_RESUMED		-1	/* failed; the VM runs on the source */
#define MIG_RET_AMBIGUOUS	-2	/* failed after ACK_LOADED; source paused */

#define MIG_TIMED_ROUNDS 32	/* rounds whose duration is kept */

/* Where the time went, in microseconds (0 = phase not reached). Filled as
 * the migration goes; logged by the vmm on every outcome. */
struct mig_times {
	uint64_t auth, hello;		/* handshake; HELLO sent -> answered */
	uint64_t dirty_start;		/* dirty_start + the arming dirty_sync */
	uint64_t sync_total, sync_max;	/* every dirty_sync, incl. the final */
	uint64_t drain;			/* before pause: wait for our send queue to empty */
	uint64_t last_pass;		/* still running: sync + send what the drain let
					 * the guest dirty, + drain again */
	uint64_t last_pass_pages;	/* pages that pass sent (a count, not us) */
	uint64_t sync;			/* still running: SYNC -> SYNCED (the destination
					 * applied everything sent so far) */
	uint64_t pause;			/* pause() */
	uint64_t final_sync, final_send;	/* final dirty_sync; last pages + ROUND_END */
	uint64_t save, state_send;	/* save_state; STATE slices + COMMIT */
	uint64_t ack_wait;		/* COMMIT sent -> ACK_LOADED (destination load) */
	uint64_t go;			/* GO sent -> GO_ACK */
	uint64_t write, tag;		/* all frames: socket writes (blocked = the
					 * destination or link is the bottleneck), tags */
	uint32_t nrounds;		/* entries used in round[] */
	uint64_t round[MIG_TIMED_ROUNDS];	/* send + sync of round i */
};

struct mig_status {
	enum mig_phase phase;
	enum mig_outcome outcome;
	uint32_t round;			/* current/last round (0 = full pass) */
	int forced;			/* switchover forced by a cap */
	int throttle_pct;
	uint64_t bytes_sent;		/* frame payload bytes */
	uint64_t bytes_remaining;	/* dirty pages not yet sent x 4096 */
	uint64_t pages_sent, zero_pages, lz4_pages, raw_pages;
	uint64_t hole_pages;		/* zero pages sent unread (memfd holes) */
	uint64_t compressed_bytes;	/* wire bytes of the LZ4 records */
	uint64_t dirty_rate;		/* pages/s dirtied during the last round */
	uint64_t bandwidth;		/* bytes/s, last estimate */
	uint64_t expected_downtime_ms;
	uint64_t setup_ms, total_ms;
	uint64_t downtime_ms;		/* pause -> GO_ACK (or failure) */
	uint64_t state_bytes;
	struct mig_times t;
};

/* "auth 12 hello 3 ... go 1" (ms with one decimal) for logs; returns buf. */
const char *mig_times_format(const struct mig_times *t, char *buf, size_t cap);

/* Live stats: the sender publishes under lock after each batch. */
struct mig_stats {
	pthread_mutex_t lock;
	struct mig_status s;
};

void mig_stats_init(struct mig_stats *st);
void mig_stats_destroy(struct mig_stats *st);
void mig_stats_get(struct mig_stats *st, struct mig_status *out);

const char *mig_outcome_name(enum mig_outcome o);
const char *mig_phase_name(enum mig_phase p);

/* Migrate vm to the destination on connected fd (not closed; SO_SNDTIMEO
 * is set to io_timeout_ms on it). p NULL = defaults; live and cancel may be
 * NULL. *cancel != 0 aborts at the next check (each batch, each wait slice
 * of <= 50 ms) in every phase until GO is sent, leaving the VM running.
 * Returns MIG_RET_OK, MIG_RET_RESUMED or MIG_RET_AMBIGUOUS (see above);
 * errors read like "migrate: round 3: send: ... (VM keeps running on source)". */
int mig_send(void *vm, const struct mig_vm_ops *ops, int fd,
	     const struct auth_secret *secret, const struct mig_params *p,
	     struct mig_stats *live, volatile int *cancel, struct err *e);

#endif
