/* Firmware tables: MP table and ACPI checksums and structure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/acpi.h"
#include "vmm/mptable.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void test_mptable(void **st)
{
	static uint8_t buf[4096];
	const uint32_t base = 0xf0000;
	long n;

	(void)st;
	for (int cpus = 1; cpus <= 64; cpus *= 4) {
		n = mptable_build(buf, sizeof(buf), base, cpus);
		assert_true(n > 0);
		assert_memory_equal(buf, "_MP_", 4);
		assert_int_equal(sum(buf, 16), 0);
		assert_int_equal(rd32(buf + 4), base + 16);
		assert_memory_equal(buf + 16, "PCMP", 4);
		uint16_t len;
		memcpy(&len, buf + 20, 2);
		assert_int_equal(16 + len, n);
		assert_int_equal(sum(buf + 16, len), 0);
		/* first entry after the 44-byte header is CPU 0, the BSP */
		assert_int_equal(buf[16 + 44], 0);
		assert_int_equal(buf[16 + 44 + 3], 3);
	}
	assert_int_equal(mptable_build(buf, 64, base, 4), -1);
}

static void test_acpi(void **st)
{
	static uint8_t buf[16384];
	const uint64_t base = 0xf1000;
	size_t used;
	uint64_t xsdt, fadt, madt, dsdt;

	(void)st;
	assert_int_equal(acpi_build(buf, sizeof(buf), base, 2, &used), 0);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(sum(buf, 20), 0);
	assert_int_equal(sum(buf, 36), 0);
	memcpy(&xsdt, buf + 24, 8);
	const uint8_t *x = buf + (xsdt - base);
	assert_memory_equal(x, "XSDT", 4);
	assert_int_equal(sum(x, rd32(x + 4)), 0);
	memcpy(&fadt, x + 36, 8);
	memcpy(&madt, x + 44, 8);
	const uint8_t *f = buf + (fadt - base);
	assert_memory_equal(f, "FACP", 4);
	assert_int_equal(rd32(f + 4), 276);
	assert_int_equal(sum(f, 276), 0);
	assert_int_equal(rd32(f + 64), ACPI_PM1A_CNT);
	memcpy(&dsdt, f + 140, 8);
	assert_int_equal(rd32(f + 40), dsdt);
	const uint8_t *d = buf + (dsdt - base);
	assert_memory_equal(d, "DSDT", 4);
	assert_int_equal(sum(d, rd32(d + 4)), 0);
	assert_memory_equal(d + 37, "_S5_", 4);
	const uint8_t *m = buf + (madt - base);
	assert_memory_equal(m, "APIC", 4);
	assert_int_equal(sum(m, rd32(m + 4)), 0);
	assert_true(madt - base + rd32(m + 4) == used);
	/* FACS is 64-byte aligned */
	assert_int_equal((rd32(f + 36) & 63), 0);
	assert_int_equal(acpi_build(buf, 100, base, 2, &used), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mptable),
		cmocka_unit_test(test_acpi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
