/* Field-description layer over vmstate sections: named, length-prefixed
 * entries so old and new loaders can skip or default fields. */
#include "lib/vmstate.h"

#include <stdlib.h>
#include <string.h>

#include "lib/le.h"

/* An int field's C size must match its wire width; catches table typos. */
static int vmstate__field_check(const struct vmstate_field *f, struct err *err)
{
	static const size_t width[] = { [VMSF_U8] = 1, [VMSF_U16] = 2, [VMSF_U32] = 4, [VMSF_U64] = 8 };
	size_t n = strlen(f->name);

	if (n == 0 || n > VMSTATE_NAME_MAX)
		return err_set(err, "vmstate: field '%.80s': bad name length", f->name);
	if (f->type == VMSF_BYTES)
		return f->size <= UINT32_MAX ? 0 :
			err_set(err, "vmstate: field '%s': too large", f->name);
	if (f->type < VMSF_U8 || f->type > VMSF_U64 || width[f->type] != f->size)
		return err_set(err, "vmstate: field '%s': type %d does not match size %zu",
			       f->name, f->type, f->size);
	return 0;
}

static void vmstate__field_store(const struct vmstate_field *f, void *obj, const uint8_t *src)
{
	uint8_t *dst = (uint8_t *)obj + f->offset;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (f->type) {
	case VMSF_U16: v16 = le_get16(src); memcpy(dst, &v16, 2); break;
	case VMSF_U32: v32 = le_get32(src); memcpy(dst, &v32, 4); break;
	case VMSF_U64: v64 = le_get64(src); memcpy(dst, &v64, 8); break;
	default: memcpy(dst, src, f->size); break;	/* u8, bytes */
	}
}

int vmstate_save_fields(struct vmstate_writer *w, const struct vmstate_field *fields,
			const void *obj, struct err *err)
{
	for (const struct vmstate_field *f = fields; f->name; f++) {
		const uint8_t *src = (const uint8_t *)obj + f->offset;
		uint8_t v[8];
		size_t n = strlen(f->name);

		if (vmstate__field_check(f, err) < 0)
			return -1;
		switch (f->type) {
		case VMSF_U16: { uint16_t x; memcpy(&x, src, 2); le_put16(v, x); src = v; break; }
		case VMSF_U32: { uint32_t x; memcpy(&x, src, 4); le_put32(v, x); src = v; break; }
		case VMSF_U64: { uint64_t x; memcpy(&x, src, 8); le_put64(v, x); src = v; break; }
		default: break;
		}
		if (vmstate_put_u16(w, n, err) < 0 ||
		    vmstate_put(w, f->name, n, err) < 0 ||
		    vmstate_put_u32(w, f->size, err) < 0 ||
		    vmstate_put(w, src, f->size, err) < 0)
			return err_prefix(err, "field '%s'", f->name);
	}
	return 0;
}

int vmstate_load_fields(const void *payload, size_t len, uint16_t section_version,
			const struct vmstate_field *fields, void *obj, struct err *err)
{
	struct vcursor c;
	size_t nfields = 0;
	uint8_t *seen;
	int ret = -1;

	for (const struct vmstate_field *f = fields; f->name; f++, nfields++)
		if (vmstate__field_check(f, err) < 0)
			return -1;
	seen = calloc(nfields ? nfields : 1, 1);
	if (!seen)
		return err_set(err, "vmstate: out of memory");

	vcursor_init(&c, payload, len);
	for (unsigned idx = 0; !vcursor_at_end(&c); idx++) {
		const struct vmstate_field *f;
		const uint8_t *name, *data;
		uint16_t nlen;
		uint32_t dlen;
		size_t i;

		if (vcursor_get_u16(&c, &nlen) < 0 || !(name = vcursor_take(&c, nlen)) ||
		    vcursor_get_u32(&c, &dlen) < 0) {
			err_set(err, "vmstate: field entry %u: truncated", idx);
			goto out;
		}
		if (!(data = vcursor_take(&c, dlen))) {
			err_set(err, "vmstate: field entry %u '%.*s': length %u but only %zu bytes left",
				idx, nlen > VMSTATE_NAME_MAX ? VMSTATE_NAME_MAX : nlen, name,
				dlen, vcursor_left(&c));
			goto out;
		}
		for (i = 0, f = fields; f->name; f++, i++)
			if (strlen(f->name) == nlen && !memcmp(f->name, name, nlen))
				break;
		if (!f->name)
			continue;	/* unknown field: a newer writer's, skip */
		if (seen[i]) {
			err_set(err, "vmstate: field '%s' appears twice", f->name);
			goto out;
		}
		seen[i] = 1;
		if (dlen != f->size) {
			err_set(err, "vmstate: field '%s': length %u, want %zu", f->name, dlen, f->size);
			goto out;
		}
		vmstate__field_store(f, obj, data);
	}
	for (size_t i = 0; i < nfields; i++) {
		const struct vmstate_field *f = &fields[i];

		/* Missing is fine if the stream predates the field. */
		if (!seen[i] && !(f->flags & VMSF_OPTIONAL) && f->since_version <= section_version) {
			err_set(err, "vmstate: field '%s' missing (section version %u has it since %u)",
				f->name, section_version, f->since_version);
			goto out;
		}
	}
	ret = 0;
out:
	free(seen);
	return ret;
}
