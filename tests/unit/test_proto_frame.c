/* proto/frame: blocking send/recv over socketpairs and the incremental reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/le.h"
#include "proto/api.h"
#include "proto/frame.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void put_raw(int fd, const void *b, size_t n)
{
	assert_int_equal(write(fd, b, n), (ssize_t)n);
}

static void test_roundtrip(void **state)
{
	Vmm__Request req = VMM__REQUEST__INIT, *got;
	Vmm__Snapshot snap = VMM__SNAPSHOT__INIT;
	struct err err;
	int sv[2];

	(void)state;
	pair(sv);
	req.api_version = VMM_API_VERSION;
	req.id = 42;
	snap.dir = "/var/lib/snap";
	req.cmd_case = VMM__REQUEST__CMD_SNAPSHOT;
	req.snapshot = &snap;
	assert_int_equal(pmsg_send(sv[0], &req.base, &err), 0);
	assert_int_equal(pmsg_send(sv[0], &req.base, &err), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pmsg_recv_request(sv[1], &got, &err), 0);
		assert_int_equal(got->id, 42);
		assert_int_equal(got->api_version, VMM_API_VERSION);
		assert_int_equal(got->cmd_case, VMM__REQUEST__CMD_SNAPSHOT);
		assert_string_equal(got->snapshot->dir, "/var/lib/snap");
		vmm__request__free_unpacked(got, NULL);
	}
	close(sv[0]);
	assert_int_equal(pmsg_recv_request(sv[1], &got, &err), -2);
	assert_string_equal(err.msg, "peer closed connection");
	close(sv[1]);
}

/* A message bigger than the socket buffer: exercises short writes/reads. */
static void *big_sender(void *arg)
{
	int fd = *(int *)arg;
	Vmm__Response resp = VMM__RESPONSE__INIT;
	struct err err;
	char *s = malloc(3u << 20);

	memset(s, 'x', (3u << 20) - 1);
	s[(3u << 20) - 1] = '\0';
	resp.error = s;
	resp.id = 7;
	if (pmsg_send(fd, &resp.base, &err) < 0)
		abort();
	free(s);
	return NULL;
}

static void test_big_message(void **state)
{
	Vmm__Response *got;
	struct err err;
	pthread_t t;
	int sv[2];

	(void)state;
	pair(sv);
	pthread_create(&t, NULL, big_sender, &sv[0]);
	assert_int_equal(pmsg_recv_response(sv[1], &got, &err), 0);
	pthread_join(t, NULL);
	assert_int_equal(got->id, 7);
	assert_int_equal(strlen(got->error), (3u << 20) - 1);
	vmm__response__free_unpacked(got, NULL);
	close(sv[0]);
	close(sv[1]);
}

static void test_send_too_big(void **state)
{
	Vmm__Response resp = VMM__RESPONSE__INIT;
	struct err err;
	char *s = malloc(PMSG_MAX_SIZE + 1);
	int sv[2];

	(void)state;
	pair(sv);
	memset(s, 'y', PMSG_MAX_SIZE);
	s[PMSG_MAX_SIZE] = '\0';
	resp.error = s;
	assert_int_equal(pmsg_send(sv[0], &resp.base, &err), -1);
	assert_non_null(strstr(err.msg, "exceeds limit 4194304"));
	free(s);
	close(sv[0]);
	close(sv[1]);
}

static void test_zero_length(void **state)
{
	uint8_t z[4] = { 0, 0, 0, 0 };
	Vmm__Request *got;
	struct err err;
	int sv[2];

	(void)state;
	pair(sv);
	put_raw(sv[0], z, 4);
	assert_int_equal(pmsg_recv_request(sv[1], &got, &err), 0);
	assert_int_equal(got->api_version, 0);
	assert_int_equal(got->cmd_case, VMM__REQUEST__CMD__NOT_SET);
	vmm__request__free_unpacked(got, NULL);
	close(sv[0]);
	close(sv[1]);
}

static void test_truncated_header(void **state)
{
	uint8_t h[2] = { 5, 0 };
	Vmm__Request *got;
	struct err err;
	int sv[2];

	(void)state;
	pair(sv);
	put_raw(sv[0], h, 2);
	close(sv[0]);
	assert_int_equal(pmsg_recv_request(sv[1], &got, &err), -1);
	assert_string_equal(err.msg, "peer closed connection after 2 of 4 length bytes");
	assert_null(got);
	close(sv[1]);
}

static void test_truncated_body(void **state)
{
	uint8_t h[7] = { 10, 0, 0, 0, 0x08, 0x01, 0x10 };
	Vmm__Request *got;
	struct err err;
	int sv[2];

	(void)state;
	pair(sv);
	put_raw(sv[0], h, sizeof(h));
	close(sv[0]);
	assert_int_equal(pmsg_recv_request(sv[1], &got, &err), -1);
	assert_string_equal(err.msg, "peer closed connection after 3 of 10 message bytes");
	close(sv[1]);
}

static void test_oversized(void **state)
{
	uint8_t h[4];
	Vmm__Request *got;
	struct err err;
	int sv[2];

	(void)state;
	pair(sv);
	le_put32(h, 0xfffffff0u);	/* would be a 4 GiB allocation */
	put_raw(sv[0], h, 4);
	assert_int_equal(pmsg_recv_request(sv[1], &got, &err), -1);
	assert_non_null(strstr(err.msg, "message length 4294967280 exceeds limit 4194304"));
	close(sv[0]);
	close(sv[1]);
}

static void test_garbage(void **state)
{
	/* "GET / HTTP/1.1\r\n": length 0x20544547 is too big... */
	const char *http = "GET / HTTP/1.1\r\n\r\n";
	/* ...and a well-sized frame of invalid protobuf (field 1 wire type 7). */
	uint8_t bad[8] = { 4, 0, 0, 0, 0x0f, 0xff, 0xff, 0xff };
	Vmm__Request *got;
	struct err err;
	int sv[2];

	(void)state;
	pair(sv);
	put_raw(sv[0], http, strlen(http));
	assert_int_equal(pmsg_recv_request(sv[1], &got, &err), -1);
	assert_non_null(strstr(err.msg, "exceeds limit"));
	close(sv[0]);
	close(sv[1]);

	pair(sv);
	put_raw(sv[0], bad, sizeof(bad));
	assert_int_equal(pmsg_recv_request(sv[1], &got, &err), -1);
	assert_string_equal(err.msg, "malformed request: protobuf-c unpack failed (4 bytes)");
	close(sv[0]);
	close(sv[1]);
}

/* Incremental reader: two messages fed byte by byte, then in one chunk. */
static void test_reader(void **state)
{
	Vmm__Request req = VMM__REQUEST__INIT, *got;
	Vmm__Status st = VMM__STATUS__INIT;
	struct pmsg_reader r;
	uint8_t *a, stream[256];
	size_t alen, n = 0;
	struct err err;
	int seen = 0;

	(void)state;
	req.api_version = 1;
	req.cmd_case = VMM__REQUEST__CMD_STATUS;
	req.status = &st;
	for (int i = 1; i <= 2; i++) {
		req.id = i;
		assert_int_equal(pmsg_encode(&req.base, &a, &alen, &err), 0);
		memcpy(stream + n, a, alen);
		n += alen;
		free(a);
	}
	pmsg_reader_init(&r, 0);
	for (size_t off = 0; off < n; off++) {
		assert_int_equal(pmsg_reader_feed(&r, stream + off, 1, &err), 1);
		if (pmsg_reader_ready(&r)) {
			assert_int_equal(pmsg_reader_take(&r, &vmm__request__descriptor,
							  (ProtobufCMessage **)&got, &err), 0);
			assert_int_equal(got->id, ++seen);
			assert_int_equal(got->cmd_case, VMM__REQUEST__CMD_STATUS);
			vmm__request__free_unpacked(got, NULL);
		}
		/* Cut mid-stream: only a boundary is a clean EOF. */
		assert_int_equal(pmsg_reader_eof(&r, &err), (off + 1 == n || off + 1 == n / 2) ? 0 : -1);
	}
	assert_int_equal(seen, 2);

	/* One chunk: feed stops at the first message's end. */
	seen = 0;
	for (size_t off = 0; off < n;) {
		ssize_t k = pmsg_reader_feed(&r, stream + off, n - off, &err);

		assert_true(k > 0);
		off += k;
		assert_true(pmsg_reader_ready(&r));
		assert_int_equal(pmsg_reader_feed(&r, stream + off, n - off, &err), 0);
		assert_int_equal(pmsg_reader_take(&r, &vmm__request__descriptor,
						  (ProtobufCMessage **)&got, &err), 0);
		assert_int_equal(got->id, ++seen);
		vmm__request__free_unpacked(got, NULL);
	}
	assert_int_equal(seen, 2);
	pmsg_reader_free(&r);
}

static void test_reader_errors(void **state)
{
	uint8_t h[4], zero[4] = { 0 }, bad[6] = { 2, 0, 0, 0, 0x0f, 0x00 };
	ProtobufCMessage *m;
	struct pmsg_reader r;
	struct err err;

	(void)state;
	pmsg_reader_init(&r, 100);
	le_put32(h, 101);
	assert_int_equal(pmsg_reader_feed(&r, h, 4, &err), -1);
	assert_non_null(strstr(err.msg, "message length 101 exceeds limit 100"));
	assert_int_equal(pmsg_reader_feed(&r, h, 4, &err), -1);	/* stays broken */
	pmsg_reader_free(&r);

	pmsg_reader_init(&r, 0);
	assert_int_equal(pmsg_reader_feed(&r, zero, 4, &err), 4);
	assert_true(pmsg_reader_ready(&r));
	assert_int_equal(pmsg_reader_take(&r, &vmm__request__descriptor, &m, &err), 0);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(pmsg_reader_feed(&r, bad, sizeof(bad), &err), 6);
	assert_int_equal(pmsg_reader_take(&r, &vmm__response__descriptor, &m, &err), -1);
	assert_string_equal(err.msg, "malformed response: protobuf-c unpack failed (2 bytes)");
	assert_int_equal(pmsg_reader_take(&r, &vmm__response__descriptor, &m, &err), -1);
	assert_int_equal(pmsg_reader_feed(&r, bad, 3, &err), 3);
	assert_int_equal(pmsg_reader_eof(&r, &err), -1);
	assert_string_equal(err.msg, "peer closed connection after 3 of 4 length bytes");
	pmsg_reader_free(&r);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(vmm_state_name(VMM__VM_STATE__VM_STATE_PAUSED_AMBIGUOUS),
			    "paused_ambiguous");
	assert_string_equal(vmm_state_name((Vmm__VmState)999), "unknown");
	assert_string_equal(vmm_cmd_name(VMM__REQUEST__CMD_MIGRATE_STATUS), "migrate-status");
	assert_string_equal(vmm_phase_name(VMM__MIGRATION_PHASE__MIGRATION_PHASE_STOP_COPY),
			    "stop_copy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_big_message),
		cmocka_unit_test(test_send_too_big),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_truncated_header),
		cmocka_unit_test(test_truncated_body),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_reader_errors),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
