#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>
#include <lz4.h>

#include "lib/pagecodec.h"

#define PS PAGECODEC_PAGE_SIZE
#define NPAGES 64

static uint8_t *mkpages(void)
{
	uint8_t *m = calloc(NPAGES, PS);

	srand(42);
	for (int i = 0; i < NPAGES; i++) {
		uint8_t *p = m + (size_t)i * PS;

		switch (i % 4) {
		case 0: break;				/* zero */
		case 1: for (int j = 0; j < PS; j++) p[j] = rand(); break;	/* raw */
		case 2: snprintf((char *)p, PS, "page %d text", i);		/* lz4 */
			memset(p + 100, 'a' + i % 26, 2000); break;
		case 3: p[PS - 1] = 1; break;		/* zero except last byte */
		}
	}
	return m;
}

static int enc_accel;	/* lz4_accel for encode_all (0 = default) */

/* Encode all pages, return buffer and length. */
static uint8_t *encode_all(const uint8_t *m, size_t *len, struct pagecodec_stats *st)
{
	struct pagecodec_enc e;
	struct err err;
	size_t cap = NPAGES * PAGECODEC_MAX_RECORD, pos = 0;
	uint8_t *out = malloc(cap);

	assert_int_equal(pagecodec_enc_init(&e, 0, &err), 0);
	e.lz4_accel = enc_accel;
	for (int i = 0; i < NPAGES; i++) {
		int k = pagecodec_encode(&e, i, m + (size_t)i * PS, out, cap, &pos, &err);

		assert_true(k > 0);
		switch (i % 4) {
		case 0: assert_int_equal(k, PAGECODEC_ZERO); break;
		case 1: assert_int_equal(k, PAGECODEC_RAW); break;
		default: assert_int_equal(k, PAGECODEC_LZ4); break;
		}
	}
	if (st)
		*st = e.st;
	pagecodec_enc_fini(&e);
	*len = pos;
	return out;
}

static void test_is_zero(void **state)
{
	uint8_t *buf = calloc(1, PS + 64);

	(void)state;
	for (int off = 0; off < 17; off++) {
		assert_true(pagecodec_is_zero(buf + off));
		for (int i = 0; i < PS; i += 97) {
			buf[off + i] = 0x80;
			assert_false(pagecodec_is_zero(buf + off));
			buf[off + i] = 0;
		}
		buf[off + PS - 1] = 1;
		assert_false(pagecodec_is_zero(buf + off));
		buf[off + PS - 1] = 0;
	}
	free(buf);
}

static void test_roundtrip_mem(void **state)
{
	struct pagecodec_stats st;
	struct pagecodec_dec *d = malloc(sizeof(*d));
	struct err err;
	uint8_t *m = mkpages(), *dst = malloc(NPAGES * PS), *out;
	size_t len;

	(void)state;
	out = encode_all(m, &len, &st);
	assert_int_equal(st.zero_pages, NPAGES / 4);
	assert_int_equal(st.raw_pages, NPAGES / 4);
	assert_int_equal(st.lz4_pages, NPAGES / 2);
	assert_int_equal(st.bytes_in, NPAGES * PS);
	assert_int_equal(st.bytes_out, len);
	assert_true(len < NPAGES * PS / 2);

	memset(dst, 0xcc, NPAGES * PS);		/* zero pages must be cleared */
	pagecodec_dec_init(d, NPAGES);
	assert_int_equal(pagecodec_decode_to_mem(d, out, len, dst, &err), 0);
	assert_memory_equal(m, dst, NPAGES * PS);
	assert_int_equal(d->records, NPAGES);
	assert_int_equal(d->st.zero_pages, NPAGES / 4);
	assert_int_equal(d->st.lz4_pages, NPAGES / 2);
	assert_int_equal(d->st.bytes_in, len);
	free(d); free(m); free(dst); free(out);
}

/* A faster LZ4 (the sender's default acceleration) still gives records
 * the decoder restores exactly. */
static void test_roundtrip_accel(void **state)
{
	for (int a = 2; a <= 64; a *= 2) {
		enc_accel = a;
		test_roundtrip_mem(state);
	}
	enc_accel = 0;
}

/* Zero runs on shared memory punch holes (no page faulted in), and every
 * record still lands in stream order; encode_zero == encode of a zero page. */
static void test_zero_runs_memfd(void **state)
{
	enum { N = 32 };
	struct pagecodec_enc enc;
	struct pagecodec_dec *d = malloc(sizeof(*d));
	struct err err;
	uint8_t *out = malloc(64 * PAGECODEC_MAX_RECORD), page[PS], a[64], b[64];
	uint8_t *mem;
	size_t pos = 0, p1 = 0, p2 = 0;
	int fd = memfd_create("pc", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, N * PS), 0);
	mem = mmap(NULL, N * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(mem != MAP_FAILED);
	memset(mem, 0xcc, N * PS);			/* every page populated */
	assert_int_equal(pagecodec_enc_init(&enc, PAGECODEC_ENC_NO_LZ4, &err), 0);
	memset(page, 0, PS);
	assert_int_equal(pagecodec_encode_zero(&enc, 7, out, PAGECODEC_MAX_RECORD - 1, &p1, &err), -1);
	assert_int_equal(p1, 0);
	assert_int_equal(pagecodec_encode_zero(&enc, 7, out, 64 * PAGECODEC_MAX_RECORD, &p1, &err),
			 PAGECODEC_ZERO);
	assert_int_equal(pagecodec_encode(&enc, 7, page, out + p1, 64 * PAGECODEC_MAX_RECORD - p1,
					  &p2, &err), PAGECODEC_ZERO);
	memcpy(a, out, p1);
	memcpy(b, out + p1, p2);
	assert_int_equal(p1, p2);
	assert_memory_equal(a, b, p1);
	/* ZERO 0..15, RAW 3 (after its zero), RAW 20, ZERO 20, ZERO 22..23 */
	for (uint64_t g = 0; g < 16; g++)
		pagecodec_encode_zero(&enc, g, out, 64 * PAGECODEC_MAX_RECORD, &pos, &err);
	memset(page, 0x33, PS);
	pagecodec_encode(&enc, 3, page, out, 64 * PAGECODEC_MAX_RECORD, &pos, &err);
	pagecodec_encode(&enc, 20, page, out, 64 * PAGECODEC_MAX_RECORD, &pos, &err);
	for (uint64_t g = 20; g < 24; g += g == 20 ? 2 : 1)
		pagecodec_encode_zero(&enc, g, out, 64 * PAGECODEC_MAX_RECORD, &pos, &err);
	pagecodec_dec_init(d, N);
	assert_int_equal(pagecodec_decode_to_mem(d, out, pos, mem, &err), 0);
	assert_int_equal(d->st.zero_pages, 19);
	/* pages 4..15 were punched, not written: a hole in the memfd (checked
	 * before reading them: reading a hole allocates a page) */
	assert_int_equal(lseek(fd, 4 * PS, SEEK_HOLE), 4 * PS);
	assert_int_equal(lseek(fd, 4 * PS, SEEK_DATA), 16 * PS);
	for (int g = 0; g < N; g++) {
		int want = g == 3 ? 0x33 : g < 16 || g == 20 || g == 22 || g == 23 ? 0 : 0xcc;

		for (int i = 0; i < PS; i += 512)
			if (mem[g * PS + i] != want)
				fail_msg("page %d byte %d is 0x%02x, want 0x%02x", g, i, mem[g * PS + i], want);
	}
	pagecodec_enc_fini(&enc);
	munmap(mem, N * PS);
	close(fd);
	free(d);
	free(out);
}

struct filectx { uint8_t *mem; int fd; };

static void *file_addr(void *opaque, uint64_t gfn)
{
	return ((struct filectx *)opaque)->mem + gfn * PS;
}

static int file_of(void *opaque, uint64_t gfn, off_t *off)
{
	*off = (off_t)(gfn * PS);
	return ((struct filectx *)opaque)->fd;
}

/* npages of a fresh memfd, mapped shared with prot */
static void filectx_open(struct filectx *fc, size_t npages, int prot)
{
	fc->fd = memfd_create("pc", MFD_CLOEXEC);
	assert_true(fc->fd >= 0);
	assert_int_equal(ftruncate(fc->fd, npages * PS), 0);
	fc->mem = mmap(NULL, npages * PS, prot, MAP_SHARED, fc->fd, 0);
	assert_true(fc->mem != MAP_FAILED);
}

static void filectx_close(struct filectx *fc, size_t npages)
{
	munmap(fc->mem, npages * PS);
	close(fc->fd);
}

/* RAW runs go through pwritev (more than one call's worth, out-of-order
 * pages, interleaved with zero runs and LZ4): same result as memcpy. */
static void test_raw_runs_file(void **state)
{
	enum { N = 700 };
	struct pagecodec_enc enc;
	struct pagecodec_dec *d = malloc(sizeof(*d));
	struct err err;
	size_t cap = (N + 8) * PAGECODEC_MAX_RECORD, pos = 0;
	uint8_t *out = malloc(cap), *want = calloc(N, PS), page[PS];
	struct filectx fc;
	uint64_t n;

	(void)state;
	filectx_open(&fc, N, PROT_READ | PROT_WRITE);
	memset(fc.mem, 0xcc, N * PS);
	assert_int_equal(pagecodec_enc_init(&enc, 0, &err), 0);
	for (uint64_t g = 0; g < N; g++) {	/* 0..599 forward, 699..600 backward */
		uint64_t gfn = g < 600 ? g : N - 1 - (g - 600);

		uint32_t x = (uint32_t)gfn * 2654435761u + 1;

		for (int i = 0; i < PS; i++) {	/* xorshift: incompressible */
			x ^= x << 13; x ^= x >> 17; x ^= x << 5;
			page[i] = (uint8_t)x;
		}
		if (gfn % 50 == 49)
			memset(page, 0, PS);		/* zero runs in between */
		else if (gfn % 7 == 0)
			memset(page, (int)gfn, PS);	/* compresses: LZ4 */
		memcpy(want + gfn * PS, page, PS);
		assert_true(pagecodec_encode(&enc, gfn, page, out, cap, &pos, &err) > 0);
	}
	assert_true(enc.st.lz4_pages > 0 && enc.st.raw_pages > PAGECODEC_RUN_MAX);
	pagecodec_dec_init(d, N);
	assert_int_equal(pagecodec_decode_to(d, out, pos, file_addr, file_of, &fc, &n, &err), 0);
	assert_int_equal(n, N);
	assert_int_equal(d->st.raw_pages, enc.st.raw_pages);
	assert_memory_equal(fc.mem, want, N * PS);
	/* LZ4 switched off after init (the peer refused it): RAW from now on */
	{
		size_t p0 = 0;
		uint8_t *o = malloc(PAGECODEC_MAX_RECORD);

		memset(page, 7, PS);
		enc.flags |= PAGECODEC_ENC_NO_LZ4;
		assert_int_equal(pagecodec_encode(&enc, 0, page, o, PAGECODEC_MAX_RECORD, &p0, &err),
				 PAGECODEC_RAW);
		enc.flags &= ~PAGECODEC_ENC_NO_LZ4;
		free(o);
	}
	pagecodec_enc_fini(&enc);
	filectx_close(&fc, N);
	free(d);
	free(out);
	free(want);
}

/* LZ4 pages join the pwritev runs too (decompressed into run_buf): runs
 * longer than PAGECODEC_RUN_MAX, mixed with RAW pages, decoded through a
 * read-only mapping (a write through it would crash the test), then a
 * corrupt LZ4 record mid-run: the records before it are in the file, the
 * rest are not. */
static void test_lz4_runs_file(void **state)
{
	enum { N = 600 };
	struct pagecodec_enc enc;
	struct pagecodec_dec *d = malloc(sizeof(*d));
	struct err err;
	size_t cap = (N + 8) * PAGECODEC_MAX_RECORD, pos = 0, at = 0, bad = 0;
	uint8_t *out = malloc(cap), *want = calloc(N, PS), page[PS];
	struct filectx fc;
	uint64_t n;

	(void)state;
	filectx_open(&fc, N, PROT_READ);
	assert_int_equal(pagecodec_enc_init(&enc, 0, &err), 0);
	for (uint64_t gfn = 0; gfn < N; gfn++) {
		uint32_t x = (uint32_t)gfn * 2654435761u + 1;

		if (gfn % 97 == 13) {		/* a few incompressible: RAW */
			for (int i = 0; i < PS; i++) {
				x ^= x << 13; x ^= x >> 17; x ^= x << 5;
				page[i] = (uint8_t)x;
			}
		} else {
			memset(page, (int)(gfn % 251) + 1, PS);
			snprintf((char *)page, 64, "lz4 page %llu", (unsigned long long)gfn);
		}
		memcpy(want + gfn * PS, page, PS);
		assert_true(pagecodec_encode(&enc, gfn, page, out, cap, &pos, &err) > 0);
	}
	assert_true(enc.st.lz4_pages > PAGECODEC_RUN_MAX && enc.st.raw_pages > 0);
	pagecodec_dec_init(d, N);
	assert_int_equal(pagecodec_decode_to(d, out, pos, file_addr, file_of, &fc, &n, &err), 0);
	assert_int_equal(n, N);
	assert_int_equal(d->st.lz4_pages, enc.st.lz4_pages);
	assert_int_equal(d->st.raw_pages, enc.st.raw_pages);
	assert_int_equal(d->st.bytes_out, (uint64_t)N * PS);
	assert_memory_equal(fc.mem, want, N * PS);

	/* corrupt the LZ4 payload of record 300 (gfn 300: LZ4, 300 % 97 != 13) */
	assert_int_equal(ftruncate(fc.fd, 0), 0);
	assert_int_equal(ftruncate(fc.fd, N * PS), 0);
	for (int r = 0; r < 300; r++)
		at += 16 + (out[at + 12] | out[at + 13] << 8 | (size_t)out[at + 14] << 16);
	assert_int_equal(out[at + 8], PAGECODEC_LZ4);
	bad = out[at + 12] | out[at + 13] << 8;
	memset(out + at + 16, 0xff, bad);
	pagecodec_dec_init(d, N);
	assert_int_equal(pagecodec_decode_to(d, out, pos, file_addr, file_of, &fc, &n, &err), -1);
	assert_non_null(strstr(err.msg, "record 300: lz4 payload is corrupt"));
	assert_int_equal(n, 300);
	assert_memory_equal(fc.mem, want, 300 * PS);
	for (size_t i = 300 * PS; i < (size_t)N * PS; i++)
		if (fc.mem[i])
			fail_msg("byte %zu (page %zu) written after the corrupt record", i, i / PS);
	pagecodec_enc_fini(&enc);
	filectx_close(&fc, N);
	free(d);
	free(out);
	free(want);
}

struct cbctx { uint8_t *m; int n; int fail_at; };

static int check_cb(void *opaque, uint64_t gfn, int kind, const void *page, struct err *err)
{
	struct cbctx *c = opaque;

	(void)kind;
	if (c->n == c->fail_at)
		return err_set(err, "callback says no");
	assert_int_equal(gfn, c->n);
	assert_memory_equal(page, c->m + gfn * PS, PS);
	c->n++;
	return 0;
}

static void test_roundtrip_cb(void **state)
{
	struct pagecodec_dec *d = malloc(sizeof(*d));
	struct err err;
	uint8_t *m = mkpages(), *out;
	struct cbctx c = { m, 0, -1 };
	size_t len;

	(void)state;
	out = encode_all(m, &len, NULL);
	pagecodec_dec_init(d, NPAGES);
	assert_int_equal(pagecodec_decode_cb(d, out, len, check_cb, &c, &err), 0);
	assert_int_equal(c.n, NPAGES);

	c.n = 0; c.fail_at = 5;
	pagecodec_dec_init(d, NPAGES);
	assert_int_equal(pagecodec_decode_cb(d, out, len, check_cb, &c, &err), -1);
	assert_string_equal(err.msg, "pagecodec: record 5 (gfn 0x5): callback says no");
	free(d); free(m); free(out);
}

static void test_no_lz4_and_full(void **state)
{
	struct pagecodec_enc e;
	struct err err;
	uint8_t page[PS], out[PAGECODEC_MAX_RECORD + 10];
	size_t pos = 0;

	(void)state;
	memset(page, 'x', PS);
	assert_int_equal(pagecodec_enc_init(&e, PAGECODEC_ENC_NO_LZ4, &err), 0);
	assert_int_equal(pagecodec_encode(&e, 7, page, out, sizeof(out), &pos, &err), PAGECODEC_RAW);
	assert_int_equal(pos, PAGECODEC_MAX_RECORD);
	assert_int_equal(pagecodec_encode(&e, 8, page, out, sizeof(out), &pos, &err), -1);
	assert_non_null(strstr(err.msg, "output buffer full"));
	assert_int_equal(pos, PAGECODEC_MAX_RECORD);
	pagecodec_enc_fini(&e);
}

/* ---- hostile input ---- */

static void hdr(uint8_t *o, uint64_t gfn, int kind, uint32_t plen)
{
	memset(o, 0, 16);
	for (int i = 0; i < 8; i++) o[i] = gfn >> (8 * i);
	o[8] = kind;
	for (int i = 0; i < 4; i++) o[12 + i] = plen >> (8 * i);
}

static int decode(const uint8_t *buf, size_t len, uint64_t nr, struct err *err)
{
	static struct pagecodec_dec d;
	static uint8_t mem[4 * PS];

	pagecodec_dec_init(&d, nr);
	return pagecodec_decode_to_mem(&d, buf, len, mem, err);
}

static void test_every_truncation(void **state)
{
	struct err err;
	uint8_t *m = mkpages(), *out;
	size_t len;
	struct pagecodec_dec *d = malloc(sizeof(*d));
	uint8_t *dst = malloc(NPAGES * PS);

	(void)state;
	out = encode_all(m, &len, NULL);
	/* Truncation on a record boundary is a valid shorter stream; anywhere
	 * else must fail cleanly. */
	for (size_t cut = 0; cut < len; cut++) {
		size_t pos = 0, b = 0;
		struct pagecodec_rec rec;
		int boundary = 0;

		pagecodec_dec_init(d, NPAGES);
		while (b < cut && pagecodec_next(d, out, len, &pos, &rec, &err) > 0)
			b = pos;
		boundary = (b == cut);
		pagecodec_dec_init(d, NPAGES);
		assert_int_equal(pagecodec_decode_to_mem(d, out, cut, dst, &err), boundary ? 0 : -1);
	}
	free(m); free(out); free(d); free(dst);
}

static void test_hostile(void **state)
{
	struct err err;
	uint8_t buf[3 * PAGECODEC_MAX_RECORD];
	uint8_t page[PS];
	int n;

	(void)state;
	hdr(buf, 0, PAGECODEC_ZERO, 0);
	assert_int_equal(decode(buf, 7, 4, &err), -1);
	assert_string_equal(err.msg, "pagecodec: record 0: truncated header (got 7 of 16 bytes)");

	hdr(buf, 0, PAGECODEC_ZERO, 5);
	assert_int_equal(decode(buf, 16 + 5, 4, &err), -1);
	assert_non_null(strstr(err.msg, "zero page with payload_len 5"));

	hdr(buf, 0, PAGECODEC_RAW, 4095);
	assert_int_equal(decode(buf, sizeof(buf), 4, &err), -1);
	assert_non_null(strstr(err.msg, "raw page with payload_len 4095, want 4096"));

	hdr(buf, 0, PAGECODEC_RAW, 4096);
	assert_int_equal(decode(buf, 16 + 4000, 4, &err), -1);
	assert_string_equal(err.msg, "pagecodec: record 0: payload_len 4096 but only 4000 bytes left");

	hdr(buf, 0, PAGECODEC_LZ4, 0xffffffffu);	/* huge lying length */
	assert_int_equal(decode(buf, sizeof(buf), 4, &err), -1);
	assert_non_null(strstr(err.msg, "lz4 payload_len 4294967295 out of range"));

	hdr(buf, 0, 0, 0);
	assert_int_equal(decode(buf, 16, 4, &err), -1);
	assert_non_null(strstr(err.msg, "unknown kind 0"));
	hdr(buf, 0, 9, 0);
	assert_int_equal(decode(buf, 16, 4, &err), -1);
	assert_non_null(strstr(err.msg, "unknown kind 9"));

	hdr(buf, 0, PAGECODEC_ZERO, 0);
	buf[10] = 1;
	assert_int_equal(decode(buf, 16, 4, &err), -1);
	assert_non_null(strstr(err.msg, "reserved"));

	/* gfn bound, incl. one that would overflow gfn * 4096 */
	hdr(buf, 0, PAGECODEC_ZERO, 0);
	hdr(buf + 16, 4, PAGECODEC_ZERO, 0);
	assert_int_equal(decode(buf, 32, 4, &err), -1);
	assert_string_equal(err.msg, "pagecodec: record 1: gfn 0x4 beyond guest memory (4 pages)");
	hdr(buf, 1ull << 52, PAGECODEC_ZERO, 0);
	assert_int_equal(decode(buf, 16, 4, &err), -1);

	/* LZ4 that decodes short: 1000 bytes */
	memset(page, 'q', sizeof(page));
	n = LZ4_compress_default((char *)page, (char *)buf + 16, 1000, PS);
	assert_true(n > 0);
	hdr(buf, 2, PAGECODEC_LZ4, n);
	assert_int_equal(decode(buf, 16 + n, 4, &err), -1);
	assert_string_equal(err.msg, "pagecodec: record 0: lz4 payload decodes to 1000 bytes, want 4096");

	/* LZ4 that decodes long: 8192 bytes in */
	{
		uint8_t big[2 * PS];

		memset(big, 'q', sizeof(big));
		n = LZ4_compress_default((char *)big, (char *)buf + 16, sizeof(big), PS);
		assert_true(n > 0);
		hdr(buf, 2, PAGECODEC_LZ4, n);
		assert_int_equal(decode(buf, 16 + n, 4, &err), -1);
		assert_non_null(strstr(err.msg, "corrupt or decodes to more than 4096"));
	}

	/* garbage LZ4 */
	hdr(buf, 2, PAGECODEC_LZ4, 100);
	memset(buf + 16, 0xff, 100);
	assert_int_equal(decode(buf, 16 + 100, 4, &err), -1);
	assert_non_null(strstr(err.msg, "record 0: lz4"));

	/* empty buffer is a valid empty stream */
	assert_int_equal(decode(buf, 0, 4, &err), 0);
}

static void test_bitflips(void **state)
{
	struct err err;
	uint8_t *m = mkpages(), *out;
	size_t len;
	struct pagecodec_dec *d = malloc(sizeof(*d));
	uint8_t *dst = malloc(NPAGES * PS);

	(void)state;
	out = encode_all(m, &len, NULL);
	srand(7);
	/* No checksum at this layer, so flips may decode; they must never
	 * crash or write outside dst (ASan build checks that). */
	for (int i = 0; i < 3000; i++) {
		size_t at = rand() % len;
		uint8_t bit = 1 << (rand() % 8);

		out[at] ^= bit;
		pagecodec_dec_init(d, NPAGES);
		(void)pagecodec_decode_to_mem(d, out, len, dst, &err);
		out[at] ^= bit;
	}
	free(m); free(out); free(d); free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_zero),
		cmocka_unit_test(test_roundtrip_mem),
		cmocka_unit_test(test_roundtrip_accel),
		cmocka_unit_test(test_zero_runs_memfd),
		cmocka_unit_test(test_raw_runs_file),
		cmocka_unit_test(test_lz4_runs_file),
		cmocka_unit_test(test_roundtrip_cb),
		cmocka_unit_test(test_no_lz4_and_full),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_bitflips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
