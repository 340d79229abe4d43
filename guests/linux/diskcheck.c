/*
 * diskcheck: write a known pattern to a block device or file, make it durable,
 * read it back from the device and verify it.
 *
 *   diskcheck [--dev PATH (/dev/vda)] [--bs BYTES (4096)] [--blocks N (all)]
 *             [--seed S (1)] [--mode verify|write|check]
 *
 * Modes: verify = write, fdatasync, read back and compare (default);
 *        write  = write and fdatasync only (the host checks the bytes);
 *        check  = compare only (the pattern was written earlier, e.g. before
 *                 a migration, or by the host).
 * Pattern of block b (bs bytes, at offset b*bs), so the host can recompute it:
 *   bytes 0..7   "DISKCHK1"
 *   bytes 8..15  b, u64 little endian
 *   bytes 16..23 seed, u64 little endian
 *   byte  i>=24  (b * 31 + i + seed) & 0xff
 * Output: "DISK OK blocks=<N> bs=<B> mode=<m> seed=<S> direct=<0|1>" (all modes) or
 *         "DISK FAIL block=<b> offset=<byte offset in device> expected=0x<hh> got=0x<hh> ..."
 * Reads and writes use O_DIRECT when the target supports it, so the read-back
 * comes from the device, not the page cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void fill(uint8_t *p, size_t bs, uint64_t b, uint64_t seed)
{
	memcpy(p, "DISKCHK1", 8);
	for (int i = 0; i < 8; i++) {
		p[8 + i] = (uint8_t)(b >> (8 * i));
		p[16 + i] = (uint8_t)(seed >> (8 * i));
	}
	for (size_t i = 24; i < bs; i++)
		p[i] = (uint8_t)(b * 31 + i + seed);
}

static int full_io(int wr, int fd, uint8_t *p, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = wr ? pwrite(fd, p + done, len - done, off + done) : pread(fd, p + done, len - done, off + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", required_argument, 0, 'd' },  { "bs", required_argument, 0, 'b' },
		{ "blocks", required_argument, 0, 'n' }, { "seed", required_argument, 0, 's' },
		{ "mode", required_argument, 0, 'm' }, { 0, 0, 0, 0 },
	};
	const char *dev = "/dev/vda", *mode = "verify";
	uint64_t bs = 4096, blocks = 0, seed = 1;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'b': bs = strtoull(optarg, NULL, 0); break;
		case 'n': blocks = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'm': mode = optarg; break;
		default:
			fprintf(stderr, "usage: diskcheck [--dev PATH] [--bs BYTES] [--blocks N] [--seed S] "
					"[--mode verify|write|check]\n");
			return 2;
		}
	}
	int do_write = !strcmp(mode, "verify") || !strcmp(mode, "write");
	int do_read = !strcmp(mode, "verify") || !strcmp(mode, "check");
	if ((!do_write && !do_read) || bs < 512 || bs % 512 || bs > (64u << 20)) {
		printf("DISK FAIL block=-1 reason=usage mode=%s bs=%" PRIu64 "\n", mode, bs);
		return 2;
	}
	int direct = 1;
	int fd = open(dev, (do_write ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		direct = 0;
		fd = open(dev, do_write ? O_RDWR : O_RDONLY);
	}
	if (fd < 0) {
		printf("DISK FAIL block=-1 reason=open dev=%s err=%s\n", dev, strerror(errno));
		return 1;
	}
	struct stat st;
	uint64_t size = 0;
	if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size))
			size = 0;
	} else if (fstat(fd, &st) == 0) {
		size = st.st_size;
	}
	if (!blocks)
		blocks = size / bs;
	if (!blocks || (size && blocks * bs > size && S_ISBLK(st.st_mode))) {
		printf("DISK FAIL block=-1 reason=size dev=%s size=%" PRIu64 " blocks=%" PRIu64 " bs=%" PRIu64 "\n",
		       dev, size, blocks, bs);
		return 1;
	}
	uint8_t *want, *got;
	if (posix_memalign((void **)&want, 4096, bs) || posix_memalign((void **)&got, 4096, bs)) {
		printf("DISK FAIL block=-1 reason=nomem\n");
		return 1;
	}
	if (do_write) {
		for (uint64_t b = 0; b < blocks; b++) {
			fill(want, bs, b, seed);
			if (full_io(1, fd, want, bs, (off_t)(b * bs))) {
				printf("DISK FAIL block=%" PRIu64 " offset=%" PRIu64 " reason=write err=%s\n", b, b * bs,
				       strerror(errno));
				return 1;
			}
		}
		if (fdatasync(fd) || fsync(fd)) {
			printf("DISK FAIL block=-1 reason=fsync err=%s\n", strerror(errno));
			return 1;
		}
	}
	if (do_read) {
		if (!direct)   /* best effort: make the read-back come from the medium */
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		for (uint64_t b = 0; b < blocks; b++) {
			fill(want, bs, b, seed);
			if (full_io(0, fd, got, bs, (off_t)(b * bs))) {
				printf("DISK FAIL block=%" PRIu64 " offset=%" PRIu64 " reason=read err=%s\n", b, b * bs,
				       errno ? strerror(errno) : "short read");
				return 1;
			}
			if (memcmp(want, got, bs)) {
				size_t i = 0;
				while (want[i] == got[i])
					i++;
				printf("DISK FAIL block=%" PRIu64 " offset=%" PRIu64 " expected=0x%02x got=0x%02x reason=data\n",
				       b, b * bs + i, want[i], got[i]);
				return 1;
			}
		}
	}
	printf("DISK OK blocks=%" PRIu64 " bs=%" PRIu64 " mode=%s seed=%" PRIu64 " direct=%d\n", blocks, bs, mode, seed, direct);
	return 0;
}
