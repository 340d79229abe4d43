/* Fuzz the agent message decoders: the input is bytes from an untrusted
 * vmctl client or (after auth) peer. First byte: bit 0 picks the JSON state
 * record parser instead of the protobuf path; bit 1 the peer link for
 * agent_request_check. Protobuf path: the rest is fed through the
 * incremental pmsg reader (chunk size from the first byte), each complete
 * message decoded as an agent Request, checked, and if it carries a VM
 * definition validated with record_from_def (without touching files); the
 * record must re-encode to JSON that parses back to the same record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentd/agent.h"
#include "proto/frame.h"

static void roundtrip(const struct vm_record *r)
{
	struct vm_record b;
	struct err e;
	char *j = record_to_json(r);
	if (record_from_json(j, strlen(j), &b, &e) < 0 || memcmp(r, &b, sizeof(b)))
		abort();
	free(j);
}

static void one(const Agent__Request *q, int peer)
{
	Agent__ErrorCode code;
	struct err e;
	struct vm_record r;
	const Agent__VmDefinition *d = NULL;

	(void)agent_cmd_name(q->cmd_case);
	if (agent_request_check(q, peer, &code, &e) < 0) {
		(void)agent_error_code_name(code);
		return;
	}
	if (q->cmd_case == AGENT__REQUEST__CMD_RUN)
		d = q->run->def;
	else if (q->cmd_case == AGENT__REQUEST__CMD_PREPARE_INCOMING)
		d = q->prepare_incoming->def;
	if (d && record_from_def(&r, d, 0, &e) == 0) {
		strcpy(r.state, "running");
		roundtrip(&r);
	}
	if (q->cmd_case == AGENT__REQUEST__CMD_MIGRATE) {
		char h[256];
		int p;
		(void)agent_split_hostport(q->migrate->to, h, sizeof(h), &p, &e);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e;

	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	if (mode & 1) {
		struct vm_record r;
		if (record_from_json((const char *)data, size, &r, &e) == 0)
			roundtrip(&r);
		return 0;
	}
	struct pmsg_reader rd;
	size_t chunk = (mode >> 2) + 1;
	pmsg_reader_init(&rd, 1 << 16);
	for (size_t off = 0; off < size;) {
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t k = pmsg_reader_feed(&rd, data + off, n, &e);
		if (k < 0)
			break;
		off += (size_t)k;
		if (pmsg_reader_ready(&rd)) {
			ProtobufCMessage *m;
			if (pmsg_reader_take(&rd, &agent__request__descriptor, &m, &e) < 0)
				break;
			one((Agent__Request *)m, mode & 2);
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	(void)pmsg_reader_eof(&rd, &e);
	pmsg_reader_free(&rd);
	return 0;
}
