/* Hostile snapshot files against the restore load path (vmm/snapshot.h):
 * snap_state_parse (container + machine + vCPU sections) and snap_open
 * (state file + memory file size). No KVM needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/vmstate.h"
#include "vmm/memory.h"
#include "vmm/snapshot.h"

struct opts {
	uint32_t ncpus;		/* cpu sections written */
	uint32_t machine_ncpus;
	uint64_t mem, memfile;
	int skip_clock;
	const char *extra_required;	/* an extra REQUIRED section */
	uint32_t nmsrs;
};

static uint8_t *mkstate(const struct opts *o, size_t *len)
{
	struct vmstate_writer w;
	struct err e;
	struct snap_machine m;
	struct vcpu_state *vs = calloc(1, sizeof(*vs));
	struct mem_region r[MEM_MAX_REGIONS];
	uint8_t zero[4096] = { 0 };
	const void *buf;
	uint8_t *copy;

	memset(&m, 0, sizeof(m));
	strcpy(m.name, "t");
	strcpy(m.cmdline, "console=ttyS0");
	m.mem_size = o->mem;
	m.ncpus = o->machine_ncpus;
	m.nregions = (uint32_t)mem_layout(o->mem, r, MEM_MAX_REGIONS);
	for (uint32_t i = 0; i < m.nregions; i++) {
		m.regions[i].gpa = r[i].gpa;
		m.regions[i].size = r[i].size;
		m.regions[i].memfd_off = r[i].memfd_off;
	}
	m.memory_file_size = o->memfile;
	assert_int_equal(vmstate_writer_init(&w, 0, &e), 0);
	assert_int_equal(snap_encode_machine(&w, &m, &e), 0);
	vs->nmsrs = o->nmsrs;
	vs->has_xsave = true;
	for (uint32_t i = 0; i < o->ncpus; i++)
		assert_int_equal(snap_encode_vcpu(&w, (int)i, vs, &e), 0);
	assert_int_equal(vmstate_begin_section(&w, "irqchip", 1, VMSTATE_SEC_REQUIRED, &e), 0);
	assert_int_equal(vmstate_put(&w, zero, 3 * sizeof(struct kvm_irqchip), &e), 0);
	assert_int_equal(vmstate_end_section(&w, &e), 0);
	assert_int_equal(vmstate_begin_section(&w, "pit", 1, VMSTATE_SEC_REQUIRED, &e), 0);
	assert_int_equal(vmstate_put(&w, zero, sizeof(struct kvm_pit_state2), &e), 0);
	assert_int_equal(vmstate_end_section(&w, &e), 0);
	assert_int_equal(vmstate_begin_section(&w, "dev.serial", 1, VMSTATE_SEC_REQUIRED, &e), 0);
	assert_int_equal(vmstate_put(&w, zero, 9, &e), 0);
	assert_int_equal(vmstate_end_section(&w, &e), 0);
	if (!o->skip_clock) {
		assert_int_equal(vmstate_begin_section(&w, "clock", 1, VMSTATE_SEC_REQUIRED, &e), 0);
		assert_int_equal(vmstate_put(&w, zero, sizeof(struct kvm_clock_data), &e), 0);
		assert_int_equal(vmstate_end_section(&w, &e), 0);
	}
	if (o->extra_required) {
		assert_int_equal(vmstate_begin_section(&w, o->extra_required, 1, VMSTATE_SEC_REQUIRED, &e), 0);
		assert_int_equal(vmstate_end_section(&w, &e), 0);
	}
	assert_int_equal(vmstate_writer_finish(&w, &buf, len, &e), 0);
	copy = malloc(*len);
	memcpy(copy, buf, *len);
	vmstate_writer_free(&w);
	free(vs);
	return copy;
}

static const struct opts good = { .ncpus = 2, .machine_ncpus = 2, .mem = 64 << 20,
				   .memfile = 64 << 20, .nmsrs = 3 };

/* Parse a copy (snap_state_free frees the buffer on success). */
static int parse(const uint8_t *buf, size_t len, struct err *e)
{
	struct snap_state s;
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	memcpy(copy, buf, len);
	memset(&s, 0, sizeof(s));
	r = snap_state_parse(copy, len, &s, e);
	if (r == 0)
		snap_state_free(&s);
	else
		free(copy);
	return r;
}

static void expect_error(const struct opts *o, const char *want)
{
	struct err e = { { 0 } };
	size_t len;
	uint8_t *b = mkstate(o, &len);

	assert_int_equal(parse(b, len, &e), -1);
	if (!strstr(e.msg, want))
		fail_msg("error '%s' does not contain '%s'", e.msg, want);
	free(b);
}

static void test_valid(void **st)
{
	struct err e = { { 0 } };
	size_t len;
	uint8_t *b = mkstate(&good, &len);
	struct snap_state s;

	(void)st;
	memset(&s, 0, sizeof(s));
	assert_int_equal(snap_state_parse(b, len, &s, &e), 0);
	assert_int_equal(s.m.ncpus, 2);
	assert_int_equal(s.m.mem_size, 64 << 20);
	assert_string_equal(s.m.cmdline, "console=ttyS0");
	snap_state_free(&s);
}

static void test_truncations(void **st)
{
	struct err e;
	size_t len;
	uint8_t *b = mkstate(&good, &len);

	(void)st;
	for (size_t n = 0; n < len; n++)
		assert_int_equal(parse(b, n, &e), -1);
	free(b);
}

static void test_bit_flips(void **st)
{
	struct err e;
	size_t len;
	uint8_t *b = mkstate(&good, &len);

	(void)st;
	/* Without fixing the CRC every flip must be caught. */
	for (size_t i = 0; i < len; i++) {
		b[i] ^= 0x10;
		assert_int_equal(parse(b, len, &e), -1);
		b[i] ^= 0x10;
	}
	/* With the CRC fixed, the section decoders see the damage: they may
	 * accept or refuse it, but never crash (ASan/UBSan in check-asan). */
	for (size_t i = 0; i < len - 4; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			b[i] ^= (uint8_t)(1 << bit);
			le_put32(b + len - 4, crc32c(b, len - 4));
			(void)parse(b, len, &e);
			b[i] ^= (uint8_t)(1 << bit);
		}
	}
	free(b);
}

static void test_newer_major(void **st)
{
	struct err e = { { 0 } };
	size_t len;
	uint8_t *b = mkstate(&good, &len);

	(void)st;
	le_put16(b + 8, VMSTATE_FORMAT_MAJOR + 1);
	le_put32(b + len - 4, crc32c(b, len - 4));
	assert_int_equal(parse(b, len, &e), -1);
	assert_non_null(strstr(e.msg, "newer than this vmm"));
	free(b);
}

static void test_semantic_errors(void **st)
{
	struct opts o;

	(void)st;
	o = good; o.extra_required = "gpu.0";
	expect_error(&o, "unknown required section 'gpu.0'");
	o = good; o.extra_required = "cpu.2";	/* beyond machine ncpus */
	expect_error(&o, "unknown required section 'cpu.2'");
	o = good; o.ncpus = 1;
	expect_error(&o, "missing section 'cpu.1'");
	o = good; o.memfile = 32 << 20;
	expect_error(&o, "memory file size");
	o = good; o.mem = 1 << 20; o.memfile = 1 << 20;
	expect_error(&o, "bad memory size");
	o = good; o.machine_ncpus = 0; o.ncpus = 0;
	expect_error(&o, "vCPUs out of range");
	o = good; o.skip_clock = 1;
	expect_error(&o, "missing section 'clock'");
	o = good; o.nmsrs = VCPU_STATE_MAX_MSRS + 1;
	expect_error(&o, "MSRs");
}

static void write_file(const char *path, const void *b, size_t len, off_t size)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (len)
		assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
	if (size >= 0)
		assert_int_equal(truncate(path, size), 0);
}

static void test_open_files(void **st)
{
	char dir[] = "/tmp/test_snapshot.XXXXXX", p[256];
	struct snap_state s;
	struct err e = { { 0 } };
	size_t len;
	uint8_t *b = mkstate(&good, &len);

	(void)st;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(snap_open(dir, &s, &e), -1);
	assert_non_null(strstr(e.msg, "no usable state file"));
	snprintf(p, sizeof(p), "%s/state", dir);
	write_file(p, b, len, -1);
	assert_int_equal(snap_open(dir, &s, &e), -1);	/* no memory file */
	assert_non_null(strstr(e.msg, "memory"));
	snprintf(p, sizeof(p), "%s/memory", dir);
	write_file(p, NULL, 0, 63 << 20);
	assert_int_equal(snap_open(dir, &s, &e), -1);
	assert_non_null(strstr(e.msg, "bytes, want 67108864"));
	write_file(p, NULL, 0, 64 << 20);
	assert_int_equal(snap_open(dir, &s, &e), 0);
	snap_state_free(&s);
	snprintf(p, sizeof(p), "%s/state", dir);
	write_file(p, b, len / 2, -1);
	assert_int_equal(snap_open(dir, &s, &e), -1);
	assert_non_null(strstr(e.msg, "state"));
	write_file(p, NULL, 0, -1);
	assert_int_equal(snap_open(dir, &s, &e), -1);
	unlink(p);
	snprintf(p, sizeof(p), "%s/memory", dir);
	unlink(p);
	rmdir(dir);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_newer_major),
		cmocka_unit_test(test_semantic_errors),
		cmocka_unit_test(test_open_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
