/*
 * dirtier: dirty guest memory at a controlled rate and prove that no page was
 * lost or went stale (snapshot, migration, checkpoint).
 *
 *   dirtier --mib N [--rate PAGES_PER_SEC|0] [--threads T] [--hot MIB]
 *           [--cold-every K] [--full] [--passes P] [--corrupt-at P] [--churn MIB]
 *
 * Every 4 KiB page carries a stamp of the generation that last wrote it:
 *   bytes 0..3    magic 0x44495254 ("DIRT")
 *   bytes 4..7    page index (u32)
 *   bytes 8..15   generation (u64)
 *   bytes 512*k   (k = 1..7) mix(page, generation, k), to catch torn pages
 *   bytes 4088..  generation again (u64), to catch torn pages
 *   --full: every other 8-byte word also holds mix(page, generation, word).
 * The initial fill writes generation 1 everywhere. Pass G (G >= 2) checks every
 * hot page still holds G-1 and rewrites it with G; the cold pages (outside the
 * first --hot MiB) are checked and rewritten only on passes G % K == 0, so they
 * must still hold the previous such G (or 1). Any mismatch prints
 *   VERIFY FAIL page=<idx> expected=<gen> got=<gen> ...
 * and exits 1. The main thread prints one HEARTBEAT line per second; the format
 * is documented in README.md and must stay stable.
 *
 * --churn MIB: one more thread maps MIB of fresh memory, stamps every page
 * (generation = cycle number), holds it for a second, verifies it and
 * unmaps it, over and over. The freed memory is what free page reporting
 * (virtio-balloon) hands to the host while the stamped set is in use: a
 * host that drops a page the guest still uses makes a check fail
 * (region=churn). It prints CHURN cycles=N every 10 cycles.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8)
#define MAGIC 0x44495254u

static uint8_t *mem;
static uint64_t npages, nhot;
static unsigned nthreads = 1, cold_every = 8;
static uint64_t rate;           /* pages per second over all threads, 0 = max */
static int full;
static uint64_t max_passes;     /* 0 = forever */
static uint64_t corrupt_at;     /* self-test: stale-stamp one page after this gen */
static uint64_t churn_pages;    /* --churn: pages the churn thread cycles, 0 = none */
static pthread_barrier_t barrier;

static _Atomic uint64_t done_gen = 0;   /* last generation completely written */
static _Atomic uint64_t pages_dirtied = 0;

/* Console output: one write(2) per line so lines from threads never interleave. */
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(1, buf + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

static uint64_t mix(uint64_t page, uint64_t gen, uint64_t k)
{
	uint64_t x = page * 0x9E3779B97F4A7C15ull ^ gen * 0xC2B2AE3D27D4EB4Full ^ k * 0x165667B19E3779F9ull;
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return x;
}

static int is_mid(unsigned w) { return w % 64 == 0 && w != 0; }  /* byte 512*k */

static void stamp_in(uint8_t *base, uint64_t idx, uint64_t gen)
{
	uint64_t *p = (uint64_t *)(base + idx * PAGE);
	if (full) {
		for (unsigned w = 2; w < WORDS - 1; w++)
			p[w] = mix(idx, gen, w);
	} else {
		for (unsigned w = 64; w < WORDS; w += 64)
			p[w] = mix(idx, gen, w);
	}
	p[WORDS - 1] = gen;
	p[1] = gen;
	p[0] = (uint64_t)MAGIC | (idx << 32);
}

static void stamp(uint64_t idx, uint64_t gen)
{
	stamp_in(mem, idx, gen);
}

static __attribute__((noreturn)) void fail(const uint8_t *base, const char *region, uint64_t idx,
					  uint64_t want_gen, const char *why, unsigned w,
					  uint64_t want, uint64_t have, uint64_t pass)
{
	const uint64_t *p = (const uint64_t *)(base + idx * PAGE);
	uint64_t got = p[1];
	if ((p[0] & 0xffffffffu) != MAGIC || (p[0] >> 32) != (idx & 0xffffffffu))
		got = p[WORDS - 1];
	say("VERIFY FAIL page=%" PRIu64 " expected=%" PRIu64 " got=%" PRIu64
	    " reason=%s off=%u want=0x%" PRIx64 " have=0x%" PRIx64 " head_gen=%" PRIu64
	    " tail_gen=%" PRIu64 " region=%s pass=%" PRIu64,
	    idx, want_gen, got, why, w * 8, want, have, p[1], p[WORDS - 1],
	    region, pass);
	fsync(1);
	_exit(1);
}

static void check_in(const uint8_t *base, const char *region, uint64_t idx, uint64_t gen,
		     uint64_t pass)
{
	const uint64_t *p = (const uint64_t *)(base + idx * PAGE);
	uint64_t head = (uint64_t)MAGIC | (idx << 32);
	if (p[0] != head)
		fail(base, region, idx, gen, (p[0] & 0xffffffffu) != MAGIC ? "magic" : "index", 0,
		     head, p[0], pass);
	if (p[1] != gen)
		fail(base, region, idx, gen, "gen", 1, gen, p[1], pass);
	if (p[WORDS - 1] != gen)
		fail(base, region, idx, gen, "torn", WORDS - 1, gen, p[WORDS - 1], pass);
	for (unsigned w = 2; w < WORDS - 1; w++) {
		if (!full && !is_mid(w))
			continue;
		uint64_t want = mix(idx, gen, w);
		if (p[w] != want)
			fail(base, region, idx, gen, "torn", w, want, p[w], pass);
	}
}

static void check(uint64_t idx, uint64_t gen, uint64_t pass)
{
	check_in(mem, idx < nhot ? "hot" : "cold", idx, gen, pass);
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ull, .tv_nsec = ns % 1000000000ull };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

struct worker {
	pthread_t tid;
	unsigned id;
	uint64_t hot_lo, hot_hi, cold_lo, cold_hi;   /* page ranges [lo, hi) */
	uint64_t t0, done;                           /* pacing */
	uint64_t reported;                           /* part of done added to pages_dirtied */
};

static void report(struct worker *wk)
{
	atomic_fetch_add(&pages_dirtied, wk->done - wk->reported);
	wk->reported = wk->done;
}

/* Rate pacing: this thread may touch rate/nthreads pages per second. */
static void pace(struct worker *wk)
{
	if (++wk->done - wk->reported >= 256)
		report(wk);
	if (!rate)
		return;
	uint64_t r = rate / nthreads ? rate / nthreads : 1;
	uint64_t due = wk->t0 + wk->done * 1000000000ull / r, now = now_ns(CLOCK_MONOTONIC);
	if (due > now)
		sleep_until(due);
	else if (now - due > 1000000000ull)   /* stalled (VM paused?): no catch-up burst */
		wk->t0 += now - due;
}

/* Generation the cold pages hold before pass gen: the last multiple of
 * cold_every below gen (>= 2), else 1 from the initial fill. */
static uint64_t cold_gen_before(uint64_t gen)
{
	uint64_t g = (gen - 1) / cold_every * cold_every;
	return g >= 2 ? g : 1;
}

static void *work(void *arg)
{
	struct worker *wk = arg;
	wk->t0 = now_ns(CLOCK_MONOTONIC);
	for (uint64_t i = wk->hot_lo; i < wk->hot_hi; i++) {
		stamp(i, 1);
		pace(wk);
	}
	for (uint64_t i = wk->cold_lo; i < wk->cold_hi; i++) {
		stamp(i, 1);
		pace(wk);
	}
	report(wk);
	pthread_barrier_wait(&barrier);
	if (wk->id == 0)
		atomic_store(&done_gen, 1);
	for (uint64_t gen = 2; !max_passes || gen <= max_passes + 1; gen++) {
		uint64_t pass = gen - 1;
		for (uint64_t i = wk->hot_lo; i < wk->hot_hi; i++) {
			check(i, gen - 1, pass);
			stamp(i, gen);
			pace(wk);
		}
		if (gen % cold_every == 0) {
			uint64_t cg = cold_gen_before(gen);
			for (uint64_t i = wk->cold_lo; i < wk->cold_hi; i++) {
				check(i, cg, pass);
				stamp(i, gen);
				pace(wk);
			}
		}
		report(wk);
		pthread_barrier_wait(&barrier);
		if (wk->id == 0) {
			atomic_store(&done_gen, gen);
			/* Self-test: make one page stale; the next pass must catch it. */
			if (corrupt_at && gen == corrupt_at) {
				uint64_t victim = nhot / 2;
				stamp(victim, gen - 1);
				say("DIRTIER CORRUPT page=%" PRIu64 " gen=%" PRIu64, victim, gen - 1);
			}
		}
		pthread_barrier_wait(&barrier);
	}
	return NULL;
}

/* --churn: map, stamp, hold, verify, unmap; see the top comment. */
static void *churn(void *arg)
{
	uint64_t n = churn_pages;

	(void)arg;
	for (uint64_t cycle = 1;; cycle++) {
		uint8_t *b = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (b == MAP_FAILED) {
			say("DIRTIER ERROR churn mmap: %s", strerror(errno));
			sleep(1);
			continue;
		}
		for (uint64_t i = 0; i < n; i++)
			stamp_in(b, i, cycle);
		sleep_until(now_ns(CLOCK_MONOTONIC) + 1000000000ull);
		for (uint64_t i = 0; i < n; i++)
			check_in(b, "churn", i, cycle, cycle);
		munmap(b, n * PAGE);
		if (cycle % 10 == 0)
			say("CHURN cycles=%" PRIu64, cycle);
		sleep_until(now_ns(CLOCK_MONOTONIC) + 500000000ull);
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: dirtier --mib N [--rate PAGES_PER_SEC|0=max] [--threads T] [--hot MIB]\n"
			"               [--cold-every K] [--full] [--passes P] [--corrupt-at GEN] [--churn MIB]\n");
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mib", required_argument, 0, 'm' },     { "rate", required_argument, 0, 'r' },
		{ "threads", required_argument, 0, 't' }, { "hot", required_argument, 0, 'h' },
		{ "cold-every", required_argument, 0, 'c' }, { "full", no_argument, 0, 'f' },
		{ "passes", required_argument, 0, 'p' },  { "corrupt-at", required_argument, 0, 'x' },
		{ "churn", required_argument, 0, 'k' },
		{ 0, 0, 0, 0 },
	};
	uint64_t mib = 0, hot_mib = 0;
	pthread_t churn_tid;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': mib = num(optarg); break;
		case 'r': rate = num(optarg); break;
		case 't': nthreads = (unsigned)num(optarg); break;
		case 'h': hot_mib = num(optarg); break;
		case 'c': cold_every = (unsigned)num(optarg); break;
		case 'f': full = 1; break;
		case 'p': max_passes = num(optarg); break;
		case 'x': corrupt_at = num(optarg); break;
		case 'k': churn_pages = num(optarg) * 256; break;
		default: usage();
		}
	}
	if (!mib || optind != argc || !nthreads || nthreads > 256 || cold_every < 2 ||
	    churn_pages > (1ull << 30))
		usage();
	npages = mib * 256;
	nhot = hot_mib && hot_mib < mib ? hot_mib * 256 : npages;
	if (corrupt_at && corrupt_at < 2)
		corrupt_at = 2;

	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		say("DIRTIER ERROR mmap %" PRIu64 " MiB: %s", mib, strerror(errno));
		return 2;
	}
	int locked = mlock(mem, npages * PAGE) == 0;
	say("DIRTIER START mib=%" PRIu64 " hot_mib=%" PRIu64 " rate=%" PRIu64 " threads=%u cold_every=%u full=%d mlock=%d churn_mib=%" PRIu64,
	    mib, nhot / 256, rate, nthreads, cold_every, full, locked, churn_pages / 256);

	struct worker *wk = calloc(nthreads, sizeof(*wk));
	if (!wk || pthread_barrier_init(&barrier, NULL, nthreads)) {
		say("DIRTIER ERROR setup");
		return 2;
	}
	uint64_t ncold = npages - nhot;
	for (unsigned t = 0; t < nthreads; t++) {
		wk[t].id = t;
		wk[t].hot_lo = nhot * t / nthreads;
		wk[t].hot_hi = nhot * (t + 1) / nthreads;
		wk[t].cold_lo = nhot + ncold * t / nthreads;
		wk[t].cold_hi = nhot + ncold * (t + 1) / nthreads;
		if (pthread_create(&wk[t].tid, NULL, work, &wk[t])) {
			say("DIRTIER ERROR pthread_create");
			return 2;
		}
	}

	if (churn_pages && pthread_create(&churn_tid, NULL, churn, NULL)) {
		say("DIRTIER ERROR pthread_create (churn)");
		return 2;
	}

	/* Heartbeats on whole-second boundaries of the monotonic clock since start. */
	/* After a stall (VM paused) missed ticks are skipped, not printed in a burst;
	 * n still counts lines 1, 2, 3, ... and t/mono show the gap. */
	uint64_t start = now_ns(CLOCK_MONOTONIC), tick = 0;
	for (uint64_t n = 1;; n++) {
		uint64_t late = now_ns(CLOCK_MONOTONIC) - start;
		tick = late / 1000000000ull + 1 > tick + 1 ? late / 1000000000ull + 1 : tick + 1;
		sleep_until(start + tick * 1000000000ull);
		uint64_t rt = now_ns(CLOCK_REALTIME), mono = now_ns(CLOCK_MONOTONIC);
		uint64_t g = atomic_load(&done_gen);
		say("HEARTBEAT n=%" PRIu64 " t=%" PRIu64 ".%03" PRIu64 " mono=%" PRIu64 ".%03" PRIu64
		    " gen=%" PRIu64 " passes=%" PRIu64 " pages=%" PRIu64,
		    n, rt / 1000000000ull, rt / 1000000ull % 1000, mono / 1000000000ull, mono / 1000000ull % 1000,
		    g, g ? g - 1 : 0, atomic_load(&pages_dirtied));
		if (max_passes && g >= max_passes + 1)
			break;
	}
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(wk[t].tid, NULL);
	say("DIRTIER DONE passes=%" PRIu64 " gen=%" PRIu64 " pages=%" PRIu64, max_passes, atomic_load(&done_gen),
	    atomic_load(&pages_dirtied));
	return 0;
}
