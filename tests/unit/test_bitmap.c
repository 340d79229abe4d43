#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "lib/bitmap.h"

static void test_basic(void **state)
{
	struct bitmap b;
	struct err err;

	(void)state;
	assert_int_equal(bitmap_init(&b, 130, &err), 0);
	assert_int_equal(bitmap_count(&b), 0);
	assert_int_equal(bitmap_next_set(&b, 0), 130);
	bitmap_set(&b, 0);
	bitmap_set(&b, 64);
	bitmap_set_atomic(&b, 129);
	assert_true(bitmap_test(&b, 64));
	assert_false(bitmap_test(&b, 65));
	assert_int_equal(bitmap_count(&b), 3);
	assert_int_equal(bitmap_next_set(&b, 0), 0);
	assert_int_equal(bitmap_next_set(&b, 1), 64);
	assert_int_equal(bitmap_next_set(&b, 65), 129);
	assert_int_equal(bitmap_next_set(&b, 130), 130);
	assert_int_equal(bitmap_next_set(&b, ~0ull), 130);
	assert_true(bitmap_test_and_clear(&b, 64));
	assert_false(bitmap_test_and_clear(&b, 64));
	bitmap_set_all(&b);
	assert_int_equal(bitmap_count(&b), 130);	/* tail stays clear */
	bitmap_clear_all(&b);
	assert_int_equal(bitmap_count(&b), 0);
	assert_int_equal(bitmap_set_range(&b, 3, 127, &err), 0);
	assert_int_equal(bitmap_count(&b), 127);
	assert_int_equal(bitmap_next_set(&b, 0), 3);
	assert_int_equal(bitmap_set_range(&b, 3, 128, &err), -1);
	assert_int_equal(bitmap_set_range(&b, ~0ull, 2, &err), -1);
	bitmap_free(&b);

	assert_int_equal(bitmap_init(&b, 0, &err), 0);
	bitmap_set_all(&b);
	assert_int_equal(bitmap_count(&b), 0);
	assert_int_equal(bitmap_next_set(&b, 0), 0);
	bitmap_free(&b);
	assert_int_equal(bitmap_init(&b, ~0ull, &err), -1);
}

static void test_merge_kvm_vs_reference(void **state)
{
	struct err err;

	(void)state;
	srand(99);
	for (int iter = 0; iter < 2000; iter++) {
		uint64_t nbits = 1 + rand() % 700;
		uint64_t off = rand() % nbits;
		uint64_t npages = rand() % (nbits - off + 1);
		uint64_t kvm[12];
		uint8_t ref[700];
		struct bitmap b;
		uint64_t n = 0;

		for (int i = 0; i < 12; i++)
			kvm[i] = ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ rand();
		if (iter % 3 == 0)
			for (int i = 0; i < 12; i++)
				kvm[i] &= kvm[i] >> 7 & kvm[i] >> 13;	/* sparse */
		assert_int_equal(bitmap_init(&b, nbits, &err), 0);
		memset(ref, 0, sizeof(ref));
		for (uint64_t i = 0; i < nbits; i++)
			if (rand() % 8 == 0) {
				bitmap_set(&b, i);
				ref[i] = 1;
			}
		for (uint64_t i = 0; i < npages; i++)
			if (kvm[i / 64] >> (i % 64) & 1)
				ref[off + i] = 1;
		assert_int_equal(bitmap_merge_kvm(&b, off, kvm, npages, &err), 0);
		for (uint64_t i = 0; i < nbits; i++) {
			assert_int_equal(bitmap_test(&b, i), ref[i]);
			n += ref[i];
		}
		assert_int_equal(bitmap_count(&b), n);
		/* iteration visits exactly the reference set bits */
		{
			uint64_t seen = 0, prev = 0;

			for (uint64_t i = bitmap_next_set(&b, 0); i < nbits; i = bitmap_next_set(&b, i + 1)) {
				assert_true(ref[i]);
				assert_true(seen == 0 || i > prev);
				prev = i;
				seen++;
			}
			assert_int_equal(seen, n);
		}
		assert_int_equal(bitmap_merge_kvm(&b, off, kvm, nbits - off + 1, &err), -1);
		assert_int_equal(bitmap_merge_kvm(&b, nbits + 1, kvm, 0, &err), -1);
		bitmap_free(&b);
	}
}

static void test_swap_harvest(void **state)
{
	struct bitmap a, b, c;
	struct err err;

	(void)state;
	assert_int_equal(bitmap_init(&a, 200, &err), 0);
	assert_int_equal(bitmap_init(&b, 200, &err), 0);
	assert_int_equal(bitmap_init(&c, 100, &err), 0);
	bitmap_set(&a, 5);
	bitmap_set(&b, 150);
	assert_int_equal(bitmap_swap(&a, &b, &err), 0);
	assert_true(bitmap_test(&a, 150));
	assert_true(bitmap_test(&b, 5));
	assert_int_equal(bitmap_swap(&a, &c, &err), -1);
	assert_int_equal(bitmap_harvest(&a, &b, &err), 0);
	assert_int_equal(bitmap_count(&a), 2);
	assert_int_equal(bitmap_count(&b), 0);
	assert_int_equal(bitmap_harvest(&a, &c, &err), -1);
	bitmap_free(&a); bitmap_free(&b); bitmap_free(&c);
}

#define NB (1 << 16)
static struct bitmap shared;

static void *setter(void *arg)
{
	uintptr_t t = (uintptr_t)arg;

	for (uint64_t i = t; i < NB; i += 4)
		bitmap_set_atomic(&shared, i);
	return NULL;
}

static void test_atomic_concurrent(void **state)
{
	pthread_t th[4];
	struct bitmap got;
	struct err err;

	(void)state;
	assert_int_equal(bitmap_init(&shared, NB, &err), 0);
	assert_int_equal(bitmap_init(&got, NB, &err), 0);
	for (uintptr_t t = 0; t < 4; t++)
		pthread_create(&th[t], NULL, setter, (void *)t);
	/* harvest while setters run: nothing may be lost */
	for (int i = 0; i < 50; i++)
		assert_int_equal(bitmap_harvest(&got, &shared, &err), 0);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(bitmap_harvest(&got, &shared, &err), 0);
	assert_int_equal(bitmap_count(&got), NB);
	bitmap_free(&shared);
	bitmap_free(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_merge_kvm_vs_reference),
		cmocka_unit_test(test_swap_harvest),
		cmocka_unit_test(test_atomic_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
