#include "lib/frame.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <openssl/crypto.h>

#include "lib/fdio.h"
#include "lib/le.h"

static uint64_t frame__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int frame_conn_init(struct frame_conn *c, int fd, const struct auth_session *sess,
		    struct err *err)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->max_len = FRAME_DEFAULT_MAX;
	c->timeout_ms = -1;
	if (auth_tagger_init(&c->send_tag, sess->send_key, err) < 0)
		return -1;
	if (auth_tagger_init(&c->recv_tag, sess->recv_key, err) < 0) {
		auth_tagger_free(&c->send_tag);
		return -1;
	}
	return 0;
}

int frame_conn_open(struct frame_conn *c, int fd, const struct auth_secret *s,
		    enum auth_role role, int timeout_ms, struct err *err)
{
	struct auth_session sess;
	int ret;

	memset(c, 0, sizeof(*c));
	if (auth_handshake(fd, s, role, timeout_ms, &sess, err) < 0)
		return -1;
	ret = frame_conn_init(c, fd, &sess, err);
	auth_session_wipe(&sess);
	if (ret == 0)
		c->timeout_ms = timeout_ms;
	return ret;
}

void frame_conn_close(struct frame_conn *c)
{
	auth_tagger_free(&c->send_tag);
	auth_tagger_free(&c->recv_tag);
	c->broken = 1;
}

/* The full 64-bit seq is the nonce: never reused under one key (seq only
 * counts up), and a frame replayed or moved to another position fails. */
static int frame__tag(struct auth_tagger *t, uint64_t seq, const uint8_t *hdr,
		      const void *payload, uint32_t len, uint8_t tag[FRAME_TAG_SIZE],
		      struct err *err)
{
	struct iovec iov[2] = {
		{ (void *)hdr, FRAME_HDR_SIZE },
		{ (void *)payload, len },
	};

	return auth_tagger_compute(t, seq, iov, 2, tag, err);
}

int frame_send_flags(struct frame_conn *c, uint16_t type, uint16_t flags,
		     const void *buf, uint32_t len, struct err *err)
{
	uint8_t hdr[FRAME_HDR_SIZE], tag[FRAME_TAG_SIZE];
	struct iovec iov[3];
	uint64_t t0, t1;
	int r;

	if (__atomic_load_n(&c->broken, __ATOMIC_RELAXED))
		return err_set(err, "frame: connection is broken after an earlier error");
	if (type == 0)
		return err_set(err, "frame: type 0 is invalid");
	if (len > FRAME_MAX_PAYLOAD)
		return err_set(err, "frame: payload of %u bytes exceeds the %u byte limit",
			       len, FRAME_MAX_PAYLOAD);
	le_put32(hdr, FRAME_MAGIC);
	le_put16(hdr + 4, type);
	le_put16(hdr + 6, flags);
	le_put32(hdr + 8, len);
	le_put32(hdr + 12, (uint32_t)c->send_seq);
	t0 = frame__now();
	if (frame__tag(&c->send_tag, c->send_seq, hdr, buf, len, tag, err) < 0)
		return -1;
	t1 = frame__now();
	c->tag_ns += t1 - t0;
	iov[0] = (struct iovec){ hdr, FRAME_HDR_SIZE };
	iov[1] = (struct iovec){ (void *)buf, len };
	iov[2] = (struct iovec){ tag, FRAME_TAG_SIZE };
	r = fdio_writev_timeout(c->fd, iov, 3, c->timeout_ms, err);
	c->write_ns += frame__now() - t1;
	if (r < 0) {
		int saved = errno;	/* callers tell a timeout (ETIMEDOUT) apart */

		/* A partial frame may be on the wire; the stream is unusable. */
		__atomic_store_n(&c->broken, 1, __ATOMIC_RELAXED);
		err_prefix(err, "frame: send");
		errno = saved;
		return -1;
	}
	c->send_seq++;
	return 0;
}

int frame_send(struct frame_conn *c, uint16_t type, const void *buf, uint32_t len,
	       struct err *err)
{
	return frame_send_flags(c, type, 0, buf, len, err);
}

int frame_parse_hdr(const uint8_t hdr[FRAME_HDR_SIZE], uint32_t max_len, size_t cap,
		    uint64_t want_seq, struct frame_hdr *h, struct err *err)
{
	uint32_t magic = le_get32(hdr);

	h->type = le_get16(hdr + 4);
	h->flags = le_get16(hdr + 6);
	h->length = le_get32(hdr + 8);
	h->seq = le_get32(hdr + 12);
	if (magic != FRAME_MAGIC)
		return err_set(err, "frame: bad magic 0x%08x (not a frame stream or out of sync)", magic);
	if (h->type == 0)
		return err_set(err, "frame: type 0 is invalid");
	if (h->length > max_len || h->length > FRAME_MAX_PAYLOAD)
		return err_set(err, "frame: length %u exceeds the %u byte limit",
			       h->length, max_len < FRAME_MAX_PAYLOAD ? max_len : FRAME_MAX_PAYLOAD);
	if (h->length > cap)
		return err_set(err, "frame: type %u frame of %u bytes does not fit the %zu byte buffer",
			       h->type, h->length, cap);
	if (h->seq != (uint32_t)want_seq)
		return err_set(err, "frame: sequence %u, want %u (replayed, reordered or dropped frame)",
			       h->seq, (uint32_t)want_seq);
	return 0;
}

/* Read n bytes of part `what`; EOF becomes a clear message. */
static int frame__read(struct frame_conn *c, void *buf, size_t n, const char *what,
		       int at_boundary, struct err *err)
{
	size_t got;
	int r = fdio_read_full(c->fd, buf, n, c->timeout_ms, &got, err);

	if (r == 0)
		return 0;
	if (r == -2 && at_boundary && got == 0) {
		c->eof = 1;
		return err_set(err, "frame: peer closed connection");
	}
	if (r == -2)
		return err_set(err, "frame: peer closed connection mid-frame (got %zu of %zu %s bytes)",
			       got, n, what);
	return err_prefix(err, "frame: receiving %s", what);
}

int frame_recv(struct frame_conn *c, uint16_t *type, void *buf, size_t cap,
	       size_t *len, struct err *err)
{
	uint8_t hdr[FRAME_HDR_SIZE], tag[FRAME_TAG_SIZE], want[FRAME_TAG_SIZE];
	struct frame_hdr h;
	uint64_t t0;

	if (__atomic_load_n(&c->broken, __ATOMIC_RELAXED))
		return err_set(err, "frame: connection is broken after an earlier error");
	if (c->eof)
		return err_set(err, "frame: peer closed connection");
	if (frame__read(c, hdr, FRAME_HDR_SIZE, "header", 1, err) < 0)
		goto broken;
	if (frame_parse_hdr(hdr, c->max_len, cap, c->recv_seq, &h, err) < 0)
		goto broken;
	if (frame__read(c, buf, h.length, "payload", 0, err) < 0 ||
	    frame__read(c, tag, FRAME_TAG_SIZE, "tag", 0, err) < 0)
		goto broken;
	t0 = frame__now();
	if (frame__tag(&c->recv_tag, c->recv_seq, hdr, buf, h.length, want, err) < 0)
		goto broken;
	c->recv_tag_ns += frame__now() - t0;
	if (CRYPTO_memcmp(tag, want, FRAME_TAG_SIZE)) {
		err_set(err, "frame: bad tag on type %u frame %llu (corrupted or forged)",
			h.type, (unsigned long long)c->recv_seq);
		goto broken;
	}
	c->recv_seq++;
	*type = h.type;
	*len = h.length;
	return 0;
broken:
	/* A clean EOF is not breakage, but the link is done either way. */
	if (!c->eof)
		__atomic_store_n(&c->broken, 1, __ATOMIC_RELAXED);
	return -1;
}
