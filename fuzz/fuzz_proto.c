/* Fuzz the control-protocol decoder: the input is a raw byte stream from an
 * untrusted peer. The first byte picks a chunk size for feeding the
 * incremental reader (so message boundaries land anywhere in a read); each
 * complete message is unpacked alternately as Request and Response (requests
 * also go through control_handle with a permissive ops table), and every
 * successfully unpacked message must re-pack and unpack again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/api.h"
#include "proto/frame.h"
#include "vmm/control/server.h"

static void repack(const ProtobufCMessage *m, int must_roundtrip);

/* Ops that accept everything; migrate_status fails to exercise error replies. */
static int ok_status(void *o, Vmm__VmStatus *out, struct err *err)
{
	(void)o; (void)err;
	out->name = NULL;	/* server must cope with NULL strings */
	return 0;
}
static int ok_void(void *o, struct err *err) { (void)o; (void)err; return 0; }
static int ok_snap(void *o, const char *d, struct err *err) { (void)o; (void)d; (void)err; return 0; }
static int ok_mig(void *o, const Vmm__Migrate *m, struct err *err)
{
	(void)o; (void)err;
	return m->to && m->secret_file ? 0 : -1;
}
static int bad_ms(void *o, Vmm__MigrationStats *out, struct err *err)
{
	(void)o; (void)out;
	return err_set(err, "no migration");
}
static const struct control_ops ops = {
	.status = ok_status, .pause = ok_void, .resume = ok_void, .snapshot = ok_snap,
	.migrate = ok_mig, .migrate_status = bad_ms,
};

/* Dispatch an untrusted request and pack the reply, as the server does. */
static void dispatch(const Vmm__Request *req)
{
	static struct control_reply r;

	control_handle(&ops, NULL, req, &r);
	repack(&r.resp.base, 1);
	if (r.resp.id != req->id || (!r.resp.ok && !r.resp.error[0]))
		abort();
}

static void repack(const ProtobufCMessage *m, int must_roundtrip)
{
	ProtobufCMessage *again;
	struct err err;
	uint8_t *buf;
	size_t len;

	if (pmsg_encode(m, &buf, &len, &err) < 0)
		abort();	/* smaller than PMSG_MAX_SIZE in, so must fit out */
	/* Not required to unpack again: protobuf-c keeps unknown fields it
	 * accepted leniently (e.g. field number 0 with an over-long varint)
	 * and re-emits them in a form its own unpacker rejects. Messages we
	 * build ourselves (the replies) have no unknown fields and must. */
	again = protobuf_c_message_unpack(m->descriptor, NULL, len - PMSG_HDR_SIZE,
					  buf + PMSG_HDR_SIZE);
	if (!again && m->n_unknown_fields == 0 && m->descriptor == &vmm__response__descriptor &&
	    must_roundtrip)
		abort();
	if (again)
		protobuf_c_message_free_unpacked(again, NULL);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pmsg_reader r;
	struct err err;
	size_t chunk, off = 1;
	unsigned n = 0;

	if (size < 1)
		return 0;
	chunk = data[0] % 17 + 1;
	/* Small limit so oversize rejection is reachable with small inputs. */
	pmsg_reader_init(&r, (data[0] & 0x80) ? 64 : 0);
	while (off < size) {
		size_t want = size - off < chunk ? size - off : chunk;
		ssize_t k = pmsg_reader_feed(&r, data + off, want, &err);

		if (k < 0)
			break;
		off += k;
		if (pmsg_reader_ready(&r)) {
			const ProtobufCMessageDescriptor *d = (n++ & 1) ?
				&vmm__response__descriptor : &vmm__request__descriptor;
			ProtobufCMessage *m;

			if (pmsg_reader_take(&r, d, &m, &err) == 0) {
				if (d == &vmm__request__descriptor)
					dispatch((Vmm__Request *)m);
				repack(m, 0);
				protobuf_c_message_free_unpacked(m, NULL);
			}
		} else if (k == 0) {
			abort();	/* no progress without a ready message */
		}
	}
	(void)pmsg_reader_eof(&r, &err);
	pmsg_reader_free(&r);
	return 0;
}
