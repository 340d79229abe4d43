#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/auth.h"
#include "lib/frame.h"
#include "lib/le.h"

#define FAIL_MSG "auth: peer failed authentication (wrong cluster secret?)"

/* ---- secret files ---- */

static const char *mksecret(const char *content, size_t len, mode_t mode)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/test_secret_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	fchmod(fd, mode);
	close(fd);
	return path;
}

static void test_secret_load(void **state)
{
	struct auth_secret s;
	struct err err;
	const char *p;

	(void)state;
	p = mksecret("hunter2-cluster\n", 16, 0600);
	assert_int_equal(auth_secret_load(p, &s, &err), 0);
	assert_int_equal(s.len, 15);
	assert_memory_equal(s.buf, "hunter2-cluster", 15);
	auth_secret_free(&s);
	unlink(p);

	p = mksecret("abc", 3, 0644);
	assert_int_equal(auth_secret_load(p, &s, &err), -1);
	assert_non_null(strstr(err.msg, "accessible by all users (mode 0644)"));
	unlink(p);

	p = mksecret("", 0, 0600);
	assert_int_equal(auth_secret_load(p, &s, &err), -1);
	assert_non_null(strstr(err.msg, "is empty"));
	unlink(p);
	p = mksecret("\n", 1, 0600);
	assert_int_equal(auth_secret_load(p, &s, &err), -1);
	assert_non_null(strstr(err.msg, "is empty"));
	unlink(p);

	assert_int_equal(auth_secret_load("/nonexistent/secret", &s, &err), -1);
	assert_string_equal(err.msg, "auth: cannot read secret file /nonexistent/secret: No such file or directory");
	assert_int_equal(auth_secret_load("/tmp", &s, &err), -1);
	assert_non_null(strstr(err.msg, "not a regular file"));
	assert_null(s.buf);
}

/* ---- handshake ---- */

struct side {
	int fd;
	const char *secret;
	enum auth_role role;
	int ret;
	struct err err;
	struct frame_conn c;
};

static void *side_run(void *arg)
{
	struct side *sd = arg;
	struct auth_secret s;

	assert_int_equal(auth_secret_set(&s, sd->secret, strlen(sd->secret), &sd->err), 0);
	sd->ret = frame_conn_open(&sd->c, sd->fd, &s, sd->role, 5000, &sd->err);
	auth_secret_free(&s);
	return NULL;
}

static void handshake(struct side *a, struct side *b, const char *sa, const char *sb)
{
	int sv[2];
	pthread_t t;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	*a = (struct side){ .fd = sv[0], .secret = sa, .role = AUTH_CLIENT };
	*b = (struct side){ .fd = sv[1], .secret = sb, .role = AUTH_SERVER };
	pthread_create(&t, NULL, side_run, b);
	side_run(a);
	pthread_join(t, NULL);
}

static void test_handshake_and_frames(void **state)
{
	struct side a, b;
	struct err err;
	static uint8_t big[1 << 20], got[1 << 20];
	uint16_t type;
	size_t len;

	(void)state;
	handshake(&a, &b, "correct horse", "correct horse");
	assert_int_equal(a.ret, 0);
	assert_int_equal(b.ret, 0);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = i * 7;
	/* both directions, several sizes incl. empty; big ones need a reader
	 * thread-free path: the socket buffer holds small frames only. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(frame_send(&a.c, 1 + i, big, i * 13, &err), 0);
		assert_int_equal(frame_recv(&b.c, &type, got, sizeof(got), &len, &err), 0);
		assert_int_equal(type, 1 + i);
		assert_int_equal(len, i * 13);
		assert_memory_equal(got, big, len);
		assert_int_equal(frame_send(&b.c, 100, "pong", 4, &err), 0);
		assert_int_equal(frame_recv(&a.c, &type, got, sizeof(got), &len, &err), 0);
		assert_int_equal(type, 100);
		assert_int_equal(len, 4);
	}
	assert_int_equal(frame_send(&a.c, 0, "x", 1, &err), -1);
	assert_string_equal(err.msg, "frame: type 0 is invalid");
	/* clean close at a frame boundary */
	shutdown(a.fd, SHUT_WR);
	assert_int_equal(frame_recv(&b.c, &type, got, sizeof(got), &len, &err), -1);
	assert_true(b.c.eof);
	assert_string_equal(err.msg, "frame: peer closed connection");
	frame_conn_close(&a.c);
	frame_conn_close(&b.c);
	close(a.fd);
	close(b.fd);
}

static void test_wrong_secret(void **state)
{
	struct side a, b;

	(void)state;
	handshake(&a, &b, "secret-one", "secret-two");
	assert_int_equal(a.ret, -1);
	assert_int_equal(b.ret, -1);
	assert_string_equal(a.err.msg, FAIL_MSG);
	assert_string_equal(b.err.msg, FAIL_MSG);
	close(a.fd);
	close(b.fd);
	/* a prefix of the secret is a different secret */
	handshake(&a, &b, "secret", "secret-two");
	assert_int_equal(a.ret, -1);
	assert_int_equal(b.ret, -1);
	close(a.fd);
	close(b.fd);
}

static void *echo40(void *arg)
{
	int fd = *(int *)arg;
	uint8_t b[40];

	assert_int_equal(read(fd, b, 40), 40);
	assert_int_equal(write(fd, b, 40), 40);
	return NULL;
}

static void test_handshake_hostile(void **state)
{
	struct auth_secret s;
	struct auth_session sess;
	struct err err;
	int sv[2];
	uint8_t hello[40];

	(void)state;
	assert_int_equal(auth_secret_set(&s, "k", 1, &err), 0);
	/* peer sends garbage */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(hello, 'x', sizeof(hello));
	assert_int_equal(write(sv[1], hello, 40), 40);
	assert_int_equal(auth_handshake(sv[0], &s, AUTH_SERVER, 1000, &sess, &err), -1);
	assert_non_null(strstr(err.msg, "bad hello"));
	close(sv[0]); close(sv[1]);
	/* a version 1 peer (HMAC-SHA256 frame tags) is refused by name */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memcpy(hello, "KVMAUTH1", 8);
	assert_int_equal(write(sv[1], hello, 40), 40);
	assert_int_equal(auth_handshake(sv[0], &s, AUTH_SERVER, 1000, &sess, &err), -1);
	assert_non_null(strstr(err.msg, "auth version 1"));
	close(sv[0]); close(sv[1]);
	/* peer closes mid-hello */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "KVMAUTH2abc", 11), 11);
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(auth_handshake(sv[0], &s, AUTH_SERVER, 1000, &sess, &err), -1);
	assert_string_equal(err.msg, "auth: peer closed connection during handshake (got 11 of 40 hello bytes)");
	close(sv[0]); close(sv[1]);
	/* peer reflects our hello back */
	{
		pthread_t t;

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		pthread_create(&t, NULL, echo40, &sv[1]);
		assert_int_equal(auth_handshake(sv[0], &s, AUTH_SERVER, 1000, &sess, &err), -1);
		assert_string_equal(err.msg, "auth: peer echoed our nonce (reflection?)");
		pthread_join(t, NULL);
		close(sv[0]); close(sv[1]);
	}
	/* silent peer times out */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(auth_handshake(sv[0], &s, AUTH_SERVER, 50, &sess, &err), -1);
	assert_non_null(strstr(err.msg, "timed out"));
	close(sv[0]); close(sv[1]);
	auth_secret_free(&s);
}

/* ---- frames with fixed keys over raw socketpairs ---- */

struct pair {
	int tx[2];	/* A writes tx[0], raw bytes appear on tx[1] */
	int rx[2];	/* we inject raw bytes at rx[0], B reads rx[1] */
	struct frame_conn a, b;
};

static void pair_open(struct pair *p)
{
	struct auth_session sa, sb;
	struct err err;

	memset(&sa, 0x11, sizeof(sa.send_key));
	memset(sa.recv_key, 0x22, sizeof(sa.recv_key));
	memcpy(sb.send_key, sa.recv_key, AUTH_KEY_LEN);
	memcpy(sb.recv_key, sa.send_key, AUTH_KEY_LEN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->tx), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->rx), 0);
	assert_int_equal(frame_conn_init(&p->a, p->tx[0], &sa, &err), 0);
	assert_int_equal(frame_conn_init(&p->b, p->rx[1], &sb, &err), 0);
	p->b.timeout_ms = 1000;
}

static void pair_close(struct pair *p)
{
	frame_conn_close(&p->a);
	frame_conn_close(&p->b);
	close(p->tx[0]); close(p->tx[1]); close(p->rx[0]); close(p->rx[1]);
}

/* Send one frame from A and capture its raw bytes. */
static size_t capture(struct pair *p, uint16_t type, const void *buf, uint32_t len, uint8_t *raw)
{
	struct err err;
	size_t n = FRAME_HDR_SIZE + len + FRAME_TAG_SIZE;

	assert_int_equal(frame_send(&p->a, type, buf, len, &err), 0);
	assert_int_equal(read(p->tx[1], raw, n), (ssize_t)n);
	return n;
}

static int inject_recv(struct pair *p, const uint8_t *raw, size_t n, int close_after,
		       struct err *err)
{
	uint8_t buf[256];
	uint16_t type;
	size_t len;

	assert_int_equal(write(p->rx[0], raw, n), (ssize_t)n);
	if (close_after)
		shutdown(p->rx[0], SHUT_WR);
	return frame_recv(&p->b, &type, buf, sizeof(buf), &len, err);
}

static void test_frame_ok_then_replay(void **state)
{
	struct pair p;
	struct err err;
	uint8_t f0[128], f1[128];
	size_t n0, n1;

	(void)state;
	pair_open(&p);
	n0 = capture(&p, 5, "hello", 5, f0);
	n1 = capture(&p, 5, "world", 5, f1);
	assert_int_equal(inject_recv(&p, f0, n0, 0, &err), 0);
	assert_int_equal(inject_recv(&p, f0, n0, 0, &err), -1);	/* replay */
	assert_string_equal(err.msg, "frame: sequence 0, want 1 (replayed, reordered or dropped frame)");
	/* connection is now broken for good */
	assert_int_equal(inject_recv(&p, f1, n1, 0, &err), -1);
	assert_non_null(strstr(err.msg, "broken"));
	pair_close(&p);

	/* reorder: frame 1 first */
	pair_open(&p);
	n0 = capture(&p, 5, "hello", 5, f0);
	n1 = capture(&p, 5, "world", 5, f1);
	assert_int_equal(inject_recv(&p, f1, n1, 0, &err), -1);
	assert_non_null(strstr(err.msg, "sequence 1, want 0"));
	pair_close(&p);

	/* replay with the seq field rewritten: caught by the tag */
	pair_open(&p);
	n0 = capture(&p, 5, "hello", 5, f0);
	assert_int_equal(inject_recv(&p, f0, n0, 0, &err), 0);
	le_put32(f0 + 12, 1);
	assert_int_equal(inject_recv(&p, f0, n0, 0, &err), -1);
	assert_non_null(strstr(err.msg, "bad tag"));
	pair_close(&p);
}

/* ---- bounded sends ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A peer that stops reading: frame_send fails once nothing moved for
 * timeout_ms (ETIMEDOUT, "no progress"), after about one timeout, not one
 * per partial write, and the connection is broken afterwards. */
static void test_frame_send_stalled_peer(void **state)
{
	static uint8_t big[256 << 10];
	struct pair p;
	struct err err;
	double t0, t1 = 0;
	int r = 0, i;

	(void)state;
	pair_open(&p);
	p.a.timeout_ms = 300;
	for (i = 0; i < 64 && r == 0; i++) {	/* fills the socket buffer, then stalls */
		t0 = now_s();
		r = frame_send(&p.a, 5, big, sizeof(big), &err);
		t1 = now_s() - t0;
	}
	assert_int_equal(r, -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_string_equal(err.msg, "frame: send: write: no progress for 300 ms (the peer stopped reading)");
	assert_true(t1 >= 0.25 && t1 < 3.0);
	assert_int_equal(frame_send(&p.a, 5, "x", 1, &err), -1);
	assert_non_null(strstr(err.msg, "broken"));
	pair_close(&p);
}

struct slow_reader {
	int fd;
	size_t total;
};

static void *slow_read(void *arg)
{
	struct slow_reader *sr = arg;
	uint8_t buf[16 << 10];
	ssize_t r;

	while ((r = read(sr->fd, buf, sizeof(buf))) > 0) {
		sr->total += (size_t)r;
		usleep(20000);	/* 16 KiB per 20 ms: always some progress */
	}
	return NULL;
}

/* A slow peer that keeps taking bytes is not a stalled one: sending 2 MiB
 * to a reader taking 16 KiB per 20 ms takes seconds, far over the 300 ms
 * timeout, and succeeds. */
static void test_frame_send_slow_peer(void **state)
{
	static uint8_t big[1 << 20];
	struct slow_reader sr = { 0 };
	struct pair p;
	struct err err;
	pthread_t th;
	double t0;

	(void)state;
	pair_open(&p);
	p.a.timeout_ms = 300;
	sr.fd = p.tx[1];
	assert_int_equal(pthread_create(&th, NULL, slow_read, &sr), 0);
	t0 = now_s();
	assert_int_equal(frame_send(&p.a, 5, big, sizeof(big), &err), 0);
	assert_int_equal(frame_send(&p.a, 5, big, sizeof(big), &err), 0);
	assert_true(now_s() - t0 > 0.6);
	shutdown(p.tx[0], SHUT_WR);
	pthread_join(th, NULL);
	assert_int_equal(sr.total, 2 * (FRAME_HDR_SIZE + sizeof(big) + FRAME_TAG_SIZE));
	pair_close(&p);
}

static void test_frame_corruption(void **state)
{
	struct pair p;
	struct err err;
	uint8_t f[128];
	size_t n;

	(void)state;
	/* every single bit flip anywhere in the frame is rejected */
	pair_open(&p);
	n = capture(&p, 7, "payload!", 8, f);
	pair_close(&p);
	for (size_t bit = 0; bit < n * 8; bit++) {
		pair_open(&p);
		capture(&p, 7, "payload!", 8, f);
		f[bit / 8] ^= 1 << (bit % 8);
		assert_int_equal(inject_recv(&p, f, n, 1, &err), -1);
		pair_close(&p);
	}
	/* reflection: A's frame fed back to a conn with A's keys */
	pair_open(&p);
	n = capture(&p, 7, "payload!", 8, f);
	{
		struct auth_session sa;
		struct frame_conn a2;
		uint16_t type;
		size_t len;
		uint8_t buf[64];

		memset(sa.send_key, 0x11, AUTH_KEY_LEN);
		memset(sa.recv_key, 0x22, AUTH_KEY_LEN);
		assert_int_equal(frame_conn_init(&a2, p.rx[1], &sa, &err), 0);
		assert_int_equal(write(p.rx[0], f, n), (ssize_t)n);
		assert_int_equal(frame_recv(&a2, &type, buf, sizeof(buf), &len, &err), -1);
		assert_non_null(strstr(err.msg, "bad tag"));
		frame_conn_close(&a2);
	}
	pair_close(&p);
}

/* The frame tag is standard ChaCha20-Poly1305 with the frame as AAD: the
 * expected tag comes from an independent implementation (Python's
 * cryptography: ChaCha20Poly1305(key).encrypt(nonce, b"", aad)). */
static void test_tagger_known_answer(void **state)
{
	static const uint8_t want[AUTH_TAG_LEN] = {
		0xa8, 0x81, 0x4a, 0x7b, 0x0e, 0x29, 0xf5, 0x57,
		0x8f, 0xb0, 0x26, 0x0e, 0xb9, 0xc9, 0x18, 0x35,
	};
	const char *hdr = "KVMF-header-16by", *pl = "payload of the frame";
	uint8_t key[AUTH_KEY_LEN], tag[AUTH_TAG_LEN], tag2[AUTH_TAG_LEN], whole[64];
	struct auth_tagger t;
	struct err err;
	struct iovec two[2] = { { (void *)hdr, 16 }, { (void *)pl, strlen(pl) } };
	struct iovec one[1] = { { whole, 16 + strlen(pl) } };

	(void)state;
	for (int i = 0; i < AUTH_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	assert_int_equal(auth_tagger_init(&t, key, &err), 0);
	assert_int_equal(auth_tagger_compute(&t, 0x0102030405060708ull, two, 2, tag, &err), 0);
	assert_memory_equal(tag, want, AUTH_TAG_LEN);
	/* how the data is split does not matter; the context is reusable */
	memcpy(whole, hdr, 16);
	memcpy(whole + 16, pl, strlen(pl));
	assert_int_equal(auth_tagger_compute(&t, 0x0102030405060708ull, one, 1, tag2, &err), 0);
	assert_memory_equal(tag2, want, AUTH_TAG_LEN);
	/* another nonce (seq), another tag */
	assert_int_equal(auth_tagger_compute(&t, 0x0102030405060709ull, two, 2, tag2, &err), 0);
	assert_memory_not_equal(tag2, want, AUTH_TAG_LEN);
	auth_tagger_free(&t);
}

/* The header carries only the low 32 bits of seq; the tag binds all 64: a
 * frame sent at seq 2^32 + 1 must not pass as frame 1. */
static void test_frame_seq_high_bits(void **state)
{
	struct pair p;
	struct err err;
	uint8_t f[128];
	size_t n;

	(void)state;
	pair_open(&p);
	p.a.send_seq = (1ull << 32) + 1;
	p.b.recv_seq = 1;
	n = capture(&p, 5, "hello", 5, f);
	assert_int_equal(inject_recv(&p, f, n, 0, &err), -1);
	assert_non_null(strstr(err.msg, "bad tag"));
	pair_close(&p);
	/* and the same frame at the matching 64-bit position is fine */
	pair_open(&p);
	p.a.send_seq = p.b.recv_seq = (1ull << 32) + 1;
	n = capture(&p, 5, "hello", 5, f);
	assert_int_equal(inject_recv(&p, f, n, 0, &err), 0);
	pair_close(&p);
}

static void test_frame_truncation(void **state)
{
	struct pair p;
	struct err err;
	uint8_t f[128];
	size_t n;

	(void)state;
	pair_open(&p);
	n = capture(&p, 7, "payload!", 8, f);
	pair_close(&p);
	for (size_t cut = 1; cut < n; cut++) {
		pair_open(&p);
		capture(&p, 7, "payload!", 8, f);
		assert_int_equal(inject_recv(&p, f, cut, 1, &err), -1);
		assert_false(p.b.eof);
		if (cut == 7)
			assert_string_equal(err.msg, "frame: peer closed connection mid-frame (got 7 of 16 header bytes)");
		if (cut == 20)
			assert_string_equal(err.msg, "frame: peer closed connection mid-frame (got 4 of 8 payload bytes)");
		if (cut == n - 1)
			assert_string_equal(err.msg, "frame: peer closed connection mid-frame (got 15 of 16 tag bytes)");
		pair_close(&p);
	}
}

static void test_frame_limits(void **state)
{
	struct pair p;
	struct err err;
	uint8_t hdr[FRAME_HDR_SIZE], big[300];
	uint16_t type;
	size_t len;

	(void)state;
	pair_open(&p);
	le_put32(hdr, FRAME_MAGIC);
	le_put16(hdr + 4, 1);
	le_put16(hdr + 6, 0);
	le_put32(hdr + 8, 0xffffffffu);
	le_put32(hdr + 12, 0);
	assert_int_equal(inject_recv(&p, hdr, sizeof(hdr), 0, &err), -1);
	assert_string_equal(err.msg, "frame: length 4294967295 exceeds the 16777216 byte limit");
	pair_close(&p);

	pair_open(&p);
	le_put32(hdr + 8, 1000);
	assert_int_equal(inject_recv(&p, hdr, sizeof(hdr), 0, &err), -1);
	assert_non_null(strstr(err.msg, "does not fit the 256 byte buffer"));
	pair_close(&p);

	pair_open(&p);
	le_put16(hdr + 4, 0);
	assert_int_equal(inject_recv(&p, hdr, sizeof(hdr), 0, &err), -1);
	assert_string_equal(err.msg, "frame: type 0 is invalid");
	pair_close(&p);

	pair_open(&p);
	le_put32(hdr, 0x12345678);
	assert_int_equal(inject_recv(&p, hdr, sizeof(hdr), 0, &err), -1);
	assert_non_null(strstr(err.msg, "bad magic"));
	pair_close(&p);

	/* receiver's max_len smaller than what the sender sends */
	pair_open(&p);
	p.b.max_len = 100;
	memset(big, 1, sizeof(big));
	assert_int_equal(frame_send(&p.a, 3, big, 200, &err), 0);
	{
		uint8_t raw[300];
		ssize_t r = read(p.tx[1], raw, sizeof(raw));

		assert_int_equal(write(p.rx[0], raw, r), r);
	}
	assert_int_equal(frame_recv(&p.b, &type, big, sizeof(big), &len, &err), -1);
	assert_non_null(strstr(err.msg, "length 200 exceeds the 100 byte limit"));
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_load),
		cmocka_unit_test(test_handshake_and_frames),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_handshake_hostile),
		cmocka_unit_test(test_frame_ok_then_replay),
		cmocka_unit_test(test_frame_corruption),
		cmocka_unit_test(test_frame_truncation),
		cmocka_unit_test(test_tagger_known_answer),
		cmocka_unit_test(test_frame_seq_high_bits),
		cmocka_unit_test(test_frame_limits),
		cmocka_unit_test(test_frame_send_stalled_peer),
		cmocka_unit_test(test_frame_send_slow_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
