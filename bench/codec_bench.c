/* Page codec throughput, natively: zero-page scan, encode and decode of
 * realistic guest pages (code, text, zero, random) next to memcpy on this
 * machine. Prints one JSON object per line:
 *   {"bench":"codec","kind":"code","op":"encode","gbps":..,"ratio":..}
 * "ratio" is wire bytes / page bytes for encode. Used by bench/run.sh. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/pagecodec.h"

#define NPAGES 4096		/* 16 MiB working set per kind */
#define PG PAGECODEC_PAGE_SIZE

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Fill buf with the bytes of a file, repeated. */
static int fill_from_file(uint8_t *buf, size_t len, const char *path)
{
	size_t off = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = read(fd, buf + off, len - off);
		if (n <= 0) {
			if (off == 0) {
				close(fd);
				return -1;
			}
			lseek(fd, 0, SEEK_SET);
			continue;
		}
		off += n;
	}
	close(fd);
	return 0;
}

static int fill(uint8_t *buf, const char *kind)
{
	size_t len = (size_t)NPAGES * PG;

	if (!strcmp(kind, "zero")) {
		memset(buf, 0, len);
		return 0;
	}
	if (!strcmp(kind, "random")) {
		for (size_t off = 0; off < len;) {
			ssize_t n = getrandom(buf + off, len - off, 0);
			if (n <= 0)
				return -1;
			off += n;
		}
		return 0;
	}
	if (!strcmp(kind, "code"))	/* machine code: a big shared library */
		return fill_from_file(buf, len, "/usr/lib/x86_64-linux-gnu/libcrypto.so.3");
	/* text: license texts and docs */
	return fill_from_file(buf, len, "/usr/share/common-licenses/GPL-3");
}

static void report(const char *kind, const char *op, double bytes, double secs, double ratio)
{
	printf("{\"bench\":\"codec\",\"kind\":\"%s\",\"op\":\"%s\",\"gbps\":%.3f,\"ratio\":%.4f}\n",
	       kind, op, bytes / secs / 1e9, ratio);
}

int main(int argc, char **argv)
{
	static const char *kinds[] = { "zero", "text", "code", "random" };
	int reps = argc > 1 ? atoi(argv[1]) : 8;
	size_t len = (size_t)NPAGES * PG;
	uint8_t *src = aligned_alloc(4096, len), *dst = aligned_alloc(4096, len);
	uint8_t *wire = malloc((size_t)NPAGES * PAGECODEC_MAX_RECORD);
	struct pagecodec_enc enc;
	struct pagecodec_dec *dec = malloc(sizeof(*dec));
	struct err e = { { 0 } };
	volatile int sink = 0;

	if (!src || !dst || !wire || !dec || reps < 1) {
		fprintf(stderr, "codec_bench: out of memory or bad repetitions\n");
		return 1;
	}
	if (pagecodec_enc_init(&enc, 0, &e) < 0) {
		fprintf(stderr, "codec_bench: %s\n", e.msg);
		return 1;
	}
	memset(dst, 1, len);
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		const char *kind = kinds[k];
		size_t pos = 0;
		double t;

		if (fill(src, kind) < 0) {
			fprintf(stderr, "codec_bench: cannot make %s pages\n", kind);
			return 1;
		}
		t = now();
		for (int r = 0; r < reps; r++) {
			memcpy(dst, src, len);
			sink += dst[r];
		}
		report(kind, "memcpy", (double)len * reps, now() - t, 1.0);

		t = now();
		for (int r = 0; r < reps; r++)
			for (int i = 0; i < NPAGES; i++)
				sink += pagecodec_is_zero(src + (size_t)i * PG);
		report(kind, "zero_scan", (double)len * reps, now() - t, 1.0);

		t = now();
		for (int r = 0; r < reps; r++) {
			pos = 0;
			for (int i = 0; i < NPAGES; i++)
				if (pagecodec_encode(&enc, i, src + (size_t)i * PG, wire,
						     (size_t)NPAGES * PAGECODEC_MAX_RECORD, &pos, &e) < 0) {
					fprintf(stderr, "codec_bench: %s\n", e.msg);
					return 1;
				}
		}
		report(kind, "encode", (double)len * reps, now() - t, (double)pos / len);

		t = now();
		for (int r = 0; r < reps; r++) {
			memset(dst, 1, PG);	/* keep ZERO records honest: dst not zero */
			pagecodec_dec_init(dec, NPAGES);
			if (pagecodec_decode_to_mem(dec, wire, pos, dst, &e) < 0) {
				fprintf(stderr, "codec_bench: %s\n", e.msg);
				return 1;
			}
		}
		report(kind, "decode", (double)len * reps, now() - t, (double)pos / len);
		if (memcmp(src, dst, len)) {
			fprintf(stderr, "codec_bench: %s pages did not round-trip\n", kind);
			return 1;
		}
	}
	pagecodec_enc_fini(&enc);
	return sink == -1;
}
