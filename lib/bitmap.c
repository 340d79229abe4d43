#include "lib/bitmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bitmap_init(struct bitmap *b, uint64_t nbits, struct err *err)
{
	memset(b, 0, sizeof(*b));
	if (nbits > (uint64_t)SIZE_MAX / 8 - 63)
		return err_set(err, "bitmap: %llu bits is too many", (unsigned long long)nbits);
	b->nwords = (nbits + 63) / 64;
	b->w = calloc(b->nwords ? b->nwords : 1, sizeof(uint64_t));
	if (!b->w)
		return err_errno(err, ENOMEM, "bitmap: %llu bits", (unsigned long long)nbits);
	b->nbits = nbits;
	return 0;
}

void bitmap_free(struct bitmap *b)
{
	free(b->w);
	memset(b, 0, sizeof(*b));
}

/* Mask of valid bits in the last word. */
static uint64_t bitmap__tail_mask(uint64_t nbits)
{
	return nbits % 64 ? (1ull << (nbits % 64)) - 1 : ~0ull;
}

int bitmap_set_range(struct bitmap *b, uint64_t start, uint64_t n, struct err *err)
{
	if (start > b->nbits || n > b->nbits - start)
		return err_set(err, "bitmap: range %llu+%llu beyond %llu bits",
			       (unsigned long long)start, (unsigned long long)n,
			       (unsigned long long)b->nbits);
	while (n && start % 64) {
		bitmap_set(b, start++);
		n--;
	}
	for (; n >= 64; n -= 64, start += 64)
		b->w[start / 64] = ~0ull;
	while (n--)
		bitmap_set(b, start++);
	return 0;
}

void bitmap_set_all(struct bitmap *b)
{
	if (!b->nwords)
		return;
	memset(b->w, 0xff, b->nwords * 8);
	b->w[b->nwords - 1] &= bitmap__tail_mask(b->nbits);
}

void bitmap_clear_all(struct bitmap *b)
{
	memset(b->w, 0, b->nwords * 8);
}

int bitmap_swap(struct bitmap *a, struct bitmap *b, struct err *err)
{
	uint64_t *t;

	if (a->nbits != b->nbits)
		return err_set(err, "bitmap: swap of %llu and %llu bit maps",
			       (unsigned long long)a->nbits, (unsigned long long)b->nbits);
	t = a->w;
	a->w = b->w;
	b->w = t;
	return 0;
}

static inline void bitmap__or_word(uint64_t *w, uint64_t v)
{
	/* Skip the atomic for the common all-clean word. */
	if (v)
		__atomic_fetch_or(w, v, __ATOMIC_RELAXED);
}

int bitmap_merge_kvm(struct bitmap *b, uint64_t page_off, const uint64_t *kvm,
		     uint64_t npages, struct err *err)
{
	uint64_t kwords = (npages + 63) / 64;
	unsigned shift = page_off % 64;
	uint64_t base = page_off / 64;

	if (page_off > b->nbits || npages > b->nbits - page_off)
		return err_set(err, "bitmap: slot of %llu pages at page %llu exceeds %llu pages",
			       (unsigned long long)npages, (unsigned long long)page_off,
			       (unsigned long long)b->nbits);
	for (uint64_t k = 0; k < kwords; k++) {
		uint64_t v = kvm[k];

		if (k == kwords - 1)
			v &= bitmap__tail_mask(npages);
		if (!v)
			continue;
		if (!shift) {
			bitmap__or_word(&b->w[base + k], v);
			continue;
		}
		/* Bit j of v is page page_off + 64k + j: the low part lands in
		 * word base+k, the high part in base+k+1. The range check above
		 * guarantees the high part is zero if base+k+1 is past the end. */
		bitmap__or_word(&b->w[base + k], v << shift);
		if (v >> (64 - shift))
			bitmap__or_word(&b->w[base + k + 1], v >> (64 - shift));
	}
	return 0;
}

int bitmap_harvest(struct bitmap *dst, struct bitmap *src, struct err *err)
{
	if (dst->nbits != src->nbits)
		return err_set(err, "bitmap: harvest of %llu bits into %llu",
			       (unsigned long long)src->nbits, (unsigned long long)dst->nbits);
	for (size_t i = 0; i < src->nwords; i++) {
		/* Plain read first: most words are clean, no need to write. */
		if (!__atomic_load_n(&src->w[i], __ATOMIC_RELAXED))
			continue;
		dst->w[i] |= __atomic_exchange_n(&src->w[i], 0, __ATOMIC_ACQ_REL);
	}
	return 0;
}

uint64_t bitmap_count(const struct bitmap *b)
{
	uint64_t n = 0;

	for (size_t i = 0; i < b->nwords; i++)
		n += __builtin_popcountll(b->w[i]);
	return n;
}

uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from)
{
	size_t i;
	uint64_t v;

	if (from >= b->nbits)
		return b->nbits;
	i = from / 64;
	v = b->w[i] & (~0ull << (from % 64));
	while (!v) {
		if (++i >= b->nwords)
			return b->nbits;
		v = b->w[i];
	}
	/* Tail bits are zero by invariant, so this is < nbits. */
	return (uint64_t)i * 64 + __builtin_ctzll(v);
}
