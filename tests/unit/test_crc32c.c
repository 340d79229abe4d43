#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/crc32c.h"

static void test_vectors(void **state)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32];

	(void)state;
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = i;
	assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c("", 0), 0);
	/* RFC 3720 B.4 vectors */
	assert_int_equal(crc32c(zeros, 32), 0x8A9136AAu);
	assert_int_equal(crc32c(ones, 32), 0x62A8AB43u);
	assert_int_equal(crc32c(inc, 32), 0x46DD794Eu);
	assert_int_equal(crc32c_final(crc32c_update_sw(crc32c_init(), "123456789", 9)), 0xE3069283u);
	if (crc32c_have_hw())
		assert_int_equal(crc32c_final(crc32c_update_hw(crc32c_init(), "123456789", 9)), 0xE3069283u);
}

static void test_incremental(void **state)
{
	const char *s = "The quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);
	uint32_t want = crc32c(s, n);

	(void)state;
	for (size_t split = 0; split <= n; split++) {
		uint32_t c = crc32c_init();

		c = crc32c_update(c, s, split);
		c = crc32c_update(c, s + split, n - split);
		assert_int_equal(crc32c_final(c), want);
	}
}

static void test_hw_equals_sw(void **state)
{
	uint8_t *buf = malloc(70000);

	(void)state;
	if (!crc32c_have_hw()) {
		free(buf);
		skip();
	}
	srand(1234);
	for (size_t i = 0; i < 70000; i++)
		buf[i] = rand();
	for (int iter = 0; iter < 500; iter++) {
		size_t off = rand() % 64, len = rand() % (70000 - 64);
		uint32_t seed = rand();

		if (iter < 100)
			len = iter;	/* all the small/unaligned tails */
		assert_int_equal(crc32c_update_hw(seed, buf + off, len),
				 crc32c_update_sw(seed, buf + off, len));
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_hw_equals_sw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
