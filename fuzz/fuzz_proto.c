/* Fuzz the control-protocol decoder: the input is a raw byte stream from an
 * untrusted peer. The first byte picks a chunk size for feeding the
 * incremental reader (so message boundaries land anywhere in a read); each
 * complete message is unpacked alternately as Request and Response, and every
 * successfully unpacked message must re-pack and unpack again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/api.h"
#include "proto/frame.h"

static void repack(const ProtobufCMessage *m)
{
	ProtobufCMessage *again;
	struct err err;
	uint8_t *buf;
	size_t len;

	if (pmsg_encode(m, &buf, &len, &err) < 0)
		abort();	/* smaller than PMSG_MAX_SIZE in, so must fit out */
	again = protobuf_c_message_unpack(m->descriptor, NULL, len - PMSG_HDR_SIZE,
					  buf + PMSG_HDR_SIZE);
	if (!again)
		abort();
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
					(void)vmm_cmd_name(((Vmm__Request *)m)->cmd_case);
				repack(m);
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
