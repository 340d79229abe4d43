/* CPU accounting for "where did the time go" lines (migration, snapshot):
 * this process, the calling thread, and the whole host (/proc/stat). */
#ifndef LIB_CPUACCT_H
#define LIB_CPUACCT_H

#include <stddef.h>
#include <stdint.h>

struct cpuacct {
	uint64_t wall_us;
	uint64_t proc_us;		/* utime+stime of every thread of this process */
	uint64_t thread_us;		/* ... of the calling thread */
	uint64_t host_busy, host_all;	/* /proc/stat ticks, all CPUs; 0 if unreadable */
};

void cpuacct_mark(struct cpuacct *m);
/* CPU time of the calling thread so far (ns; CLOCK_THREAD_CPUTIME_ID). */
uint64_t cpuacct_thread_ns(void);
/* "cpu ms: process P, <who> T, host busy B% of N CPUs" for the span since
 * `since` (taken by the same thread). Returns buf. */
char *cpuacct_format(const struct cpuacct *since, const char *who, char *buf, size_t cap);

#endif
