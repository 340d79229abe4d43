#include "proto/frame.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "lib/le.h"

/* "Request" -> "request" for error messages. */
static void msg_noun(const ProtobufCMessageDescriptor *desc, char *out, size_t cap)
{
	size_t i;

	for (i = 0; i + 1 < cap && desc->short_name[i]; i++)
		out[i] = tolower((unsigned char)desc->short_name[i]);
	out[i] = '\0';
}

static int check_len(uint32_t len, uint32_t max, struct err *err)
{
	if (len > max)
		return err_set(err, "message length %u exceeds limit %u (peer is not speaking "
			       "the control protocol?)", len, max);
	return 0;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
				uint32_t len, struct err *err)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, buf);
	char noun[32];

	if (!m) {
		msg_noun(desc, noun, sizeof(noun));
		err_set(err, "malformed %s: protobuf-c unpack failed (%u bytes)", noun, len);
	}
	return m;
}

int pmsg_encode(const ProtobufCMessage *msg, uint8_t **buf, size_t *len, struct err *err)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *b;

	if (n > PMSG_MAX_SIZE)
		return err_set(err, "message of %zu bytes exceeds limit %u", n, PMSG_MAX_SIZE);
	b = malloc(PMSG_HDR_SIZE + n);
	if (!b)
		return err_set(err, "out of memory for a %zu-byte message", n);
	le_put32(b, (uint32_t)n);
	/* pack returns the size it wrote; it equals get_packed_size by contract. */
	if (protobuf_c_message_pack(msg, b + PMSG_HDR_SIZE) != n) {
		free(b);
		return err_set(err, "protobuf-c pack size mismatch");
	}
	*buf = b;
	*len = PMSG_HDR_SIZE + n;
	return 0;
}

int pmsg_send(int fd, const ProtobufCMessage *msg, struct err *err)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (pmsg_encode(msg, &buf, &len, err) < 0)
		return -1;
	rc = fdio_write_full(fd, buf, len, err);
	free(buf);
	return rc;
}

int pmsg_recv(int fd, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
	      struct err *err)
{
	uint8_t hdr[PMSG_HDR_SIZE];
	uint8_t *buf = NULL;
	uint32_t len;
	size_t got;
	int rc;

	*out = NULL;
	rc = fdio_read_full(fd, hdr, sizeof(hdr), -1, &got, err);
	if (rc == -2) {
		if (got == 0) {
			err_set(err, "peer closed connection");
			return -2;
		}
		return err_set(err, "peer closed connection after %zu of %d length bytes",
			       got, PMSG_HDR_SIZE);
	}
	if (rc < 0)
		return -1;
	len = le_get32(hdr);
	if (check_len(len, PMSG_MAX_SIZE, err) < 0)
		return -1;
	/* malloc(0) may return NULL; a zero-length body is still a message. */
	buf = malloc(len ? len : 1);
	if (!buf)
		return err_set(err, "out of memory for a %u-byte message", len);
	rc = fdio_read_full(fd, buf, len, -1, &got, err);
	if (rc == -2) {
		err_set(err, "peer closed connection after %zu of %u message bytes", got, len);
		goto out;
	}
	if (rc < 0)
		goto out;
	*out = unpack(desc, buf, len, err);
	rc = *out ? 0 : -1;
out:
	free(buf);
	return rc < 0 ? -1 : 0;
}

int pmsg_recv_request(int fd, Vmm__Request **out, struct err *err)
{
	return pmsg_recv(fd, &vmm__request__descriptor, (ProtobufCMessage **)out, err);
}

int pmsg_recv_response(int fd, Vmm__Response **out, struct err *err)
{
	return pmsg_recv(fd, &vmm__response__descriptor, (ProtobufCMessage **)out, err);
}

/* ---- incremental reader ---- */

void pmsg_reader_init(struct pmsg_reader *r, uint32_t max_size)
{
	memset(r, 0, sizeof(*r));
	r->max_size = (max_size == 0 || max_size > PMSG_MAX_SIZE) ? PMSG_MAX_SIZE : max_size;
}

static void reader_reset(struct pmsg_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->hdr_got = 0;
	r->len = 0;
	r->got = 0;
}

void pmsg_reader_free(struct pmsg_reader *r)
{
	reader_reset(r);
}

int pmsg_reader_ready(const struct pmsg_reader *r)
{
	/* buf is allocated exactly when a valid header has been seen. */
	return !r->broken && r->buf && r->got == r->len;
}

ssize_t pmsg_reader_feed(struct pmsg_reader *r, const void *data, size_t n, struct err *err)
{
	const uint8_t *p = data;
	size_t used = 0, take;

	if (r->broken)
		return err_set(err, "stream already failed");
	if (pmsg_reader_ready(r))
		return 0;
	if (r->hdr_got < PMSG_HDR_SIZE) {
		take = PMSG_HDR_SIZE - r->hdr_got;
		if (take > n)
			take = n;
		memcpy(r->hdr + r->hdr_got, p, take);
		r->hdr_got += take;
		used += take;
		if (r->hdr_got < PMSG_HDR_SIZE)
			return used;
		r->len = le_get32(r->hdr);
		if (check_len(r->len, r->max_size, err) < 0) {
			r->broken = 1;
			return -1;
		}
		r->buf = malloc(r->len ? r->len : 1);
		if (!r->buf) {
			r->broken = 1;
			return err_set(err, "out of memory for a %u-byte message", r->len);
		}
		r->got = 0;
	}
	take = r->len - r->got;
	if (take > n - used)
		take = n - used;
	memcpy(r->buf + r->got, p + used, take);
	r->got += take;
	return used + take;
}

int pmsg_reader_take(struct pmsg_reader *r, const ProtobufCMessageDescriptor *desc,
		     ProtobufCMessage **out, struct err *err)
{
	*out = NULL;
	if (!pmsg_reader_ready(r))
		return err_set(err, "no complete message");
	*out = unpack(desc, r->buf, r->len, err);
	reader_reset(r);
	return *out ? 0 : -1;
}

int pmsg_reader_eof(const struct pmsg_reader *r, struct err *err)
{
	if (r->hdr_got == 0)
		return 0;
	if (r->hdr_got < PMSG_HDR_SIZE)
		return err_set(err, "peer closed connection after %u of %d length bytes",
			       r->hdr_got, PMSG_HDR_SIZE);
	if (r->broken)
		return err_set(err, "peer closed connection after an oversized length");
	if (r->got < r->len)
		return err_set(err, "peer closed connection after %u of %u message bytes",
			       r->got, r->len);
	return 0;	/* a complete message is waiting; nothing was cut */
}
