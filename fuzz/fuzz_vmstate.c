/* Fuzz the vmstate container parser and the field loader. The input is
 * parsed as is and again with its CRC fixed up, so the fuzzer gets past the
 * checksum to the length and name checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/vmstate.h"

struct obj { uint8_t a; uint16_t b; uint32_t c; uint64_t d; uint8_t e[5]; };

static const struct vmstate_field fields[] = {
	VMSTATE_U8(struct obj, a, 1),
	VMSTATE_U16(struct obj, b, 1),
	VMSTATE_U32(struct obj, c, 2),
	VMSTATE_U64(struct obj, d, 3),
	VMSTATE_FIELD(struct obj, e, VMSF_BYTES, 1, VMSF_OPTIONAL),
	VMSTATE_END
};

static void one(const uint8_t *buf, size_t len)
{
	static const char *const known[] = { "cpu.0", "a", NULL };
	struct vmstate_reader r;
	struct err err;

	if (vmstate_parse(buf, len, &r, &err) < 0)
		return;
	(void)vmstate_check_known(&r, known, &err);
	for (uint32_t i = 0; i < r.section_count; i++) {
		struct obj o;
		const void *p;
		size_t plen;
		uint16_t ver;

		if (vmstate_find(&r, r.sec[i].name, &p, &plen, &ver) != 1)
			abort();
		if ((const uint8_t *)p < buf || (const uint8_t *)p + plen > buf + len)
			abort();
		(void)vmstate_load_fields(p, plen, ver, fields, &o, &err);
	}
	vmstate_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	one(data, size);
	/* exact-size copy so ASan sees any overread */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (size >= VMSTATE_HDR_SIZE + VMSTATE_TRAILER_SIZE) {
		memcpy(copy, VMSTATE_MAGIC, 8);
		le_put16(copy + 8, VMSTATE_FORMAT_MAJOR);
		le_put32(copy + size - 4, crc32c(copy, size - 4));
	}
	one(copy, size);
	free(copy);
	return 0;
}
