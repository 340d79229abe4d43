/* Length-prefixed protobuf messages on a stream socket (vmm control socket,
 * agentd <-> vmm, vmctl <-> agentd).
 *
 * Wire: u32 little-endian length | length bytes of packed protobuf.
 * length may be 0 (a message with every field at its default); lengths above
 * the limit (PMSG_MAX_SIZE unless lowered) are rejected from the header alone,
 * before anything is allocated. No authentication: these run on local Unix
 * sockets guarded by file mode (peer links use lib/frame.h instead).
 *
 * Two receive styles:
 *  - blocking: pmsg_recv*() on a blocking fd, for the vmm control thread,
 *    vmm ctl and tests;
 *  - incremental: struct pmsg_reader, fed whatever bytes a non-blocking read
 *    returned, for libev-based agentd. */
#ifndef PROTO_FRAME_H
#define PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "lib/err.h"
#include "proto/vmm.pb-c.h"

#define PMSG_HDR_SIZE	4
#define PMSG_MAX_SIZE	(4u << 20)	/* 4 MiB: far above any control message */

/* Pack msg and write header + body fully (short writes, EINTR, no SIGPIPE).
 * Fails without writing anything if the packed size exceeds PMSG_MAX_SIZE. */
int pmsg_send(int fd, const ProtobufCMessage *msg, struct err *err);

/* Pack msg with its header into a malloc'd buffer (for non-blocking senders
 * that queue output). Caller frees *buf. */
int pmsg_encode(const ProtobufCMessage *msg, uint8_t **buf, size_t *len, struct err *err);

/* Read one whole message of type desc from a blocking fd and unpack it.
 * Returns 0 with *out set (free with protobuf_c_message_free_unpacked(*out,
 * NULL)); -2 if the peer closed cleanly between messages (err "peer closed
 * connection"); -1 on any other error, e.g. "peer closed connection after 2
 * of 4 length bytes", "message length 5000000 exceeds limit 4194304",
 * "malformed request: protobuf-c unpack failed (12 bytes)". After -1 the
 * stream position is unknown: close the connection. */
int pmsg_recv(int fd, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
	      struct err *err);
/* Typed wrappers; free with vmm__request__free_unpacked(*out, NULL) etc. */
int pmsg_recv_request(int fd, Vmm__Request **out, struct err *err);
int pmsg_recv_response(int fd, Vmm__Response **out, struct err *err);

/* Incremental decoder. Usage with a non-blocking fd:
 *
 *	n = read(fd, buf, sizeof(buf));
 *	if (n == 0) { if (pmsg_reader_eof(&r, &err) < 0) log(err); close; }
 *	for (off = 0; off < n; off += k) {
 *		k = pmsg_reader_feed(&r, buf + off, n - off, &err);
 *		if (k < 0) -> error, close
 *		if (pmsg_reader_ready(&r)) {
 *			if (pmsg_reader_take(&r, &vmm__request__descriptor, &m, &err) < 0)
 *				-> malformed, close
 *			handle(m);
 *		}
 *	}
 *
 * feed consumes at most up to the end of one message, so a message is never
 * buffered behind another; memory held is at most one message. */
struct pmsg_reader {
	uint32_t max_size;		/* limit on the length field */
	uint8_t hdr[PMSG_HDR_SIZE];
	uint32_t hdr_got;		/* header bytes seen, 0..PMSG_HDR_SIZE */
	uint32_t len;			/* body length; valid once hdr_got == 4 */
	uint32_t got;			/* body bytes in buf */
	uint8_t *buf;			/* body, allocated once the header is valid */
	int broken;			/* a length error was reported: all later calls fail */
};

/* max_size 0 means PMSG_MAX_SIZE; larger values are clamped to it. */
void pmsg_reader_init(struct pmsg_reader *r, uint32_t max_size);
void pmsg_reader_free(struct pmsg_reader *r);
/* Consume bytes from data[0..n). Returns the count consumed (0 if a message
 * is ready and not yet taken), or -1 if the length field exceeds the limit or
 * memory runs out (the reader is then broken). */
ssize_t pmsg_reader_feed(struct pmsg_reader *r, const void *data, size_t n, struct err *err);
/* True when a complete message is waiting for pmsg_reader_take/_body. */
int pmsg_reader_ready(const struct pmsg_reader *r);
/* Unpack the waiting message and reset for the next. -1 (reader reset
 * anyway) on unpack failure; callers should treat that as fatal for the
 * connection since the peer speaks something else. */
int pmsg_reader_take(struct pmsg_reader *r, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **out, struct err *err);
/* The peer closed: 0 if that happened between messages, else -1 with e.g.
 * "peer closed connection after 10 of 300 message bytes". */
int pmsg_reader_eof(const struct pmsg_reader *r, struct err *err);

#endif
