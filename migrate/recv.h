/* Migration destination.
 *
 * mig_recv() authenticates the source, then drives the receiver state
 * machine (migrate/proto.h has the drawing) frame by frame until GO:
 * pages are decoded straight into the VM's RAM (every gfn bounds-checked by
 * lib/pagecodec against the region sizes announced in our own HELLO), the
 * device state is reassembled, checksummed and loaded, ACK_LOADED is sent and
 * the destination waits for GO. It returns 0 ONLY after GO arrived: the
 * caller must then resume() the guest and announce() it. Any other return
 * means the destination must discard the VM and never run it; the source
 * still owns the guest (or, if the link died after ACK_LOADED, the outcome
 * is ambiguous and an operator decides, see migrate/README.md).
 *
 * Every read is bounded by the timeout (default MIG_RECV_TIMEOUT_MS), so a
 * stalled or vanished source never hangs the destination.
 *
 * The state machine itself (struct mig_rx) does no I/O: it consumes one
 * authenticated frame at a time and says what to answer, so tests and the
 * fuzzer drive it from a buffer. */
#ifndef MIGRATE_RECV_H
#define MIGRATE_RECV_H

#include <stddef.h>
#include <stdint.h>

#include "lib/auth.h"
#include "lib/err.h"
#include "lib/pagecodec.h"
#include "migrate/proto.h"
#include "migrate/vmif.h"

#define MIG_RECV_TIMEOUT_MS	30000
#define MIG_RX_REPLY_MAX	256

enum mig_rx_state {
	MIG_RX_WAIT_HELLO,
	MIG_RX_RECV_PAGES,
	MIG_RX_RECV_STATE,
	MIG_RX_LOADED,		/* ACK_LOADED sent, waiting for GO */
	MIG_RX_RUNNING,		/* GO received: the caller resumes the guest */
	MIG_RX_FAILED,
};

struct mig_recv_stats {
	enum mig_rx_state state;
	uint32_t rounds;		/* ROUND_END frames seen */
	uint64_t pages;			/* page records decoded */
	uint64_t zero_pages, raw_pages, lz4_pages;
	uint64_t bytes;			/* frame payload bytes received */
	uint64_t state_bytes;
	uint64_t total_ms;		/* auth to GO (or failure) */
	uint64_t blackout_ms;		/* FINAL round start to GO */
	/* pre-copy pipeline (ms): the applying thread waited for frames,
	 * the reader waited for a free buffer, the reader checked tags */
	double wait_frames_ms, wait_slot_ms, tag_ms;
	double reader_cpu_ms, apply_cpu_ms;	/* CPU of the reader and of the applying thread during pre-copy */
};

struct mig_rx {
	enum mig_rx_state state;
	void *vm;
	const struct mig_vm_ops *ops;
	struct mig_ram ram[MIG_MAX_REGIONS];
	uint64_t first_page[MIG_MAX_REGIONS + 1];	/* cumulative page index */
	int nram;
	uint64_t npages;
	struct mig_hello mine;
	struct pagecodec_dec *dec;
	uint32_t round;			/* round expected next */
	uint64_t round_pages, round_bytes, total_pages;
	uint8_t *sbuf;			/* reassembled device state */
	uint64_t state_len, state_got;
	struct mig_recv_stats *st;	/* never NULL (points at own if needed) */
	struct mig_recv_stats own;
};

/* Query the VM's RAM layout; vm/ops outlive rx. st may be NULL. */
int mig_rx_init(struct mig_rx *rx, void *vm, const struct mig_vm_ops *ops,
		struct mig_recv_stats *st, struct err *e);
void mig_rx_fini(struct mig_rx *rx);

/* Consume one frame. On success *reply_type is the frame to answer with
 * (0 = none) and reply[0..*reply_len) its payload (reply has room for
 * MIG_RX_REPLY_MAX bytes). On error the state becomes FAILED (sticky) and
 * err names the state and the reason. */
int mig_rx_frame(struct mig_rx *rx, uint16_t type, const uint8_t *p, size_t len,
		 uint16_t *reply_type, uint8_t *reply, size_t *reply_len, struct err *e);

const char *mig_rx_state_name(enum mig_rx_state s);

/* Receive a migration on connected fd (not closed here). timeout_ms <= 0
 * means MIG_RECV_TIMEOUT_MS. st may be NULL. Returns 0 = GO received, now
 * resume the guest; -1 = discard the VM. */
int mig_recv(void *vm, const struct mig_vm_ops *ops, int fd,
	     const struct auth_secret *secret, int timeout_ms,
	     struct mig_recv_stats *st, struct err *e);

#endif
