/* Bounded cursor over an untrusted byte buffer (little-endian values).
 *
 * Every get either succeeds completely or fails without reading past the end.
 * Failure is sticky: after the first failure all gets fail, so device code
 * may do a run of gets and check vcursor_failed() once:
 *
 *	vcursor_init(&c, payload, len);
 *	vcursor_get_u32(&c, &s->ctrl);
 *	vcursor_get_u64(&c, &s->base);
 *	if (vcursor_failed(&c) || !vcursor_at_end(&c))
 *		return err_set(err, "uart: bad state payload");
 */
#ifndef LIB_VCURSOR_H
#define LIB_VCURSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/le.h"

struct vcursor {
	const uint8_t *p;
	size_t len;
	size_t off;	/* invariant: off <= len */
	int failed;
};

static inline void vcursor_init(struct vcursor *c, const void *buf, size_t len)
{
	c->p = buf;
	c->len = len;
	c->off = 0;
	c->failed = 0;
}

static inline size_t vcursor_left(const struct vcursor *c) { return c->len - c->off; }
static inline int vcursor_failed(const struct vcursor *c) { return c->failed; }
static inline int vcursor_at_end(const struct vcursor *c) { return c->off == c->len; }

/* Pointer to the next n bytes (and consume them), or NULL. */
static inline const void *vcursor_take(struct vcursor *c, size_t n)
{
	const void *r;

	if (c->failed || n > c->len - c->off) {
		c->failed = 1;
		return NULL;
	}
	r = c->p + c->off;
	c->off += n;
	return r;
}

static inline int vcursor_get_bytes(struct vcursor *c, void *dst, size_t n)
{
	const void *s = vcursor_take(c, n);

	if (!s)
		return -1;
	memcpy(dst, s, n);
	return 0;
}

static inline int vcursor_skip(struct vcursor *c, size_t n)
{
	return vcursor_take(c, n) ? 0 : -1;
}

static inline int vcursor_get_u8(struct vcursor *c, uint8_t *v)
{
	const uint8_t *s = vcursor_take(c, 1);

	if (!s)
		return -1;
	*v = *s;
	return 0;
}

static inline int vcursor_get_u16(struct vcursor *c, uint16_t *v)
{
	const uint8_t *s = vcursor_take(c, 2);

	if (!s)
		return -1;
	*v = le_get16(s);
	return 0;
}

static inline int vcursor_get_u32(struct vcursor *c, uint32_t *v)
{
	const uint8_t *s = vcursor_take(c, 4);

	if (!s)
		return -1;
	*v = le_get32(s);
	return 0;
}

static inline int vcursor_get_u64(struct vcursor *c, uint64_t *v)
{
	const uint8_t *s = vcursor_take(c, 8);

	if (!s)
		return -1;
	*v = le_get64(s);
	return 0;
}

#endif
