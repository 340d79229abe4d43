#include "lib/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

/* Slicing-by-8 tables: tab[0] is the classic byte table, tab[k][b] is the
 * CRC of byte b followed by k zero bytes. */
static uint32_t crc32c_tab[8][256];
static pthread_once_t crc32c_tab_once = PTHREAD_ONCE_INIT;

static void crc32c__build_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc32c_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_tab[t][i] = (crc32c_tab[t - 1][i] >> 8) ^
					   crc32c_tab[0][crc32c_tab[t - 1][i] & 0xff];
}

uint32_t crc32c_update_sw(uint32_t c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc32c_tab_once, crc32c__build_table);
	while (len && ((uintptr_t)p & 7)) {
		c = (c >> 8) ^ crc32c_tab[0][(c ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);	/* little-endian host assumed (x86) */
		w ^= c;
		c = crc32c_tab[7][w & 0xff] ^
		    crc32c_tab[6][(w >> 8) & 0xff] ^
		    crc32c_tab[5][(w >> 16) & 0xff] ^
		    crc32c_tab[4][(w >> 24) & 0xff] ^
		    crc32c_tab[3][(w >> 32) & 0xff] ^
		    crc32c_tab[2][(w >> 40) & 0xff] ^
		    crc32c_tab[1][(w >> 48) & 0xff] ^
		    crc32c_tab[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = (c >> 8) ^ crc32c_tab[0][(c ^ *p++) & 0xff];
	return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
uint32_t crc32c_update_hw(uint32_t c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c64;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi(c, *p++);
		len--;
	}
	c64 = c;
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
		p += 8;
		len -= 8;
	}
	c = (uint32_t)c64;
	while (len--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}

int crc32c_have_hw(void)
{
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t crc32c_update_hw(uint32_t c, const void *buf, size_t len)
{
	return crc32c_update_sw(c, buf, len);
}

int crc32c_have_hw(void)
{
	return 0;
}
#endif

uint32_t crc32c_update(uint32_t c, const void *buf, size_t len)
{
	/* -1 unknown, 0 no, 1 yes; a benign race: every thread computes the
	 * same answer. */
	static int have_hw = -1;
	int h = __atomic_load_n(&have_hw, __ATOMIC_RELAXED);

	if (h < 0) {
		h = crc32c_have_hw();
		__atomic_store_n(&have_hw, h, __ATOMIC_RELAXED);
	}
	return h ? crc32c_update_hw(c, buf, len) : crc32c_update_sw(c, buf, len);
}

uint32_t crc32c(const void *buf, size_t len)
{
	return crc32c_final(crc32c_update(crc32c_init(), buf, len));
}
