/* Harness for the migration tests: a source and a destination fake VM,
 * sender in the calling thread, receiver (and optionally a watcher that
 * cancels or kills the link once a condition on the live stats holds) in
 * threads. Include after cmocka.h and test_migrate_fake.h. */
#ifndef TEST_MIGRATE_RUN_H
#define TEST_MIGRATE_RUN_H

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/recv.h"
#include "migrate/send.h"

#define MiB (1ull << 20)

struct run {
	struct fake_vm *src, *dst;
	struct mig_params p;
	struct auth_secret ssec, dsec;
	int sfd, dfd;
	struct mig_stats live;
	volatile int cancel;
	int rtimeout;
	int sret, rret;
	struct err serr, rerr;
	struct mig_recv_stats rst;
	/* watcher: act once cond holds */
	int (*cond)(struct run *r, const struct mig_status *s);
	int action;			/* 1 = cancel, 2 = shutdown dest fd */
	int acted, stop_watch;
	uint64_t ms;
	void *(*recv_fn)(void *);	/* custom receiver thread, default recv_main */
	/* proxy between sfd and dfd: flip a byte / cut the src->dst stream */
	int proxy, pa, pb;
	long corrupt_at, cut_at;
	uint8_t xor;
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline void run_init(struct run *r, struct fake_vm *src, struct fake_vm *dst)
{
	struct err e;
	int sv[2];

	memset(r, 0, sizeof(*r));
	r->src = src;
	r->dst = dst;
	mig_params_default(&r->p);
	r->p.io_timeout_ms = 5000;
	r->rtimeout = 5000;
	assert_int_equal(auth_secret_set(&r->ssec, "cluster-secret", 14, &e), 0);
	assert_int_equal(auth_secret_set(&r->dsec, "cluster-secret", 14, &e), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r->sfd = sv[0];
	r->dfd = sv[1];
	mig_stats_init(&r->live);
}

static inline void run_fini(struct run *r)
{
	close(r->sfd);
	close(r->dfd);
	auth_secret_free(&r->ssec);
	auth_secret_free(&r->dsec);
	mig_stats_destroy(&r->live);
}

static void *recv_main(void *arg)
{
	struct run *r = arg;

	r->rret = mig_recv(r->dst, &fake_ops, r->dfd, &r->dsec, r->rtimeout, &r->rst, &r->rerr);
	if (r->rret != 0)
		shutdown(r->dfd, SHUT_RDWR);	/* as a caller discarding the VM */
	return NULL;
}

static void *watch_main(void *arg)
{
	struct run *r = arg;
	struct mig_status s;

	while (!__atomic_load_n(&r->stop_watch, __ATOMIC_ACQUIRE)) {
		mig_stats_get(&r->live, &s);
		if (r->cond(r, &s)) {
			if (r->action == 1)
				r->cancel = 1;
			else
				shutdown(r->dfd, SHUT_RDWR);
			r->acted = 1;
			return NULL;
		}
		fake_sleep_us(500);
	}
	return NULL;
}

static void *proxy_main(void *arg)
{
	struct run *r = arg;
	static __thread uint8_t buf[65536];
	long fwd = 0;

	for (;;) {
		struct pollfd pf[2] = { { r->pa, POLLIN, 0 }, { r->pb, POLLIN, 0 } };
		ssize_t n;

		if (poll(pf, 2, 10000) <= 0)
			break;
		if (pf[1].revents) {	/* dst -> src, untouched */
			n = read(r->pb, buf, sizeof(buf));
			if (n <= 0 || send(r->pa, buf, n, MSG_NOSIGNAL) != n)
				break;
		}
		if (pf[0].revents) {
			n = read(r->pa, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (r->cut_at >= 0 && fwd + n > r->cut_at)
				n = r->cut_at - fwd;
			if (r->corrupt_at >= fwd && r->corrupt_at < fwd + n)
				buf[r->corrupt_at - fwd] ^= r->xor;
			if (n > 0 && send(r->pb, buf, n, MSG_NOSIGNAL) != n)
				break;
			fwd += n;
			if (r->cut_at >= 0 && fwd >= r->cut_at)
				break;
		}
	}
	shutdown(r->pa, SHUT_RDWR);
	shutdown(r->pb, SHUT_RDWR);
	return NULL;
}

static inline void run_use_proxy(struct run *r, long corrupt_at, uint8_t xor, long cut_at)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r->proxy = 1;
	r->pa = r->dfd;
	r->dfd = sv[0];
	r->pb = sv[1];
	r->corrupt_at = corrupt_at;
	r->xor = xor;
	r->cut_at = cut_at;
}

static inline void run_go(struct run *r)
{
	pthread_t rt, wt, pt;
	uint64_t t0 = now_ns();

	if (r->proxy)
		pthread_create(&pt, NULL, proxy_main, r);
	pthread_create(&rt, NULL, r->recv_fn ? r->recv_fn : recv_main, r);
	if (r->cond)
		pthread_create(&wt, NULL, watch_main, r);
	r->sret = mig_send(r->src, &fake_ops, r->sfd, &r->ssec, &r->p, &r->live,
			   &r->cancel, &r->serr);
	if (r->sret != MIG_RET_OK)
		shutdown(r->sfd, SHUT_RDWR);	/* as a caller closing the link */
	pthread_join(rt, NULL);
	__atomic_store_n(&r->stop_watch, 1, __ATOMIC_RELEASE);
	if (r->cond)
		pthread_join(wt, NULL);
	if (r->proxy) {
		pthread_join(pt, NULL);
		close(r->pa);
		close(r->pb);
	}
	r->ms = (now_ns() - t0) / 1000000;
}

static inline void assert_same_ram(struct fake_vm *a, struct fake_vm *b)
{
	assert_int_equal(a->size, b->size);
	for (uint64_t pg = 0; pg < a->npages; pg++)
		if (memcmp(a->ram + pg * 4096, b->ram + pg * 4096, 4096)) {
			fail_msg("page %llu differs", (unsigned long long)pg);
		}
	assert_true(b->loaded);
	assert_int_equal(a->counter, b->loaded_counter);
}

static inline void assert_success(struct run *r)
{
	struct mig_status s;

	if (r->sret != MIG_RET_OK || r->rret != 0)
		fail_msg("send %d '%s' / recv %d '%s'", r->sret, r->serr.msg, r->rret, r->rerr.msg);
	mig_stats_get(&r->live, &s);
	assert_int_equal(s.outcome, MIG_OUTCOME_SUCCESS);
	assert_int_equal(s.phase, MIG_PHASE_DONE);
	assert_true(r->src->paused);		/* source stays paused */
	assert_int_equal(r->src->resumes, 0);
	assert_int_equal(r->src->dirty_starts, 1);
	assert_int_equal(r->src->dirty_stops, 1);
	assert_int_equal(r->rst.state, MIG_RX_RUNNING);
	assert_same_ram(r->src, r->dst);
}

/* Failed before ACK: the source runs (never paused, or paused and resumed). */
static inline void assert_source_running(struct run *r, enum mig_outcome want)
{
	struct mig_status s;

	assert_int_equal(r->sret, MIG_RET_RESUMED);
	assert_int_not_equal(r->rret, 0);
	assert_int_equal(r->src->paused, 0);
	assert_int_equal(r->src->pauses, r->src->resumes);
	assert_int_equal(r->src->throttle, 0);
	if (r->src->dirty_starts)
		assert_int_equal(r->src->dirty_stops, 1);
	mig_stats_get(&r->live, &s);
	assert_int_equal(s.outcome, want);
	assert_false(r->dst->loaded && r->rret == 0);
}

#endif
