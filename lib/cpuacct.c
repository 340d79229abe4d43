#include "lib/cpuacct.h"

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t cpuacct__tv_us(const struct timeval *a, const struct timeval *b)
{
	return (uint64_t)(a->tv_sec + b->tv_sec) * 1000000ull + (uint64_t)(a->tv_usec + b->tv_usec);
}

static void cpuacct__host(uint64_t *busy, uint64_t *all)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");

	*busy = *all = 0;
	if (!f)
		return;
	/* user nice system idle iowait irq softirq steal */
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		*busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
		*all = *busy + v[3] + v[4];
	}
	fclose(f);
}

void cpuacct_mark(struct cpuacct *m)
{
	struct timespec ts;
	struct rusage ru;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	m->wall_us = (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
	m->proc_us = getrusage(RUSAGE_SELF, &ru) == 0 ? cpuacct__tv_us(&ru.ru_utime, &ru.ru_stime) : 0;
	m->thread_us = getrusage(RUSAGE_THREAD, &ru) == 0 ? cpuacct__tv_us(&ru.ru_utime, &ru.ru_stime) : 0;
	cpuacct__host(&m->host_busy, &m->host_all);
}

uint64_t cpuacct_thread_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

char *cpuacct_format(const struct cpuacct *since, const char *who, char *buf, size_t cap)
{
	struct cpuacct now;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t all;

	cpuacct_mark(&now);
	all = now.host_all - since->host_all;
	snprintf(buf, cap, "cpu ms: process %.1f, %s %.1f, host busy %.0f%% of %ld CPUs over %.1f ms wall",
		 (now.proc_us - since->proc_us) / 1000.0, who, (now.thread_us - since->thread_us) / 1000.0,
		 all ? 100.0 * (double)(now.host_busy - since->host_busy) / (double)all : 0.0,
		 ncpu, (now.wall_us - since->wall_us) / 1000.0);
	return buf;
}
