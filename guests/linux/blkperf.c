/*
 * blkperf: sequential block-device throughput, timed inside the guest.
 *
 *   blkperf [--dev PATH (/dev/vda)] [--mib N (64)] [--runs R (3)] [--bs KIB (1024)]
 *
 * Each run writes N MiB from offset 0 in BS-sized O_DIRECT writes, then
 * fdatasync (a FLUSH on virtio-blk), timed together; then reads the same N MiB
 * back with O_DIRECT (no guest page cache on either side). The data is a
 * non-zero pattern that changes every run, so nothing below can skip it.
 * Output, one line each:
 *   BLKPERF run=<i> op=write mib=<N> s=<seconds> mbps=<MB/s, 10^6 bytes>
 *   BLKPERF run=<i> op=read mib=<N> s=<seconds> mbps=<MB/s>
 *   BLKPERF DONE runs=<R>
 *   BLKPERF FAIL run=<i> op=<open|size|write|fsync|read|usage|nomem> <error>
 * Exit status 0 when every run completed, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(int run, const char *op, const char *what)
{
	printf("BLKPERF FAIL run=%d op=%s %s\n", run, op, what);
	fflush(stdout);
	return 1;
}

/* Full transfer of len bytes at off; short transfers are retried. */
static int xfer(int fd, int wr, uint8_t *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t r = wr ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		buf += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

static void report(int run, const char *op, unsigned mib, double s)
{
	printf("BLKPERF run=%d op=%s mib=%u s=%.4f mbps=%.2f\n", run, op, mib, s,
	       (double)mib * 1048576.0 / 1e6 / s);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/vda";
	unsigned long mib = 64, runs = 3, bs_kib = 1024;
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' }, { "mib", required_argument, NULL, 'm' },
		{ "runs", required_argument, NULL, 'r' }, { "bs", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	char err[160];
	uint8_t *buf = NULL;
	uint64_t size = 0;
	size_t bs;
	int c, fd = -1, rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		unsigned long v;

		if (c == 'd') {
			dev = optarg;
			continue;
		}
		if (c == '?')
			return fail(0, "usage", "unknown option");
		errno = 0;
		v = strtoul(optarg, &end, 10);
		if (errno || !end || *end || v == 0 || v > (1UL << 20))
			return fail(0, "usage", "--mib/--runs/--bs need a number from 1 to 1048576");
		if (c == 'm')
			mib = v;
		else if (c == 'r')
			runs = v;
		else
			bs_kib = v;
	}
	bs = bs_kib * 1024;
	/* Whole blocks only: the last block must not run past N MiB. */
	if ((mib * 1024) % bs_kib)
		return fail(0, "usage", "--mib must be a multiple of --bs");
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		snprintf(err, sizeof(err), "%s: %s", dev, strerror(errno));
		return fail(0, "open", err);
	}
	if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		struct stat st;

		if (fstat(fd, &st) < 0)
			st.st_size = 0;
		size = (uint64_t)st.st_size;
	}
	if (size < (uint64_t)mib << 20) {
		snprintf(err, sizeof(err), "%s: %llu bytes, need %lu MiB", dev, (unsigned long long)size, mib);
		rc = fail(0, "size", err);
		goto out;
	}
	/* O_DIRECT wants the buffer aligned to the logical block size (<= 4096). */
	if (posix_memalign((void **)&buf, 4096, bs)) {
		rc = fail(0, "nomem", "buffer");
		goto out;
	}
	for (unsigned long run = 1; run <= runs; run++) {
		size_t n = (size_t)(mib << 20) / bs;
		double t0, t1;
		int r = 0;

		for (size_t i = 0; i < bs; i++)
			buf[i] = (uint8_t)(i * 7 + run * 13 + 1) | 1;
		t0 = now_s();
		for (size_t i = 0; i < n && r == 0; i++)
			r = xfer(fd, 1, buf, bs, (off_t)(i * bs));
		if (r) {
			rc = fail((int)run, "write", strerror(-r));
			goto out;
		}
		if (fdatasync(fd) < 0) {
			rc = fail((int)run, "fsync", strerror(errno));
			goto out;
		}
		t1 = now_s();
		report((int)run, "write", (unsigned)mib, t1 - t0);
		t0 = now_s();
		for (size_t i = 0; i < n && r == 0; i++)
			r = xfer(fd, 0, buf, bs, (off_t)(i * bs));
		if (r) {
			rc = fail((int)run, "read", strerror(-r));
			goto out;
		}
		t1 = now_s();
		report((int)run, "read", (unsigned)mib, t1 - t0);
	}
	printf("BLKPERF DONE runs=%lu\n", runs);
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
