#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/vmstate.h"

/* Builds a small valid file; returns a malloc'd copy. */
static uint8_t *mkfile(size_t *len)
{
	struct vmstate_writer w;
	struct err err;
	const void *buf;
	uint8_t *copy;

	assert_int_equal(vmstate_writer_init(&w, 0x5, &err), 0);
	assert_int_equal(vmstate_begin_section(&w, "cpu.0", 3, VMSTATE_SEC_REQUIRED, &err), 0);
	assert_int_equal(vmstate_put_u32(&w, 0xdeadbeef, &err), 0);
	assert_int_equal(vmstate_put_u64(&w, 0x0102030405060708ull, &err), 0);
	assert_int_equal(vmstate_end_section(&w, &err), 0);
	assert_int_equal(vmstate_begin_section(&w, "empty", 1, 0, &err), 0);
	assert_int_equal(vmstate_end_section(&w, &err), 0);
	assert_int_equal(vmstate_begin_section(&w, "uart", 2, 0, &err), 0);
	assert_int_equal(vmstate_put(&w, "hello", 5, &err), 0);
	assert_int_equal(vmstate_put_u8(&w, 7, &err), 0);
	assert_int_equal(vmstate_put_u16(&w, 0xabcd, &err), 0);
	assert_int_equal(vmstate_end_section(&w, &err), 0);
	assert_int_equal(vmstate_writer_finish(&w, &buf, len, &err), 0);
	copy = malloc(*len);
	memcpy(copy, buf, *len);
	vmstate_writer_free(&w);
	return copy;
}

static void fix_crc(uint8_t *b, size_t len)
{
	le_put32(b + len - 4, crc32c(b, len - 4));
}

static void test_roundtrip(void **state)
{
	struct vmstate_reader r;
	struct err err;
	size_t len, plen;
	const void *p;
	uint16_t ver;
	struct vcursor c;
	uint32_t v32;
	uint64_t v64;
	uint8_t *f = mkfile(&len);
	const char *known[] = { "cpu.0", NULL };

	(void)state;
	assert_int_equal(len, 24 + (18 + 5 + 12) + (18 + 5) + (18 + 4 + 8) + 4);
	assert_int_equal(vmstate_parse(f, len, &r, &err), 0);
	assert_int_equal(r.section_count, 3);
	assert_int_equal(r.flags, 5);
	assert_int_equal(r.format_major, VMSTATE_FORMAT_MAJOR);
	assert_int_equal(vmstate_find(&r, "cpu.0", &p, &plen, &ver), 1);
	assert_int_equal(plen, 12);
	assert_int_equal(ver, 3);
	vcursor_init(&c, p, plen);
	assert_int_equal(vcursor_get_u32(&c, &v32), 0);
	assert_int_equal(vcursor_get_u64(&c, &v64), 0);
	assert_int_equal(v32, 0xdeadbeef);
	assert_int_equal(v64, 0x0102030405060708ull);
	assert_true(vcursor_at_end(&c));
	assert_int_equal(vmstate_find(&r, "empty", &p, &plen, NULL), 1);
	assert_int_equal(plen, 0);
	assert_int_equal(vmstate_find(&r, "uart", &p, &plen, &ver), 1);
	assert_int_equal(plen, 8);
	assert_memory_equal(p, "hello\x07\xcd\xab", 8);
	assert_int_equal(vmstate_find(&r, "nope", NULL, NULL, NULL), 0);
	/* cpu.0 is required and known; uart/empty unknown but optional */
	assert_int_equal(vmstate_check_known(&r, known, &err), 0);
	assert_int_equal(vmstate_check_known(&r, (const char *[]){ "uart", NULL }, &err), -1);
	assert_string_equal(err.msg, "vmstate: unknown required section 'cpu.0' (version 3)");
	vmstate_reader_free(&r);
	free(f);
}

static void test_empty_file_and_fd(void **state)
{
	struct vmstate_writer w;
	struct vmstate_reader r;
	struct err err;
	char path[] = "/tmp/vmstate_test_XXXXXX";
	uint8_t buf[256];
	int fd = mkstemp(path);
	ssize_t n;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(vmstate_writer_init(&w, 0, &err), 0);
	assert_int_equal(vmstate_begin_section(&w, "a", 1, 0, &err), 0);
	assert_int_equal(vmstate_put(&w, "xyz", 3, &err), 0);
	assert_int_equal(vmstate_end_section(&w, &err), 0);
	assert_int_equal(vmstate_writer_finish_fd(&w, fd, &err), 0);
	vmstate_writer_free(&w);
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	assert_int_equal(n, 24 + 18 + 1 + 3 + 4);
	assert_int_equal(vmstate_parse(buf, n, &r, &err), 0);
	assert_int_equal(vmstate_find(&r, "a", NULL, NULL, NULL), 1);
	vmstate_reader_free(&r);

	assert_int_equal(vmstate_writer_init(&w, 0, &err), 0);
	{
		const void *b;
		size_t l;

		assert_int_equal(vmstate_writer_finish(&w, &b, &l, &err), 0);
		assert_int_equal(l, 28);
		assert_int_equal(vmstate_parse(b, l, &r, &err), 0);
		assert_int_equal(r.section_count, 0);
		vmstate_reader_free(&r);
	}
	vmstate_writer_free(&w);
}

static void test_writer_misuse(void **state)
{
	struct vmstate_writer w;
	struct err err;
	const void *b;
	size_t l;
	char longname[80];

	(void)state;
	memset(longname, 'n', sizeof(longname));
	longname[65] = 0;
	assert_int_equal(vmstate_writer_init(&w, 0, &err), 0);
	assert_int_equal(vmstate_put_u8(&w, 1, &err), -1);
	assert_string_equal(err.msg, "vmstate: put outside a section");
	vmstate_writer_free(&w);

	assert_int_equal(vmstate_writer_init(&w, 0, &err), 0);
	assert_int_equal(vmstate_begin_section(&w, "", 1, 0, &err), -1);
	assert_int_equal(vmstate_begin_section(&w, "a b", 1, 0, &err), -1);
	assert_int_equal(vmstate_begin_section(&w, longname, 1, 0, &err), -1);
	longname[64] = 0;
	assert_int_equal(vmstate_begin_section(&w, longname, 1, 0, &err), 0);
	assert_int_equal(vmstate_begin_section(&w, "x", 1, 0, &err), -1);
	assert_non_null(strstr(err.msg, "inside an open section"));
	assert_int_equal(vmstate_writer_finish(&w, &b, &l, &err), -1);
	assert_non_null(strstr(err.msg, "not ended"));
	assert_int_equal(vmstate_end_section(&w, &err), 0);
	assert_int_equal(vmstate_end_section(&w, &err), -1);
	assert_int_equal(vmstate_begin_section(&w, longname, 1, 0, &err), -1);
	assert_non_null(strstr(err.msg, "duplicate section"));
	assert_int_equal(vmstate_writer_finish(&w, &b, &l, &err), 0);
	vmstate_writer_free(&w);
}

static void test_every_truncation(void **state)
{
	struct vmstate_reader r;
	struct err err;
	size_t len;
	uint8_t *f = mkfile(&len);

	(void)state;
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *t = malloc(cut ? cut : 1);	/* exact size: ASan catches overreads */

		memcpy(t, f, cut);
		assert_int_equal(vmstate_parse(t, cut, &r, &err), -1);
		assert_null(r.sec);
		free(t);
	}
	free(f);
}

static void test_every_bitflip(void **state)
{
	struct vmstate_reader r;
	struct err err;
	size_t len;
	uint8_t *f = mkfile(&len);

	(void)state;
	for (size_t i = 0; i < len * 8; i++) {
		f[i / 8] ^= 1 << (i % 8);
		assert_int_equal(vmstate_parse(f, len, &r, &err), -1);
		f[i / 8] ^= 1 << (i % 8);
	}
	assert_int_equal(vmstate_parse(f, len, &r, &err), 0);
	vmstate_reader_free(&r);
	f[40] ^= 1;
	assert_int_equal(vmstate_parse(f, len, &r, &err), -1);
	assert_non_null(strstr(err.msg, "checksum mismatch"));
	free(f);
}

/* Offsets in mkfile's output. */
#define SEC0	24		/* cpu.0 header */
#define SEC0_PLEN (SEC0 + 2 + 5 + 8)
#define SEC1	(SEC0 + 18 + 5 + 12)	/* "empty" */
#define SEC2	(SEC1 + 18 + 5)		/* "uart" */

static int parse_fixed(uint8_t *f, size_t len, struct err *err)
{
	struct vmstate_reader r;
	int ret;

	fix_crc(f, len);
	ret = vmstate_parse(f, len, &r, err);
	if (ret == 0)
		vmstate_reader_free(&r);
	return ret;
}

static void test_lying_lengths(void **state)
{
	struct err err;
	size_t len;
	uint8_t *f = mkfile(&len), *g = malloc(len);

	(void)state;
#define RESET() memcpy(g, f, len)
	RESET(); le_put64(g + SEC0_PLEN, 13);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	RESET(); le_put64(g + SEC0_PLEN, ~0ull);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_non_null(strstr(err.msg, "section 0 'cpu.0': payload_len 18446744073709551615 but only"));
	RESET(); le_put64(g + SEC0_PLEN, 11);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	RESET(); le_put32(g + 16, 0xffffffffu);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_non_null(strstr(err.msg, "claims 4294967295 sections"));
	RESET(); le_put32(g + 16, 4);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	RESET(); le_put32(g + 16, 2);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_non_null(strstr(err.msg, "stray bytes"));
	RESET(); le_put16(g + SEC0, 0);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_non_null(strstr(err.msg, "name length 0"));
	RESET(); le_put16(g + SEC0, 0xffff);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	RESET(); le_put16(g + SEC0, 6);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	RESET(); g[SEC0 + 2] = '\n';
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_non_null(strstr(err.msg, "not printable"));
	RESET(); memcpy(g + SEC2 + 2, "empt", 4);	/* "uart" -> "empt" ok, distinct */
	assert_int_equal(parse_fixed(g, len, &err), 0);
	RESET(); memcpy(g + SEC1 + 2, "cpu.0", 5);	/* duplicate */
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_string_equal(err.msg, "vmstate: duplicate section 'cpu.0'");
	RESET(); memcpy(g, "KVMSTAX", 8);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_string_equal(err.msg, "vmstate: not a vm state file (bad magic)");
	RESET(); le_put16(g + 8, 3);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	assert_string_equal(err.msg, "vmstate: snapshot format 3.x is newer than this vmm (1.x)");
	RESET(); le_put16(g + 8, 0);
	assert_int_equal(parse_fixed(g, len, &err), -1);
	RESET(); le_put16(g + 10, 99);			/* newer minor: fine */
	assert_int_equal(parse_fixed(g, len, &err), 0);
	free(f); free(g);
}

/* ---- fields ---- */

struct dev_v1 { uint32_t ctrl; uint8_t irq; uint64_t base; };
struct dev_v2 { uint32_t ctrl; uint8_t irq; uint64_t base; uint16_t extra; uint8_t regs[6]; uint32_t opt; };

static const struct vmstate_field dev_v1_fields[] = {
	VMSTATE_U32(struct dev_v1, ctrl, 1),
	VMSTATE_U8(struct dev_v1, irq, 1),
	VMSTATE_U64(struct dev_v1, base, 1),
	VMSTATE_END
};
static const struct vmstate_field dev_v2_fields[] = {
	VMSTATE_U64(struct dev_v2, base, 1),
	VMSTATE_U32(struct dev_v2, ctrl, 1),
	VMSTATE_U8(struct dev_v2, irq, 1),
	VMSTATE_U16(struct dev_v2, extra, 2),
	VMSTATE_BYTES(struct dev_v2, regs, 2),
	VMSTATE_FIELD(struct dev_v2, opt, VMSF_U32, 1, VMSF_OPTIONAL),
	VMSTATE_END
};

static size_t save(const struct vmstate_field *fl, const void *obj, uint8_t *out)
{
	struct vmstate_writer w;
	struct vmstate_reader r;
	struct err err;
	const void *b, *p;
	size_t l, pl;

	assert_int_equal(vmstate_writer_init(&w, 0, &err), 0);
	assert_int_equal(vmstate_begin_section(&w, "dev", 1, 0, &err), 0);
	assert_int_equal(vmstate_save_fields(&w, fl, obj, &err), 0);
	assert_int_equal(vmstate_end_section(&w, &err), 0);
	assert_int_equal(vmstate_writer_finish(&w, &b, &l, &err), 0);
	assert_int_equal(vmstate_parse(b, l, &r, &err), 0);
	assert_int_equal(vmstate_find(&r, "dev", &p, &pl, NULL), 1);
	memcpy(out, p, pl);
	vmstate_reader_free(&r);
	vmstate_writer_free(&w);
	return pl;
}

static void test_fields(void **state)
{
	struct dev_v1 a = { 0x11223344, 9, 0xfeedfacecafebeefull }, a2;
	struct dev_v2 b = { 1, 2, 3, 4, "abcde", 6 }, b2;
	struct err err;
	uint8_t buf[512];
	size_t n;

	(void)state;
	/* v1 -> v2 loader: new fields keep their defaults */
	n = save(dev_v1_fields, &a, buf);
	memset(&b2, 0x77, sizeof(b2));
	assert_int_equal(vmstate_load_fields(buf, n, 1, dev_v2_fields, &b2, &err), 0);
	assert_int_equal(b2.ctrl, a.ctrl);
	assert_int_equal(b2.irq, a.irq);
	assert_int_equal(b2.base, a.base);
	assert_int_equal(b2.extra, 0x7777);
	assert_int_equal(b2.opt, 0x77777777);
	/* ...but a stream claiming version 2 must have v2's fields */
	assert_int_equal(vmstate_load_fields(buf, n, 2, dev_v2_fields, &b2, &err), -1);
	assert_string_equal(err.msg, "vmstate: field 'extra' missing (section version 2 has it since 2)");

	/* v2 -> v1 loader: unknown fields skipped */
	n = save(dev_v2_fields, &b, buf);
	memset(&a2, 0, sizeof(a2));
	assert_int_equal(vmstate_load_fields(buf, n, 2, dev_v1_fields, &a2, &err), 0);
	assert_int_equal(a2.ctrl, 1);
	assert_int_equal(a2.irq, 2);
	assert_int_equal(a2.base, 3);
	memset(&b2, 0, sizeof(b2));
	assert_int_equal(vmstate_load_fields(buf, n, 2, dev_v2_fields, &b2, &err), 0);
	assert_memory_equal(&b2.regs, "abcde", 6);
	assert_int_equal(b2.extra, 4);
	assert_int_equal(b2.opt, 6);

	/* every truncation of the payload fails or (on an entry boundary)
	 * reports missing fields; never reads past n */
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *t = malloc(cut ? cut : 1);

		memcpy(t, buf, cut);
		/* only dropping the trailing optional 'opt' entry is valid */
		assert_int_equal(vmstate_load_fields(t, cut, 2, dev_v2_fields, &b2, &err),
				 cut == n - (2 + 3 + 4 + 4) ? 0 : -1);
		free(t);
	}
}

static void test_fields_hostile(void **state)
{
	struct dev_v1 a = { 1, 2, 3 }, a2;
	struct err err;
	uint8_t buf[512], dup[1024];
	size_t n;
	static const struct vmstate_field bad[] = {
		{ "ctrl", offsetof(struct dev_v1, ctrl), 4, VMSF_U64, 1, 0 }, VMSTATE_END
	};

	(void)state;
	n = save(dev_v1_fields, &a, buf);
	/* first entry is "ctrl": u16 4 | "ctrl" | u32 4 | 4 bytes */
	le_put32(buf + 6, 5);
	assert_int_equal(vmstate_load_fields(buf, n, 1, dev_v1_fields, &a2, &err), -1);
	assert_string_equal(err.msg, "vmstate: field 'ctrl': length 5, want 4");
	le_put32(buf + 6, 0xffffffffu);
	assert_int_equal(vmstate_load_fields(buf, n, 1, dev_v1_fields, &a2, &err), -1);
	assert_non_null(strstr(err.msg, "length 4294967295 but only"));
	le_put32(buf + 6, 4);
	le_put16(buf, 0xffff);
	assert_int_equal(vmstate_load_fields(buf, n, 1, dev_v1_fields, &a2, &err), -1);
	assert_non_null(strstr(err.msg, "truncated"));
	le_put16(buf, 4);
	memcpy(dup, buf, n);
	memcpy(dup + n, buf, n);
	assert_int_equal(vmstate_load_fields(dup, 2 * n, 1, dev_v1_fields, &a2, &err), -1);
	assert_non_null(strstr(err.msg, "appears twice"));
	assert_int_equal(vmstate_load_fields(buf, n, 1, bad, &a2, &err), -1);
	assert_non_null(strstr(err.msg, "does not match size"));
}

static void test_vcursor(void **state)
{
	static const uint8_t b[] = { 1, 2, 3, 4, 5, 6, 7 };
	struct vcursor c;
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;
	uint8_t tmp[8];

	(void)state;
	vcursor_init(&c, b, sizeof(b));
	assert_int_equal(vcursor_get_u64(&c, &v64), -1);
	assert_true(vcursor_failed(&c));
	assert_int_equal(vcursor_get_u8(&c, &v8), -1);	/* sticky */
	vcursor_init(&c, b, sizeof(b));
	assert_int_equal(vcursor_get_u8(&c, &v8), 0);
	assert_int_equal(vcursor_get_u16(&c, &v16), 0);
	assert_int_equal(vcursor_get_u32(&c, &v32), 0);
	assert_int_equal(v8, 1);
	assert_int_equal(v16, 0x0302);
	assert_int_equal(v32, 0x07060504);
	assert_true(vcursor_at_end(&c));
	assert_false(vcursor_failed(&c));
	assert_int_equal(vcursor_get_bytes(&c, tmp, 0), 0);
	assert_int_equal(vcursor_get_bytes(&c, tmp, 1), -1);
	vcursor_init(&c, b, sizeof(b));
	assert_int_equal(vcursor_skip(&c, SIZE_MAX), -1);
	assert_null(vcursor_take(&c, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_empty_file_and_fd),
		cmocka_unit_test(test_writer_misuse),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_every_bitflip),
		cmocka_unit_test(test_lying_lengths),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_fields_hostile),
		cmocka_unit_test(test_vcursor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
