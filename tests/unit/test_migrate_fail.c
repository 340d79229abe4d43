/* Migration failure paths: ownership after ACK_LOADED (AMBIGUOUS), auth,
 * corrupted and truncated streams, incompatible destinations, timeouts,
 * cancel and destination errors during switchover. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/frame.h"
#include "test_migrate_fake.h"
#include "test_migrate_run.h"

static void expect(const char *msg, const char *want)
{
	if (!strstr(msg, want))
		fail_msg("'%s' lacks '%s'", msg, want);
}

/* A destination that plays the protocol with mig_rx but drops the link
 * right after sending ACK_LOADED (stop_at_go = 0) or after receiving GO
 * without answering GO_ACK (stop_at_go = 1). */
static int stop_at_go;

static void *rude_recv_main(void *arg)
{
	struct run *r = arg;
	struct frame_conn c;
	struct mig_rx rx;
	static uint8_t buf[MIG_FRAME_MAX];
	uint8_t reply[MIG_RX_REPLY_MAX];

	r->rret = -1;
	if (frame_conn_open(&c, r->dfd, &r->dsec, AUTH_SERVER, 5000, &r->rerr) < 0)
		return NULL;
	c.max_len = MIG_FRAME_MAX;
	if (mig_rx_init(&rx, r->dst, &fake_ops, &r->rst, &r->rerr) < 0)
		goto out;
	for (;;) {
		uint16_t type, rtype;
		size_t len, rlen;

		if (frame_recv(&c, &type, buf, sizeof(buf), &len, &r->rerr) < 0 ||
		    mig_rx_frame(&rx, type, buf, len, &rtype, reply, &rlen, &r->rerr) < 0)
			break;
		if (stop_at_go && rx.state == MIG_RX_RUNNING) {
			r->rret = 0;	/* got GO: this side owns the guest */
			break;
		}
		if (rtype && frame_send(&c, rtype, reply, rlen, &r->rerr) < 0)
			break;
		if (rtype == MIG_F_ACK_LOADED && !stop_at_go)
			break;
	}
	shutdown(r->dfd, SHUT_RDWR);
	mig_rx_fini(&rx);
out:
	frame_conn_close(&c);
	return NULL;
}

static void ambiguous(int at_go)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(8 * MiB, 0);
	struct mig_status s;
	struct run r;

	fake_start_guest(src, 4, 0);
	run_init(&r, src, dst);
	stop_at_go = at_go;
	r.recv_fn = rude_recv_main;
	run_go(&r);
	assert_int_equal(r.sret, MIG_RET_AMBIGUOUS);
	mig_stats_get(&r.live, &s);
	assert_int_equal(s.outcome, MIG_OUTCOME_AMBIGUOUS);
	assert_true(src->paused);		/* neither side resumes on its own */
	assert_int_equal(src->resumes, 0);
	assert_true(dst->loaded);
	assert_int_equal(r.rret, at_go ? 0 : -1);
	expect(r.serr.msg, "migrate: switchover: ");
	expect(r.serr.msg, "outcome AMBIGUOUS");
	print_message("source: %s\n", r.serr.msg);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_close_after_ack_is_ambiguous(void **state)
{
	(void)state;
	ambiguous(0);
}

static void test_no_go_ack_is_ambiguous(void **state)
{
	(void)state;
	ambiguous(1);
}

static void test_wrong_secret(void **state)
{
	struct fake_vm *src = fake_new(4 * MiB, 1), *dst = fake_new(4 * MiB, 0);
	struct run r;
	struct err e;

	(void)state;
	run_init(&r, src, dst);
	auth_secret_free(&r.dsec);
	assert_int_equal(auth_secret_set(&r.dsec, "other-secret", 12, &e), 0);
	run_go(&r);
	assert_source_running(&r, MIG_OUTCOME_FAILED);
	expect(r.serr.msg, "migrate: setup: authentication: ");
	expect(r.rerr.msg, "migrate: recv: authentication: ");
	assert_int_equal(src->dirty_starts, 0);
	assert_false(dst->loaded);
	print_message("source: %s\n  dest: %s\n", r.serr.msg, r.rerr.msg);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void proxied(long corrupt_at, long cut_at, const char *want_dst)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(8 * MiB, 0);
	struct run r;

	src->state_extra = 2 * MiB;	/* the stream ends with ~2 MiB of STATE */
	run_init(&r, src, dst);
	run_use_proxy(&r, corrupt_at, 0x40, cut_at);
	run_go(&r);
	assert_source_running(&r, MIG_OUTCOME_FAILED);
	assert_false(dst->loaded);
	expect(r.rerr.msg, want_dst);
	print_message("source: %s\n  dest: %s\n", r.serr.msg, r.rerr.msg);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_corrupted_stream(void **state)
{
	(void)state;
	proxied(300000, -1, "bad tag");
	proxied(50, -1, "authentication");	/* in the handshake */
	proxied(9 * MiB, -1, "receiving device state: frame: bad tag");
}

static void test_truncated_stream(void **state)
{
	(void)state;
	proxied(-1, 300000, "peer closed connection mid-frame");
	proxied(-1, 9 * MiB, "receiving device state: frame: peer closed connection mid-frame");
}

static void test_incompatible_ram_layout(void **state)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(4 * MiB, 0);
	struct run r;

	(void)state;
	run_init(&r, src, dst);
	run_go(&r);
	assert_source_running(&r, MIG_OUTCOME_FAILED);
	expect(r.rerr.msg, "RAM layout mismatch: region 0 is 2 MiB at 0x0 here, 4 MiB at 0x0 on source");
	expect(r.serr.msg, "migrate: setup: destination failed: ");
	expect(r.serr.msg, "RAM layout mismatch");
	assert_int_equal(src->dirty_starts, 0);
	print_message("source: %s\n", r.serr.msg);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_incompatible_cpu(void **state)
{
	struct fake_vm *src = fake_new(4 * MiB, 1), *dst = fake_new(4 * MiB, 0);
	struct run r;

	(void)state;
	dst->cpu = "fakecpu-0";
	run_init(&r, src, dst);
	run_go(&r);
	assert_source_running(&r, MIG_OUTCOME_FAILED);
	expect(r.serr.msg, "incompatible source: CPU model fakecpu-1 not supported here");
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_recv_timeout_on_silent_source(void **state)
{
	struct fake_vm *dst = fake_new(4 * MiB, 0);
	struct auth_secret sec;
	struct frame_conn c;
	struct run r;
	pthread_t rt;
	struct err e;

	(void)state;
	run_init(&r, NULL, dst);
	r.rtimeout = 200;
	assert_int_equal(auth_secret_set(&sec, "cluster-secret", 14, &e), 0);
	pthread_create(&rt, NULL, recv_main, &r);
	assert_int_equal(frame_conn_open(&c, r.sfd, &sec, AUTH_CLIENT, 5000, &e), 0);
	pthread_join(rt, NULL);		/* we never send HELLO */
	assert_int_equal(r.rret, -1);
	expect(r.rerr.msg, "migrate: recv: waiting for HELLO: frame: receiving header: timed out");
	frame_conn_close(&c);
	auth_secret_free(&sec);
	run_fini(&r);
	fake_free(dst);
}

static int slow_load(struct fake_vm *f)
{
	(void)f;
	fake_sleep_us(300000);
	return 0;
}

static int cond_switchover(struct run *r, const struct mig_status *s)
{
	(void)r;
	return s->phase == MIG_PHASE_SWITCHOVER && r->rst.state_bytes > 0;
}

static void test_cancel_during_switchover(void **state)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(8 * MiB, 0);
	struct run r;

	(void)state;
	fake_start_guest(src, 4, 0);
	run_init(&r, src, dst);
	dst->on_load = slow_load;
	r.cond = cond_switchover;
	r.action = 1;
	run_go(&r);
	assert_true(r.acted);
	assert_source_running(&r, MIG_OUTCOME_CANCELLED);
	assert_int_equal(src->pauses, 1);
	assert_string_equal(r.serr.msg, "migrate: switchover: cancelled (VM resumed on source)");
	/* The destination loaded but never got GO: it must not run. */
	assert_int_not_equal(r.rret, 0);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static int failing_load(struct fake_vm *f)
{
	(void)f;
	return -1;
}

static void test_dest_load_failure_resumes_source(void **state)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(8 * MiB, 0);
	struct run r;

	(void)state;
	run_init(&r, src, dst);
	dst->on_load = failing_load;
	run_go(&r);
	assert_source_running(&r, MIG_OUTCOME_FAILED);
	expect(r.serr.msg, "migrate: switchover: destination failed: ");
	expect(r.serr.msg, "load_state: fake: load hook failed (VM resumed on source)");
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_not_converged_aborts(void **state)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(8 * MiB, 0);
	struct run r;

	(void)state;
	fake_start_guest(src, 100, 0);
	run_init(&r, src, dst);
	r.p.bandwidth_mbs = 32;
	r.p.downtime_ms = 1;
	r.p.auto_converge = 0;
	r.p.max_rounds = 4;
	run_go(&r);
	assert_source_running(&r, MIG_OUTCOME_NOT_CONVERGED);
	expect(r.serr.msg, "did not converge after 4 rounds");
	expect(r.serr.msg, "(VM keeps running on source)");
	expect(r.rerr.msg, "source gave up: did not converge");
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_after_ack_is_ambiguous),
		cmocka_unit_test(test_no_go_ack_is_ambiguous),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_corrupted_stream),
		cmocka_unit_test(test_truncated_stream),
		cmocka_unit_test(test_incompatible_ram_layout),
		cmocka_unit_test(test_incompatible_cpu),
		cmocka_unit_test(test_recv_timeout_on_silent_source),
		cmocka_unit_test(test_cancel_during_switchover),
		cmocka_unit_test(test_dest_load_failure_resumes_source),
		cmocka_unit_test(test_not_converged_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
