/* migrate/rxq: the destination's receive pipeline delivers frames in stream
 * order, stops by itself after the final ROUND_END (the rest is read
 * synchronously), reports a corrupted frame at its position after the good
 * ones, and can be stopped while its reader is blocked or its slots are full. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/frame.h"
#include "migrate/proto.h"
#include "migrate/rxq.h"

#define CAP 4096

struct link {
	int sv[2];
	struct frame_conn a, b;	/* a sends on sv[0], b reads sv[1] */
};

static void link_open(struct link *l)
{
	struct auth_session sa, sb;
	struct err e;

	memset(sa.send_key, 0x11, AUTH_KEY_LEN);
	memset(sa.recv_key, 0x22, AUTH_KEY_LEN);
	memcpy(sb.send_key, sa.recv_key, AUTH_KEY_LEN);
	memcpy(sb.recv_key, sa.send_key, AUTH_KEY_LEN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, l->sv), 0);
	assert_int_equal(frame_conn_init(&l->a, l->sv[0], &sa, &e), 0);
	assert_int_equal(frame_conn_init(&l->b, l->sv[1], &sb, &e), 0);
	l->b.timeout_ms = 5000;
}

static void link_close(struct link *l)
{
	frame_conn_close(&l->a);
	frame_conn_close(&l->b);
	close(l->sv[0]);
	close(l->sv[1]);
}

static void send_pages(struct link *l, uint8_t fill, size_t len)
{
	uint8_t buf[CAP];
	struct err e;

	memset(buf, fill, len);
	assert_int_equal(frame_send(&l->a, MIG_F_PAGES, buf, (uint32_t)len, &e), 0);
}

static void send_round_end(struct link *l, uint32_t round, uint32_t flags)
{
	struct mig_round_end re = { .round = round, .flags = flags };
	uint8_t buf[64];
	struct err e;
	int n = mig_round_end_encode(&re, buf, sizeof(buf));

	assert_true(n > 0);
	assert_int_equal(frame_send(&l->a, MIG_F_ROUND_END, buf, (uint32_t)n, &e), 0);
}

static void expect(struct mig_rxq *q, uint16_t want_type, uint8_t fill, size_t want_len)
{
	uint16_t type;
	uint8_t *p;
	size_t len;
	struct err e;

	assert_int_equal(mig_rxq_next(q, &type, &p, &len, &e), 1);
	assert_int_equal(type, want_type);
	assert_int_equal(len, want_len);
	if (want_type == MIG_F_PAGES)
		for (size_t i = 0; i < len; i++)
			assert_int_equal(p[i], fill);
	mig_rxq_release(q);
}

static void test_order_and_handover(void **state)
{
	struct link l;
	struct mig_rxq q;
	struct err e;
	uint8_t buf[CAP];
	uint16_t type;
	uint8_t *p;
	size_t len;

	(void)state;
	link_open(&l);
	/* More frames than slots: the reader must wait for releases. */
	for (int i = 0; i < 3 * MIG_RXQ_SLOTS; i++)
		send_pages(&l, (uint8_t)i, 100 + i);
	send_round_end(&l, 0, 0);
	send_pages(&l, 0xaa, 7);
	send_round_end(&l, 1, MIG_RE_FINAL);
	assert_int_equal(frame_send(&l.a, MIG_F_STATE, "state", 5, &e), 0);
	assert_int_equal(mig_rxq_start(&q, &l.b, CAP, &e), 0);
	for (int i = 0; i < 3 * MIG_RXQ_SLOTS; i++)
		expect(&q, MIG_F_PAGES, (uint8_t)i, 100 + i);
	expect(&q, MIG_F_ROUND_END, 0, 48);
	expect(&q, MIG_F_PAGES, 0xaa, 7);
	expect(&q, MIG_F_ROUND_END, 0, 48);
	/* The reader stopped after the final ROUND_END: STATE is ours. */
	assert_int_equal(mig_rxq_next(&q, &type, &p, &len, &e), 0);
	mig_rxq_stop(&q);
	/* the reader recorded its CPU time as it ended (diagnosis line) */
	assert_true(q.reader_cpu_ns > 0);
	assert_int_equal(frame_recv(&l.b, &type, buf, sizeof(buf), &len, &e), 0);
	assert_int_equal(type, MIG_F_STATE);
	assert_memory_equal(buf, "state", 5);
	mig_rxq_fini(&q);
	link_close(&l);
}

static void test_corrupt_after_good(void **state)
{
	struct link l;
	struct mig_rxq q;
	struct err e;
	uint8_t raw[FRAME_HDR_SIZE + 64 + FRAME_TAG_SIZE];
	uint16_t type;
	uint8_t *p;
	size_t len;
	int sv[2];

	(void)state;
	link_open(&l);
	send_pages(&l, 1, 64);
	send_pages(&l, 2, 64);
	/* Third frame: built on a scratch socket, one payload byte flipped. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	l.a.fd = sv[0];
	send_pages(&l, 3, 64);
	l.a.fd = l.sv[0];
	assert_int_equal(read(sv[1], raw, sizeof(raw)), (ssize_t)sizeof(raw));
	close(sv[0]);
	close(sv[1]);
	raw[FRAME_HDR_SIZE + 10] ^= 1;
	assert_int_equal(write(l.sv[0], raw, sizeof(raw)), (ssize_t)sizeof(raw));
	assert_int_equal(mig_rxq_start(&q, &l.b, CAP, &e), 0);
	expect(&q, MIG_F_PAGES, 1, 64);
	expect(&q, MIG_F_PAGES, 2, 64);
	assert_int_equal(mig_rxq_next(&q, &type, &p, &len, &e), -1);
	assert_non_null(strstr(e.msg, "bad tag"));
	mig_rxq_fini(&q);
	link_close(&l);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Stop while the reader is blocked in read(): shutdown ends the read, no
 * wait for the 5 s timeout; the send half still works afterwards. */
static void test_stop_blocked_reader(void **state)
{
	struct link l;
	struct mig_rxq q;
	struct err e;
	uint64_t t0;

	(void)state;
	link_open(&l);
	send_pages(&l, 1, 10);
	assert_int_equal(mig_rxq_start(&q, &l.b, CAP, &e), 0);
	expect(&q, MIG_F_PAGES, 1, 10);
	t0 = now_ms();
	mig_rxq_stop(&q);
	assert_true(now_ms() - t0 < 2000);
	l.b.broken = 0;
	assert_int_equal(frame_send(&l.b, MIG_F_ERROR, "why", 3, &e), 0);
	mig_rxq_fini(&q);
	mig_rxq_fini(&q);	/* idempotent */
	link_close(&l);
}

/* Stop with every slot full and one frame held by the caller. */
static void test_stop_full(void **state)
{
	struct link l;
	struct mig_rxq q;
	struct err e;
	uint16_t type;
	uint8_t *p;
	size_t len;

	(void)state;
	link_open(&l);
	for (int i = 0; i < 2 * MIG_RXQ_SLOTS; i++)
		send_pages(&l, (uint8_t)i, 32);
	assert_int_equal(mig_rxq_start(&q, &l.b, CAP, &e), 0);
	assert_int_equal(mig_rxq_next(&q, &type, &p, &len, &e), 1);
	assert_int_equal(p[0], 0);
	mig_rxq_fini(&q);
	link_close(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_handover),
		cmocka_unit_test(test_corrupt_after_good),
		cmocka_unit_test(test_stop_blocked_reader),
		cmocka_unit_test(test_stop_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
