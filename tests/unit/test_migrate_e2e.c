/* End-to-end migration between two fake VMs in one process: sender and
 * receiver in threads over a socketpair (or loopback TCP). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/frame.h"
#include "migrate/recv.h"
#include "migrate/send.h"
#include "test_migrate_fake.h"
#include "test_migrate_run.h"

static void test_idle_tcp_throughput(void **state)
{
	struct fake_vm *src = fake_new(64 * MiB, 1), *dst = fake_new(64 * MiB, 0);
	struct run r;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l, one = 1;
	struct mig_status s;

	(void)state;
	run_init(&r, src, dst);
	close(r.sfd);
	close(r.dfd);
	l = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	r.sfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(r.sfd, (struct sockaddr *)&a, sizeof(a)), 0);
	r.dfd = accept(l, NULL, NULL);
	close(l);
	setsockopt(r.sfd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	if (getenv("MIG_NO_LZ4"))
		r.p.compress = 0;
	run_go(&r);
	assert_success(&r);
	mig_stats_get(&r.live, &s);
	assert_int_equal(s.round, 1);	/* round 0 + the final round */
	/* the destination (mig_recv, MIG_FEAT_SYNC) answered SYNC before the pause */
	assert_true(s.t.sync > 0);
	print_message("idle 64 MiB random RAM over loopback TCP: %llu ms, %.0f MB/s, "
		      "%llu bytes, downtime %llu ms, setup %llu ms, SYNC -> SYNCED %.1f ms\n",
		      (unsigned long long)r.ms, 64.0 * MiB / 1e6 / (r.ms / 1000.0),
		      (unsigned long long)s.bytes_sent, (unsigned long long)s.downtime_ms,
		      (unsigned long long)s.setup_ms, s.t.sync / 1000.0);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_idle_zero_and_compressible(void **state)
{
	struct fake_vm *src = fake_new(16 * MiB, 2), *dst = fake_new(16 * MiB, 1);
	struct run r;
	struct mig_status s;

	(void)state;
	memset(src->ram, 0, 4 * MiB);		/* some zero pages */
	src->state_extra = 3 * MiB;		/* STATE split into slices */
	run_init(&r, src, dst);
	r.p.compress = 1;			/* auto would leave LZ4 off (no cap) */
	run_go(&r);
	assert_success(&r);
	mig_stats_get(&r.live, &s);
	assert_int_equal(s.zero_pages, 1024);
	assert_true(s.lz4_pages > 0);
	assert_true(s.bytes_sent < 16 * MiB);
	assert_true(r.rst.state_bytes > 3 * MiB);
	/* the destination's pre-copy accounting (its summary line) */
	assert_true(r.rst.reader_cpu_ms > 0 && r.rst.tag_ms > 0 && r.rst.apply_cpu_ms > 0);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_converges_modest_dirty_rate(void **state)
{
	struct fake_vm *src = fake_new(64 * MiB, 1), *dst = fake_new(64 * MiB, 0);
	struct run r;
	struct mig_status s;

	(void)state;
	fake_start_guest(src, 4, 0);		/* ~4000 pages/s */
	run_init(&r, src, dst);
	r.p.bandwidth_mbs = 400;
	r.p.downtime_ms = 50;
	run_go(&r);
	assert_success(&r);
	mig_stats_get(&r.live, &s);
	assert_true(s.round >= 1);
	assert_true(s.pages_sent > src->npages);	/* dirty pages re-sent */
	assert_int_equal(s.throttle_pct, 0);
	assert_int_equal(s.forced, 0);
	assert_true(src->gen > 0);
	print_message("modest dirty rate: %u rounds, %llu pages, downtime %llu ms, dirty rate %llu p/s\n",
		      s.round, (unsigned long long)s.pages_sent,
		      (unsigned long long)s.downtime_ms, (unsigned long long)s.dirty_rate);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_auto_converge(void **state)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(8 * MiB, 0);
	struct run r;
	struct mig_status s;

	(void)state;
	fake_start_guest(src, 100, 0);		/* ~100k pages/s over 2048 pages */
	run_init(&r, src, dst);
	r.p.bandwidth_mbs = 32;
	r.p.downtime_ms = 20;
	r.p.max_rounds = 60;
	run_go(&r);
	assert_success(&r);
	mig_stats_get(&r.live, &s);
	assert_true(src->max_throttle >= 20);
	print_message("auto-converge: %u rounds, max throttle %d%%, downtime %llu ms\n",
		      s.round, src->max_throttle, (unsigned long long)s.downtime_ms);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

/* memfd-backed RAM like the vmm's: the source sends holes as zero pages
 * without reading them (they stay holes), pages written meanwhile (also
 * into holes) still arrive, and the destination's stale pages under zero
 * runs are punched out rather than faulted in and cleared. */
static void test_memfd_holes(void **state)
{
	struct fake_vm *src = fake_new_memfd(16 * MiB), *dst = fake_new_memfd(16 * MiB);
	uint64_t data_pages[] = { 3, 4, 5, 1000, 2047, 2048, 4000 };
	struct run r;
	struct mig_status s;

	(void)state;
	for (size_t i = 0; i < sizeof(data_pages) / sizeof(data_pages[0]); i++)
		memset(src->ram + data_pages[i] * 4096, 0x5a + (int)i, 4096);
	memset(dst->ram, 0xcc, 16 * MiB);	/* stale: every page must be replaced */
	fake_start_guest(src, 4, 64);		/* writes into holes of pages 0..63 meanwhile */
	run_init(&r, src, dst);
	r.p.compress = 0;			/* LZ4 off must mean off */
	run_go(&r);
	/* before anything reads the RAM (reading a hole allocates a page) */
	assert_true(lseek(src->memfd, 3000 * 4096, SEEK_DATA) == 4000 * 4096);
	assert_true(lseek(dst->memfd, 3000 * 4096, SEEK_DATA) == 4000 * 4096);
	assert_true(lseek(dst->memfd, 2100 * 4096, SEEK_HOLE) == 2100 * 4096);
	assert_success(&r);			/* compares all RAM */
	mig_stats_get(&r.live, &s);
	assert_true(s.zero_pages >= 4096 - 64 - 7);
	assert_true(s.hole_pages > 0 && s.hole_pages <= s.zero_pages);
	assert_int_equal(s.lz4_pages, 0);	/* compressible, but compress = 0 */
	assert_true(src->gen > 0);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static int cond_round0(struct run *r, const struct mig_status *s)
{
	(void)r;
	return s->phase == MIG_PHASE_PRECOPY && s->round == 0 && s->pages_sent > 2000;
}

static int cond_round3(struct run *r, const struct mig_status *s)
{
	(void)r;
	return s->phase == MIG_PHASE_PRECOPY && s->round >= 3;
}

static int cond_round1(struct run *r, const struct mig_status *s)
{
	(void)r;
	return s->phase == MIG_PHASE_PRECOPY && s->round >= 1;
}

static void cancel_or_kill(int (*cond)(struct run *, const struct mig_status *), int action,
			   const char *want_src, enum mig_outcome want)
{
	struct fake_vm *src = fake_new(16 * MiB, 1), *dst = fake_new(16 * MiB, 0);
	struct run r;

	fake_start_guest(src, 50, 1024);
	run_init(&r, src, dst);
	r.p.bandwidth_mbs = 25;	/* round 0 lasts ~0.4 s: the watcher sees it even on a busy machine */
	r.p.downtime_ms = 1;		/* never converges on its own, */
	r.p.state_size_est = 1ull << 30;	/* is never forced to (1 GiB "state"), */
	r.p.auto_converge = 0;
	r.p.max_rounds = 1000000;	/* and gives the watcher 20 s, however */
	r.p.max_time_ms = 20000;	/* fast empty rounds go on a busy machine */
	r.cond = cond;
	r.action = action;
	run_go(&r);
	assert_true(r.acted);
	assert_source_running(&r, want);
	if (!strstr(r.serr.msg, want_src))
		fail_msg("source error '%s' lacks '%s'", r.serr.msg, want_src);
	assert_non_null(strstr(r.serr.msg, "(VM keeps running on source)"));
	assert_int_equal(src->pauses, 0);
	print_message("source: %s\n  dest: %s\n", r.serr.msg, r.rerr.msg);
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

static void test_cancel_round0(void **state)
{
	(void)state;
	cancel_or_kill(cond_round0, 1, "migrate: round 0: cancelled", MIG_OUTCOME_CANCELLED);
}

static void test_cancel_later(void **state)
{
	(void)state;
	cancel_or_kill(cond_round3, 1, ": cancelled", MIG_OUTCOME_CANCELLED);
}

static void test_kill_dest_round1(void **state)
{
	(void)state;
	cancel_or_kill(cond_round1, 2, "migrate: round ", MIG_OUTCOME_FAILED);
}

static void test_kill_dest_later(void **state)
{
	(void)state;
	cancel_or_kill(cond_round3, 2, "migrate: round ", MIG_OUTCOME_FAILED);
}

static int hook_kill(struct fake_vm *f)
{
	shutdown(f->hook_fd, SHUT_RDWR);
	return 0;
}

static void test_kill_dest_during_switchover(void **state)
{
	struct fake_vm *src = fake_new(8 * MiB, 1), *dst = fake_new(8 * MiB, 0);
	struct run r;

	(void)state;
	fake_start_guest(src, 4, 0);
	run_init(&r, src, dst);
	dst->on_load = hook_kill;
	dst->hook_fd = r.dfd;
	run_go(&r);
	assert_source_running(&r, MIG_OUTCOME_FAILED);
	assert_int_equal(src->pauses, 1);
	assert_string_equal(r.serr.msg, "migrate: switchover: destination closed connection "
			    "before acknowledging (VM resumed on source)");
	run_fini(&r);
	fake_free(src);
	fake_free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_tcp_throughput),
		cmocka_unit_test(test_idle_zero_and_compressible),
		cmocka_unit_test(test_converges_modest_dirty_rate),
		cmocka_unit_test(test_auto_converge),
		cmocka_unit_test(test_cancel_round0),
		cmocka_unit_test(test_cancel_later),
		cmocka_unit_test(test_kill_dest_round1),
		cmocka_unit_test(test_kill_dest_later),
		cmocka_unit_test(test_kill_dest_during_switchover),
		cmocka_unit_test(test_memfd_holes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
