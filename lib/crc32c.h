/* CRC-32C (Castagnoli, reflected poly 0x82F63B78).
 *
 * Incremental use:
 *	uint32_t c = crc32c_init();
 *	c = crc32c_update(c, a, alen);
 *	c = crc32c_update(c, b, blen);
 *	uint32_t result = crc32c_final(c);
 * or one shot: crc32c(buf, len). crc32c("123456789") == 0xE3069283.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else a
 * slicing-by-8 table. Thread-safe; the table is built on first use. */
#ifndef LIB_CRC32C_H
#define LIB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc32c_init(void)
{
	return 0xFFFFFFFFu;
}

static inline uint32_t crc32c_final(uint32_t state)
{
	return state ^ 0xFFFFFFFFu;
}

/* Feed bytes into a running state (from crc32c_init or a previous update). */
uint32_t crc32c_update(uint32_t state, const void *buf, size_t len);

/* One shot. */
uint32_t crc32c(const void *buf, size_t len);

/* Explicit implementations, exposed for tests. crc32c_update_hw must only be
 * called when crc32c_have_hw() is true. */
uint32_t crc32c_update_sw(uint32_t state, const void *buf, size_t len);
uint32_t crc32c_update_hw(uint32_t state, const void *buf, size_t len);
int crc32c_have_hw(void);

#endif
