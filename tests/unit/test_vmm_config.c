/* Pure parts of the VMM: CLI value parsing, RAM layout, e820, CPUID filter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/kvm.h>

#include "vmm/config.h"
#include "vmm/cpuid.h"
#include "vmm/e820.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

static void test_parse_size(void **st)
{
	struct err e;
	uint64_t v;

	(void)st;
	assert_int_equal(config_parse_size("64M", &v, &e), 0);
	assert_true(v == 64ULL << 20);
	assert_int_equal(config_parse_size("64", &v, &e), 0);
	assert_true(v == 64ULL << 20);
	assert_int_equal(config_parse_size("2G", &v, &e), 0);
	assert_true(v == 2ULL << 30);
	assert_int_equal(config_parse_size("512KiB", &v, &e), 0);
	assert_true(v == 512ULL << 10);
	assert_int_equal(config_parse_size("4096B", &v, &e), 0);
	assert_true(v == 4096);
	assert_int_equal(config_parse_size("abc", &v, &e), -1);
	assert_string_equal(e.msg, "invalid size 'abc'");
	assert_int_equal(config_parse_size("", &v, &e), -1);
	assert_int_equal(config_parse_size("-1M", &v, &e), -1);
	assert_int_equal(config_parse_size("12X", &v, &e), -1);
	assert_int_equal(config_parse_size("99999999999T", &v, &e), -1);
}

static void test_parse_int(void **st)
{
	struct err e;
	int v;

	(void)st;
	assert_int_equal(config_parse_int("4", 1, 64, &v, &e), 0);
	assert_int_equal(v, 4);
	assert_int_equal(config_parse_int("0", 1, 64, &v, &e), -1);
	assert_int_equal(config_parse_int("65", 1, 64, &v, &e), -1);
	assert_int_equal(config_parse_int("2x", 1, 64, &v, &e), -1);
}

static void test_mem_layout(void **st)
{
	struct mem_region r[MEM_MAX_REGIONS];

	(void)st;
	assert_int_equal(mem_layout(256ULL << 20, r, MEM_MAX_REGIONS), 1);
	assert_true(r[0].gpa == 0 && r[0].size == 256ULL << 20);
	assert_int_equal(mem_layout(3ULL << 30, r, MEM_MAX_REGIONS), 1);
	assert_int_equal(mem_layout(5ULL << 30, r, MEM_MAX_REGIONS), 2);
	assert_true(r[0].size == LAYOUT_PCI_HOLE_START);
	assert_true(r[1].gpa == LAYOUT_4G && r[1].size == (2ULL << 30));
	assert_true(r[1].memfd_off == LAYOUT_PCI_HOLE_START);
	assert_int_equal(r[1].slot, 1);
}

static void test_e820(void **st)
{
	struct vm_memory m = { .memfd = -1 };
	struct e820_ent e[8];
	int n;

	(void)st;
	m.nregions = mem_layout(5ULL << 30, m.regions, MEM_MAX_REGIONS);
	n = e820_build(&m, e, 8);
	assert_int_equal(n, 5);
	assert_true(e[0].addr == 0 && e[0].type == E820_RAM && e[0].size == LAYOUT_EBDA);
	assert_true(e[3].addr == LAYOUT_BIOS_END && e[3].addr + e[3].size == LAYOUT_PCI_HOLE_START);
	assert_true(e[4].addr == LAYOUT_4G && e[4].type == E820_RAM);
	/* No entry overlaps the next. */
	for (int i = 0; i + 1 < n; i++)
		assert_true(e[i].addr + e[i].size <= e[i + 1].addr);
}

static void test_cpuid_filter(void **st)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 3 * sizeof(c->entries[0]));

	(void)st;
	c->nent = 3;
	c->entries[0].function = 1;
	c->entries[0].ebx = 0xff00ffff;
	c->entries[1].function = 0xb;
	c->entries[2].function = 0x40000000;
	cpuid_filter(c, 3, 4);
	assert_int_equal(c->entries[0].ebx >> 24, 3);
	assert_int_equal((c->entries[0].ebx >> 16) & 0xff, 4);
	assert_true(c->entries[0].ecx & (1u << 31));
	assert_int_equal(c->entries[1].edx, 3);
	assert_memory_equal(&c->entries[2].ebx, "KVMK", 4);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_mem_layout),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_cpuid_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
