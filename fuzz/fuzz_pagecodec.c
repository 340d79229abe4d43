/* Fuzz the page-record decoder: the to-memory, the callback and the
 * memfd (pwritev runs) paths must agree, and re-encode whatever decodes to
 * check the round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/pagecodec.h"

#define NR 8

static int cb(void *opaque, uint64_t gfn, int kind, const void *page, struct err *err)
{
	uint8_t *mem = opaque;

	(void)kind; (void)err;
	if (gfn >= NR)
		abort();
	memcpy(mem + gfn * PAGECODEC_PAGE_SIZE, page, PAGECODEC_PAGE_SIZE);
	return 0;
}

/* The memfd path: RAW and LZ4 records go through pwritev runs. */
static int memfd_fd = -1;
static uint8_t *memfd_map;

static void *f_addr(void *opaque, uint64_t gfn)
{
	(void)opaque;
	return memfd_map + gfn * PAGECODEC_PAGE_SIZE;
}

static int f_file(void *opaque, uint64_t gfn, off_t *off)
{
	(void)opaque;
	*off = (off_t)(gfn * PAGECODEC_PAGE_SIZE);
	return memfd_fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pagecodec_dec d;
	static uint8_t mem[NR * PAGECODEC_PAGE_SIZE], mem2[NR * PAGECODEC_PAGE_SIZE];
	struct err err;
	int r1, r2;

	/* fresh state per input: a page no record touches must match too */
	memset(mem, 0, sizeof(mem));
	memset(mem2, 0, sizeof(mem2));
	pagecodec_dec_init(&d, NR);
	r1 = pagecodec_decode_to_mem(&d, data, size, mem, &err);
	pagecodec_dec_init(&d, NR);
	r2 = pagecodec_decode_cb(&d, data, size, cb, mem2, &err);
	if (r1 != r2)
		abort();
	if (r1 == 0 && memcmp(mem, mem2, sizeof(mem)))
		abort();
	if (memfd_fd < 0) {
		memfd_fd = memfd_create("fuzz", MFD_CLOEXEC);
		if (memfd_fd < 0 || ftruncate(memfd_fd, sizeof(mem)) < 0)
			abort();
		memfd_map = mmap(NULL, sizeof(mem), PROT_READ | PROT_WRITE, MAP_SHARED, memfd_fd, 0);
		if (memfd_map == MAP_FAILED)
			abort();
	}
	{
		uint64_t n;
		int r3;

		/* empty file: every page a hole, like a fresh destination */
		if (ftruncate(memfd_fd, 0) < 0 || ftruncate(memfd_fd, sizeof(mem)) < 0)
			abort();
		pagecodec_dec_init(&d, NR);
		r3 = pagecodec_decode_to(&d, data, size, f_addr, f_file, NULL, &n, &err);
		if (r3 != r1 || (r1 == 0 && memcmp(mem, memfd_map, sizeof(mem))))
			abort();
	}
	if (r1 == 0) {
		/* Re-encode the decoded memory and decode it again. */
		struct pagecodec_enc e;
		static uint8_t out[NR * PAGECODEC_MAX_RECORD];
		size_t pos = 0;

		if (pagecodec_enc_init(&e, 0, &err) < 0)
			abort();
		for (int i = 0; i < NR; i++)
			if (pagecodec_encode(&e, i, mem + i * PAGECODEC_PAGE_SIZE, out, sizeof(out), &pos, &err) < 0)
				abort();
		pagecodec_enc_fini(&e);
		memset(mem2, 0x55, sizeof(mem2));
		pagecodec_dec_init(&d, NR);
		if (pagecodec_decode_to_mem(&d, out, pos, mem2, &err) < 0 || memcmp(mem, mem2, sizeof(mem)))
			abort();
	}
	return 0;
}
