/* Dirty-page bitmap: bit i set = page i dirty.
 *
 * Invariant: bits at index >= nbits are always zero, so count and iteration
 * need no tail masking.
 *
 * Concurrency: bitmap_set_atomic, bitmap_merge_kvm and bitmap_harvest are
 * safe against concurrent bitmap_set_atomic callers (device threads marking
 * DMA writes). Everything else needs exclusive access. */
#ifndef LIB_BITMAP_H
#define LIB_BITMAP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct bitmap {
	uint64_t *w;
	uint64_t nbits;
	size_t nwords;
};

int bitmap_init(struct bitmap *b, uint64_t nbits, struct err *err);
void bitmap_free(struct bitmap *b);

/* i must be < nbits (not checked on these hot paths). */
static inline void bitmap_set(struct bitmap *b, uint64_t i)
{
	b->w[i / 64] |= 1ull << (i % 64);
}

static inline void bitmap_clear(struct bitmap *b, uint64_t i)
{
	b->w[i / 64] &= ~(1ull << (i % 64));
}

static inline int bitmap_test(const struct bitmap *b, uint64_t i)
{
	return (b->w[i / 64] >> (i % 64)) & 1;
}

static inline void bitmap_set_atomic(struct bitmap *b, uint64_t i)
{
	__atomic_fetch_or(&b->w[i / 64], 1ull << (i % 64), __ATOMIC_RELAXED);
}

/* Returns the old bit value and clears it. */
static inline int bitmap_test_and_clear(struct bitmap *b, uint64_t i)
{
	int old = bitmap_test(b, i);

	bitmap_clear(b, i);
	return old;
}

/* Set bits [start, start + n). Fails if the range exceeds nbits. */
int bitmap_set_range(struct bitmap *b, uint64_t start, uint64_t n, struct err *err);
void bitmap_set_all(struct bitmap *b);
void bitmap_clear_all(struct bitmap *b);
/* Exchange contents; both must have the same nbits. */
int bitmap_swap(struct bitmap *a, struct bitmap *b, struct err *err);

/* OR in a KVM_GET_DIRTY_LOG bitmap for a memslot of npages pages (bit i of
 * the u64 array = page i of the slot) at page offset page_off. Bits of the
 * last kvm word beyond npages are ignored. */
int bitmap_merge_kvm(struct bitmap *b, uint64_t page_off, const uint64_t *kvm,
		     uint64_t npages, struct err *err);

/* dst |= src, src cleared word by word with atomic exchanges, so bits set
 * concurrently in src are never lost: each lands in dst or stays in src. */
int bitmap_harvest(struct bitmap *dst, struct bitmap *src, struct err *err);

uint64_t bitmap_count(const struct bitmap *b);

/* First set bit >= from, or b->nbits if none. Skips zero words quickly.
 *	for (i = bitmap_next_set(b, 0); i < b->nbits; i = bitmap_next_set(b, i + 1))
 */
uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from);

#endif
