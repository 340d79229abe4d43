/* The receiver state machine driven frame by frame, no I/O: the happy path
 * and each kind of malformed or out-of-order input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/pagecodec.h"
#include "migrate/recv.h"
#include "test_migrate_fake.h"

#define NPAGES 64	/* 256 KiB fake: regions of 32 pages */

struct t {
	struct fake_vm *vm;
	struct mig_rx rx;
	uint8_t reply[MIG_RX_REPLY_MAX];
	uint16_t rtype;
	size_t rlen;
	struct err e;
	uint8_t buf[MIG_FRAME_MAX];
};

static int feed(struct t *t, uint16_t type, const void *p, size_t len)
{
	return mig_rx_frame(&t->rx, type, p, len, &t->rtype, t->reply, &t->rlen, &t->e);
}

static void expect_fail(struct t *t, uint16_t type, const void *p, size_t len, const char *want)
{
	assert_int_equal(feed(t, type, p, len), -1);
	if (!strstr(t->e.msg, want))
		fail_msg("'%s' lacks '%s'", t->e.msg, want);
	assert_int_equal(t->rx.state, MIG_RX_FAILED);
	assert_int_equal(t->rtype, 0);
	/* sticky */
	assert_int_equal(feed(t, MIG_F_GO, NULL, 0), -1);
}

static struct t *setup_t(void)
{
	struct t *t = calloc(1, sizeof(*t));

	t->vm = fake_new(NPAGES * 4096, 0);
	assert_int_equal(mig_rx_init(&t->rx, t->vm, &fake_ops, NULL, &t->e), 0);
	return t;
}

static void free_t(struct t *t)
{
	mig_rx_fini(&t->rx);
	fake_free(t->vm);
	free(t);
}

static size_t hello(struct t *t, uint8_t *out, uint64_t size_r0)
{
	struct mig_hello h = { .version = MIG_WIRE_VERSION, .features = MIG_FEAT_LZ4,
			       .nregions = 2, .compat = (const uint8_t *)"fakecpu-1",
			       .compat_len = 9 };
	int n;

	(void)t;
	h.region[0].gpa = 0;
	h.region[0].size = size_r0;
	h.region[1].gpa = 1ull << 32;
	h.region[1].size = NPAGES / 2 * 4096;
	n = mig_hello_encode(&h, out, 512, &t->e);
	assert_true(n > 0);
	return n;
}

static void do_hello(struct t *t)
{
	uint8_t b[512];
	size_t n = hello(t, b, NPAGES / 2 * 4096);

	assert_int_equal(feed(t, MIG_F_HELLO, b, n), 0);
	assert_int_equal(t->rtype, MIG_F_HELLO);
	assert_int_equal(t->rx.state, MIG_RX_RECV_PAGES);
}

static size_t page_rec(uint8_t *out, uint64_t gfn, uint8_t fill)
{
	struct pagecodec_enc enc;
	uint8_t page[4096];
	size_t pos = 0;
	struct err e;

	memset(page, fill, sizeof(page));
	page[100] = (uint8_t)gfn;
	assert_int_equal(pagecodec_enc_init(&enc, 0, &e), 0);
	assert_true(pagecodec_encode(&enc, gfn, page, out, PAGECODEC_MAX_RECORD, &pos, &e) > 0);
	pagecodec_enc_fini(&enc);
	return pos;
}

static void round_end(struct t *t, uint32_t round, uint32_t flags, uint64_t pages,
		      uint64_t bytes, int ok)
{
	struct mig_round_end re = { .round = round, .flags = flags, .pages = pages, .bytes = bytes };
	uint8_t b[64];
	int n = mig_round_end_encode(&re, b, sizeof(b));

	assert_int_equal(feed(t, MIG_F_ROUND_END, b, n), ok ? 0 : -1);
}

static void test_happy_path(void **state)
{
	struct t *t = setup_t();
	uint8_t rec[2 * PAGECODEC_MAX_RECORD], st[MIG_STATE_HDR + 64], cb[32];
	struct vmstate_writer w;
	const void *sbuf;
	size_t n, slen;
	struct mig_commit c;
	struct err e;

	(void)state;
	do_hello(t);
	n = page_rec(rec, 0, 0xaa);
	n += page_rec(rec + n, NPAGES - 1, 0x55);	/* last page of region 1 */
	assert_int_equal(feed(t, MIG_F_PAGES, rec, n), 0);
	round_end(t, 0, 0, 2, n, 1);
	/* SYNC: answered with the pages applied so far (2), state unchanged */
	assert_int_equal(feed(t, MIG_F_SYNC, NULL, 0), 0);
	assert_int_equal(t->rtype, MIG_F_SYNCED);
	assert_int_equal(t->rlen, 8);
	assert_int_equal(le_get64(t->reply), 2);
	assert_int_equal(t->rx.state, MIG_RX_RECV_PAGES);
	n = page_rec(rec, 33, 0);			/* zero page */
	assert_int_equal(feed(t, MIG_F_PAGES, rec, n), 0);
	round_end(t, 1, MIG_RE_FINAL, 1, n, 1);
	assert_int_equal(t->rx.state, MIG_RX_RECV_STATE);

	t->vm->counter = 7;
	assert_int_equal(vmstate_writer_init(&w, 0, &e), 0);
	assert_int_equal(fake_save_state(t->vm, &w, &e), 0);
	assert_int_equal(vmstate_writer_finish(&w, &sbuf, &slen, &e), 0);
	assert_true(slen <= 64);
	/* two slices */
	mig_state_hdr_encode(st, slen, 0);
	memcpy(st + MIG_STATE_HDR, sbuf, 10);
	assert_int_equal(feed(t, MIG_F_STATE, st, MIG_STATE_HDR + 10), 0);
	mig_state_hdr_encode(st, slen, 10);
	memcpy(st + MIG_STATE_HDR, (const uint8_t *)sbuf + 10, slen - 10);
	assert_int_equal(feed(t, MIG_F_STATE, st, MIG_STATE_HDR + slen - 10), 0);
	c = (struct mig_commit){ slen, crc32c(sbuf, slen), 2, 3 };
	assert_int_equal(feed(t, MIG_F_COMMIT, cb, mig_commit_encode(&c, cb, sizeof(cb))), 0);
	assert_int_equal(t->rtype, MIG_F_ACK_LOADED);
	assert_int_equal(t->rx.state, MIG_RX_LOADED);
	assert_int_equal(t->vm->loaded_counter, 7);
	assert_int_equal(le_get64(t->reply), 3);
	assert_int_equal(feed(t, MIG_F_GO, NULL, 0), 0);
	assert_int_equal(t->rtype, MIG_F_GO_ACK);
	assert_int_equal(t->rx.state, MIG_RX_RUNNING);
	assert_int_equal(t->vm->ram[0], 0xaa);
	assert_int_equal(t->vm->ram[(NPAGES - 1) * 4096 + 1], 0x55);
	assert_int_equal(t->vm->ram[(NPAGES - 1) * 4096 + 100], NPAGES - 1);
	vmstate_writer_free(&w);
	free_t(t);
}

static void test_bad_hello(void **state)
{
	struct t *t;
	uint8_t b[512];
	size_t n;

	(void)state;
	t = setup_t();
	expect_fail(t, MIG_F_PAGES, b, 16, "waiting for HELLO: unexpected PAGES frame");
	free_t(t);

	t = setup_t();
	n = hello(t, b, NPAGES / 2 * 4096);
	le_put32(b, 2);
	expect_fail(t, MIG_F_HELLO, b, n, "wire version 2, this side speaks 1");
	free_t(t);

	t = setup_t();
	n = hello(t, b, NPAGES * 4096);
	expect_fail(t, MIG_F_HELLO, b, n, "RAM layout mismatch: region 0 is 128 KiB at 0x0 here, 256 KiB");
	free_t(t);

	t = setup_t();
	n = hello(t, b, NPAGES / 2 * 4096);
	expect_fail(t, MIG_F_HELLO, b, n - 1, "compat blob length");
	free_t(t);

	t = setup_t();
	n = hello(t, b, NPAGES / 2 * 4096);
	b[n - 1] = '9';
	expect_fail(t, MIG_F_HELLO, b, n, "incompatible source: CPU model fakecpu-9");
	free_t(t);

	t = setup_t();
	expect_fail(t, MIG_F_ERROR, "no\nway", 6, "source gave up: no?way");
	free_t(t);
	/* SYNC only in pre-copy, and empty */
	t = setup_t();
	expect_fail(t, MIG_F_SYNC, NULL, 0, "waiting for HELLO: unexpected SYNC frame");
	free_t(t);
	t = setup_t();
	do_hello(t);
	expect_fail(t, MIG_F_SYNC, b, 8, "receiving pages (round 0): SYNC with a 8 byte payload");
	free_t(t);
	t = setup_t();
	do_hello(t);
	expect_fail(t, MIG_F_SYNCED, b, 8, "unexpected SYNCED frame (type 11)");
	free_t(t);
}

static void test_bad_pages(void **state)
{
	uint8_t rec[2 * PAGECODEC_MAX_RECORD];
	struct t *t;
	size_t n;

	(void)state;
	t = setup_t();
	do_hello(t);
	n = page_rec(rec, NPAGES, 1);		/* one past the end of RAM */
	expect_fail(t, MIG_F_PAGES, rec, n, "beyond guest memory (64 pages)");
	free_t(t);

	t = setup_t();
	do_hello(t);
	n = page_rec(rec, 3, 1);
	expect_fail(t, MIG_F_PAGES, rec, n - 1, "receiving pages (round 0): pagecodec");
	free_t(t);

	t = setup_t();
	do_hello(t);
	expect_fail(t, MIG_F_PAGES, rec, 0, "0 byte batch");
	free_t(t);

	t = setup_t();
	do_hello(t);
	n = page_rec(rec, 3, 1);
	assert_int_equal(feed(t, MIG_F_PAGES, rec, n), 0);
	round_end(t, 0, 0, 2, n, 0);		/* source claims 2 pages */
	assert_non_null(strstr(t->e.msg, "source sent 2 pages"));
	free_t(t);

	t = setup_t();
	do_hello(t);
	round_end(t, 1, 0, 0, 0, 0);		/* skipped round 0 */
	assert_non_null(strstr(t->e.msg, "ROUND_END for round 1, expected round 0"));
	free_t(t);

	t = setup_t();
	do_hello(t);
	expect_fail(t, MIG_F_STATE, rec, 32, "receiving pages (round 0): unexpected STATE");
	free_t(t);
}

static void test_bad_state_and_commit(void **state)
{
	uint8_t st[64], cb[32];
	struct mig_commit c;
	struct t *t;

	(void)state;
	memset(st + MIG_STATE_HDR, 0, 16);
	t = setup_t();
	do_hello(t);
	round_end(t, 0, MIG_RE_FINAL, 0, 0, 1);
	mig_state_hdr_encode(st, 32, 8);
	expect_fail(t, MIG_F_STATE, st, MIG_STATE_HDR + 8, "first slice at offset 8");
	free_t(t);

	t = setup_t();
	do_hello(t);
	round_end(t, 0, MIG_RE_FINAL, 0, 0, 1);
	mig_state_hdr_encode(st, 8, 0);
	expect_fail(t, MIG_F_STATE, st, MIG_STATE_HDR + 16, "beyond the 8 byte blob");
	free_t(t);

	t = setup_t();
	do_hello(t);
	round_end(t, 0, MIG_RE_FINAL, 0, 0, 1);
	mig_state_hdr_encode(st, (uint64_t)MIG_STATE_MAX + 1, 0);
	expect_fail(t, MIG_F_STATE, st, MIG_STATE_HDR, "total length");
	free_t(t);

	t = setup_t();
	do_hello(t);
	round_end(t, 0, MIG_RE_FINAL, 0, 0, 1);
	mig_state_hdr_encode(st, 16, 0);
	assert_int_equal(feed(t, MIG_F_STATE, st, MIG_STATE_HDR + 16), 0);
	c = (struct mig_commit){ 16, 0x1234, 1, 0 };
	expect_fail(t, MIG_F_COMMIT, cb, mig_commit_encode(&c, cb, sizeof(cb)), "crc32c");
	free_t(t);

	t = setup_t();
	do_hello(t);
	round_end(t, 0, MIG_RE_FINAL, 0, 0, 1);
	mig_state_hdr_encode(st, 32, 0);
	assert_int_equal(feed(t, MIG_F_STATE, st, MIG_STATE_HDR + 16), 0);
	c = (struct mig_commit){ 32, 0, 1, 0 };
	expect_fail(t, MIG_F_COMMIT, cb, mig_commit_encode(&c, cb, sizeof(cb)),
		    "device state incomplete (16 of 32 bytes");
	free_t(t);

	/* valid CRC but not a vmstate file: load_state refuses */
	t = setup_t();
	do_hello(t);
	round_end(t, 0, MIG_RE_FINAL, 0, 0, 1);
	mig_state_hdr_encode(st, 16, 0);
	assert_int_equal(feed(t, MIG_F_STATE, st, MIG_STATE_HDR + 16), 0);
	c = (struct mig_commit){ 16, crc32c(st + MIG_STATE_HDR, 16), 1, 0 };
	expect_fail(t, MIG_F_COMMIT, cb, mig_commit_encode(&c, cb, sizeof(cb)), "load_state: ");
	free_t(t);

	t = setup_t();
	do_hello(t);
	round_end(t, 0, MIG_RE_FINAL, 0, 0, 1);
	expect_fail(t, MIG_F_GO, NULL, 0, "receiving device state: unexpected GO frame");
	free_t(t);

	t = setup_t();
	do_hello(t);
	expect_fail(t, 77, NULL, 0, "unexpected unknown frame (type 77)");
	free_t(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_path),
		cmocka_unit_test(test_bad_hello),
		cmocka_unit_test(test_bad_pages),
		cmocka_unit_test(test_bad_state_and_commit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
