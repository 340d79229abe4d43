/* Migration wire protocol, carried in lib/frame.h authenticated frames.
 *
 * The source connects (AUTH_CLIENT), the destination accepts (AUTH_SERVER);
 * both prove knowledge of the cluster secret before any byte of guest data
 * moves, and every frame after that carries an HMAC tag and a sequence
 * number (lib/frame.h), so corruption, truncation, replay and reordering
 * are all detected. The wire version (MIG_WIRE_VERSION) is separate from the
 * device-state version, which lives inside the vmstate blob.
 *
 * Frame types (u16 frame type; payloads little-endian; type 0 invalid):
 *   1 HELLO      both ways, once. u32 wire_version | u32 features |
 *                u32 nregions | nregions x (u64 gpa | u64 size) |
 *                u32 compat_len | compat (CPU/device blob, opaque here).
 *                Source -> destination first; the destination answers with
 *                its own HELLO (features = what it accepts) or ERROR.
 *   2 PAGES      src->dst. A batch of lib/pagecodec records, payload
 *                <= MIG_PAGES_MAX. gfn = RAM page index (migrate/vmif.h).
 *   3 ROUND_END  src->dst. u32 round | u32 flags (1 = FINAL, sent after
 *                pause) | u64 pages | u64 bytes (records / PAGES payload
 *                bytes of this round; the destination checks them) |
 *                u64 dirty_pages_left | u64 dirty_rate | u64 bandwidth.
 *   4 STATE      src->dst, after the FINAL round. u64 total_len |
 *                u64 offset | bytes: a slice of the vmstate blob, in order.
 *   5 COMMIT     src->dst. u64 state_len | u32 state_crc32c | u32 rounds |
 *                u64 total_pages. The source is paused and sent everything.
 *   6 ACK_LOADED dst->src. u64 pages_received | u64 state_len. Everything
 *                decoded and load_state() succeeded; the destination is
 *                ready to run but does NOT run yet.
 *   7 GO         src->dst, empty. Ownership hand-off: after sending it the
 *                source never resumes on its own.
 *   8 GO_ACK     dst->src, empty. The destination took ownership.
 *   9 ERROR      either way. Text (<= MIG_ERROR_MAX bytes) naming why the
 *                sender of the frame gives up; the link is then closed.
 *  10 SYNC       src->dst, empty, pre-copy only, if the destination's HELLO
 *                accepted MIG_FEAT_SYNC. Asks to be told when every frame
 *                before it has been applied.
 *  11 SYNCED     dst->src. u64 pages applied so far: the answer to SYNC,
 *                sent once the frames before SYNC are in guest memory. The
 *                source waits for it (guest still running) right before it
 *                pauses, so the downtime does not include the destination's
 *                pre-copy backlog (its receive buffer and read-ahead).
 *
 * Destination (receiver) state machine, see migrate/recv.h:
 *
 *   WAIT_HELLO --HELLO ok / reply HELLO--> RECV_PAGES <--+
 *                                             |  PAGES,    |
 *                                             |  ROUND_END,|
 *                                             |  SYNC / reply SYNCED
 *                                             | ROUND_END(FINAL)
 *                                             v
 *                                         RECV_STATE <--STATE (in order)
 *                                             | COMMIT (len + crc ok,
 *                                             |  load_state ok)
 *                                             v
 *                                   LOADED (sent ACK_LOADED)
 *                                             | GO / reply GO_ACK
 *                                             v
 *                                          RUNNING (mig_recv returns 0)
 *
 *   any state --malformed frame, unexpected type, ERROR, EOF, timeout-->
 *   FAILED: the destination discards the VM and never runs the guest.
 */
#ifndef MIGRATE_PROTO_H
#define MIGRATE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/frame.h"
#include "migrate/vmif.h"

#define MIG_WIRE_VERSION	1

enum mig_frame_type {
	MIG_F_INVALID	= 0,
	MIG_F_HELLO	= 1,
	MIG_F_PAGES	= 2,
	MIG_F_ROUND_END	= 3,
	MIG_F_STATE	= 4,
	MIG_F_COMMIT	= 5,
	MIG_F_ACK_LOADED = 6,
	MIG_F_GO	= 7,
	MIG_F_GO_ACK	= 8,
	MIG_F_ERROR	= 9,
	MIG_F_SYNC	= 10,
	MIG_F_SYNCED	= 11,
};

/* features */
#define MIG_FEAT_LZ4		0x1	/* LZ4 page records */
#define MIG_FEAT_SYNC		0x2	/* SYNC / SYNCED */
#define MIG_FEAT_ALL		(MIG_FEAT_LZ4 | MIG_FEAT_SYNC)

#define MIG_PAGES_MAX		(1u << 20)	/* PAGES payload cap */
#define MIG_STATE_CHUNK		(1u << 20)	/* STATE slice size */
#define MIG_STATE_HDR		16
#define MIG_STATE_MAX		(256u << 20)	/* whole device-state blob */
#define MIG_FRAME_MAX		(MIG_PAGES_MAX + 64)	/* receive limit */
#define MIG_ERROR_MAX		480
#define MIG_COMPAT_MAX		4096

#define MIG_RE_FINAL		0x1

struct mig_hello {
	uint32_t version;
	uint32_t features;
	uint32_t nregions;
	struct {
		uint64_t gpa, size;
	} region[MIG_MAX_REGIONS];
	uint32_t compat_len;
	const uint8_t *compat;	/* points into the parsed payload */
};

struct mig_round_end {
	uint32_t round;
	uint32_t flags;
	uint64_t pages, bytes;
	uint64_t dirty_left, dirty_rate, bandwidth;
};

struct mig_commit {
	uint64_t state_len;
	uint32_t state_crc;
	uint32_t rounds;
	uint64_t total_pages;
};

const char *mig_frame_name(uint16_t type);
/* CLOCK_MONOTONIC in ns: phase times on both ends. */
uint64_t mig_now_ns(void);

/* Encoders write into buf (cap bytes) and return the payload length, or -1
 * with err set if it does not fit. */
int mig_hello_encode(const struct mig_hello *h, uint8_t *buf, size_t cap, struct err *e);
int mig_round_end_encode(const struct mig_round_end *r, uint8_t *buf, size_t cap);
int mig_commit_encode(const struct mig_commit *c, uint8_t *buf, size_t cap);
void mig_state_hdr_encode(uint8_t hdr[MIG_STATE_HDR], uint64_t total, uint64_t off);

/* Decoders validate lengths and ranges and fail with a message naming the
 * frame. */
int mig_hello_decode(const uint8_t *p, size_t len, struct mig_hello *h, struct err *e);
int mig_round_end_decode(const uint8_t *p, size_t len, struct mig_round_end *r,
			 struct err *e);
int mig_commit_decode(const uint8_t *p, size_t len, struct mig_commit *c, struct err *e);
int mig_state_hdr_decode(const uint8_t *p, size_t len, uint64_t *total, uint64_t *off,
			 struct err *e);
int mig_ack_decode(const uint8_t *p, size_t len, uint64_t *pages, uint64_t *state_len,
		   struct err *e);
void mig_ack_encode(uint8_t buf[16], uint64_t pages, uint64_t state_len);
void mig_synced_encode(uint8_t buf[8], uint64_t pages);
int mig_synced_decode(const uint8_t *p, size_t len, uint64_t *pages, struct err *e);

/* Fill a hello from the VM's regions; compat may be NULL. */
int mig_hello_from_regions(struct mig_hello *h, const struct mig_ram *r, int n,
			   uint32_t features, const uint8_t *compat, size_t compat_len,
			   struct err *e);
/* 0 if the peer's RAM layout equals ours, else -1 with a message like
 * "RAM layout mismatch: region 0 is 64 MiB at 0x0 here, 32 MiB at 0x0 on source". */
int mig_hello_check_layout(const struct mig_hello *mine, const struct mig_hello *peer,
			   const char *peer_name, struct err *e);

/* Copy an ERROR payload into out (NUL-terminated), replacing non-printable
 * bytes, so hostile text cannot inject control characters into logs. */
void mig_error_text(const uint8_t *p, size_t len, char *out, size_t cap);
/* Best effort: send ERROR(msg) on c; failures are ignored (we are already
 * failing and the link may be the reason). */
void mig_send_error(struct frame_conn *c, const char *msg);

#endif
