#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lib/cpuacct.h"

static double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Burn 60 ms of this thread's CPU: the line reports at least most of it
 * for the process and the thread, and a host share within 0..100%. */
static void test_burn(void **state)
{
	struct cpuacct m;
	volatile unsigned long x = 0;
	double t0, proc, thr, busy, wall;
	long ncpu;
	char buf[200];

	(void)state;
	cpuacct_mark(&m);
	assert_true(m.host_all > 0);	/* /proc/stat is readable here */
	t0 = wall_ms();
	while (wall_ms() - t0 < 60)
		x++;
	cpuacct_format(&m, "this thread", buf, sizeof(buf));
	print_message("%s\n", buf);
	assert_int_equal(sscanf(buf, "cpu ms: process %lf, this thread %lf, host busy %lf%% of %ld CPUs over %lf ms wall",
				&proc, &thr, &busy, &ncpu, &wall), 5);
	assert_true(thr >= 20 && thr <= wall + 20);	/* ticks are coarse on a busy machine */
	assert_true(proc >= thr - 1);
	assert_true(busy >= 0 && busy <= 100);
	assert_true(ncpu >= 1);
	assert_true(wall >= 60 && wall < 10000);
}

/* The thread's CPU clock never goes back and counts work done; a sleep
 * adds (almost) nothing. Bounds are loose: no timing claim. */
static void test_thread_ns(void **state)
{
	struct timespec nap = { 0, 50 * 1000000L };
	volatile unsigned long x = 0;
	uint64_t a, b, c;
	double t0;

	(void)state;
	a = cpuacct_thread_ns();
	t0 = wall_ms();
	while (wall_ms() - t0 < 30)
		x++;
	b = cpuacct_thread_ns();
	assert_true(a > 0 && b > a);
	nanosleep(&nap, NULL);
	c = cpuacct_thread_ns();
	assert_true(c >= b);
	assert_true(c - b < 40 * 1000000ull);	/* asleep 50 ms: not counted */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burn),
		cmocka_unit_test(test_thread_ns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
