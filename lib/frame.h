/* Authenticated framing for peer links (migration, Remus, agentd).
 *
 * Wire: header(16) | payload(length) | tag(16), header little-endian:
 *	u32 magic "KVMF" | u16 type | u16 flags | u32 length | u32 seq
 * tag = Poly1305 tag of ChaCha20-Poly1305(direction key, nonce = 0^32 | le64 seq,
 *       aad = header | payload, empty plaintext)   (lib/auth auth_tagger)
 * The tag binds the full 64-bit per-direction sequence number (the nonce),
 * the header carries its low 32 bits; a frame with any other seq is a replay, a reorder
 * or a drop and is rejected. Keys come from auth_handshake, one per
 * direction, so a frame cannot be reflected back to its sender. Type 0 is
 * invalid. After any receive error the connection is marked broken: the
 * stream position is unknown, so every later call fails.
 * Full duplex: one thread may send while another receives (each direction
 * has its own sequence, tagger and time counter; `broken` is atomic), but
 * never two senders or two receivers at once. */
#ifndef LIB_FRAME_H
#define LIB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "lib/auth.h"
#include "lib/err.h"

#define FRAME_MAGIC		0x464d564bu	/* "KVMF" on the wire */
#define FRAME_HDR_SIZE		16
#define FRAME_TAG_SIZE		16
#define FRAME_MAX_PAYLOAD	(64u << 20)	/* hard cap */
#define FRAME_DEFAULT_MAX	(16u << 20)

struct frame_conn {
	int fd;
	uint32_t max_len;	/* receive limit, <= FRAME_MAX_PAYLOAD */
	int timeout_ms;		/* per wait for the peer (receiving, or buffer space
				 * when sending); < 0 forever */
	uint64_t send_seq, recv_seq;
	struct auth_tagger send_tag, recv_tag;
	int broken;
	int eof;		/* peer closed cleanly at a frame boundary */
	uint64_t write_ns;	/* time spent in the socket writes of frame_send
				 * (blocked = the peer or the link is the bottleneck) */
	uint64_t tag_ns;	/* time spent computing tags of sent frames */
	uint64_t recv_tag_ns;	/* ... of received frames */
};

struct frame_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t length;
	uint32_t seq;
};

/* Authenticate on fd (auth_handshake) and set up the connection. Does not
 * take ownership of fd. */
int frame_conn_open(struct frame_conn *c, int fd, const struct auth_secret *s,
		    enum auth_role role, int timeout_ms, struct err *err);
/* Set up from existing session keys (tests, fuzzing, custom handshakes). */
int frame_conn_init(struct frame_conn *c, int fd, const struct auth_session *sess,
		    struct err *err);
void frame_conn_close(struct frame_conn *c);	/* frees tag state, not fd */

int frame_send(struct frame_conn *c, uint16_t type, const void *buf, uint32_t len,
	       struct err *err);
int frame_send_flags(struct frame_conn *c, uint16_t type, uint16_t flags,
		     const void *buf, uint32_t len, struct err *err);
/* Receive one frame into buf (capacity cap). On a clean close between frames
 * returns -1 with c->eof set and err "frame: peer closed connection". */
int frame_recv(struct frame_conn *c, uint16_t *type, void *buf, size_t cap,
	       size_t *len, struct err *err);

/* Pure header check (exposed for fuzzing): magic, type, length vs max_len
 * and cap, seq vs expected. */
int frame_parse_hdr(const uint8_t hdr[FRAME_HDR_SIZE], uint32_t max_len, size_t cap,
		    uint64_t want_seq, struct frame_hdr *h, struct err *err);

#endif
