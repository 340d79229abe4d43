#include "lib/vmstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/crc32c.h"
#include "lib/le.h"

/* ---- writer ---- */

static int vmstate__reserve(struct vmstate_writer *w, size_t n, struct err *err)
{
	size_t ncap;
	uint8_t *nb;

	if (w->failed)
		return err_set(err, "vmstate: writer is in a failed state");
	if (n <= w->cap - w->len)
		return 0;
	if (n > SIZE_MAX / 2 - w->len) {
		w->failed = 1;
		return err_set(err, "vmstate: state too large");
	}
	ncap = w->cap ? w->cap : 4096;
	while (ncap - w->len < n)
		ncap *= 2;
	nb = realloc(w->buf, ncap);
	if (!nb) {
		w->failed = 1;
		return err_errno(err, ENOMEM, "vmstate: grow buffer to %zu bytes", ncap);
	}
	w->buf = nb;
	w->cap = ncap;
	return 0;
}

int vmstate_writer_init(struct vmstate_writer *w, uint32_t flags, struct err *err)
{
	memset(w, 0, sizeof(*w));
	if (vmstate__reserve(w, VMSTATE_HDR_SIZE, err) < 0)
		return -1;
	memcpy(w->buf, VMSTATE_MAGIC, 8);
	le_put16(w->buf + 8, VMSTATE_FORMAT_MAJOR);
	le_put16(w->buf + 10, VMSTATE_FORMAT_MINOR);
	le_put32(w->buf + 12, flags);
	le_put32(w->buf + 16, 0);	/* section_count, patched by finish */
	le_put32(w->buf + 20, 0);
	w->len = VMSTATE_HDR_SIZE;
	return 0;
}

void vmstate_writer_free(struct vmstate_writer *w)
{
	for (uint32_t i = 0; i < w->section_count; i++)
		free(w->names[i]);
	free(w->names);
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static int vmstate__name_ok(const uint8_t *s, size_t n)
{
	if (n == 0 || n > VMSTATE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

int vmstate_begin_section(struct vmstate_writer *w, const char *name,
			  uint16_t version, uint16_t flags, struct err *err)
{
	size_t n = strlen(name);
	char **names, *copy;
	uint8_t *p;

	if (w->sec_start)
		return err_set(err, "vmstate: section '%s' begun inside an open section", name);
	if (!vmstate__name_ok((const uint8_t *)name, n))
		return err_set(err, "vmstate: bad section name '%.80s' (1..%d printable chars)",
			       name, VMSTATE_NAME_MAX);
	for (uint32_t i = 0; i < w->section_count; i++)
		if (!strcmp(w->names[i], name))
			return err_set(err, "vmstate: duplicate section '%s'", name);
	if (vmstate__reserve(w, VMSTATE_SEC_HDR_SIZE + n, err) < 0)
		return -1;
	names = realloc(w->names, (w->section_count + 1) * sizeof(*names));
	if (!names)
		return err_errno(err, ENOMEM, "vmstate: section '%s'", name);
	w->names = names;
	copy = strdup(name);
	if (!copy)
		return err_errno(err, ENOMEM, "vmstate: section '%s'", name);

	w->sec_start = w->len;
	p = w->buf + w->len;
	le_put16(p, n);
	memcpy(p + 2, name, n);
	p += 2 + n;
	le_put16(p, version);
	le_put16(p + 2, flags);
	le_put32(p + 4, 0);
	le_put64(p + 8, 0);	/* payload_len, patched by end_section */
	w->len += VMSTATE_SEC_HDR_SIZE + n;
	w->sec_payload = w->len;
	/* Count the section now so free() releases its name on any path. */
	w->names[w->section_count++] = copy;
	return 0;
}

int vmstate_put(struct vmstate_writer *w, const void *data, size_t len, struct err *err)
{
	if (!w->sec_start) {
		w->failed = 1;
		return err_set(err, "vmstate: put outside a section");
	}
	if (vmstate__reserve(w, len, err) < 0)
		return -1;
	if (len)
		memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

int vmstate_put_u8(struct vmstate_writer *w, uint8_t v, struct err *err)
{
	return vmstate_put(w, &v, 1, err);
}

int vmstate_put_u16(struct vmstate_writer *w, uint16_t v, struct err *err)
{
	uint8_t b[2];

	le_put16(b, v);
	return vmstate_put(w, b, 2, err);
}

int vmstate_put_u32(struct vmstate_writer *w, uint32_t v, struct err *err)
{
	uint8_t b[4];

	le_put32(b, v);
	return vmstate_put(w, b, 4, err);
}

int vmstate_put_u64(struct vmstate_writer *w, uint64_t v, struct err *err)
{
	uint8_t b[8];

	le_put64(b, v);
	return vmstate_put(w, b, 8, err);
}

int vmstate_end_section(struct vmstate_writer *w, struct err *err)
{
	if (!w->sec_start)
		return err_set(err, "vmstate: end_section without begin_section");
	/* payload_len is the last field of the section header */
	le_put64(w->buf + w->sec_payload - 8, w->len - w->sec_payload);
	w->sec_start = 0;
	w->sec_payload = 0;
	return 0;
}

int vmstate_writer_finish(struct vmstate_writer *w, const void **buf, size_t *len,
			  struct err *err)
{
	if (w->failed)
		return err_set(err, "vmstate: an earlier write failed");
	if (w->sec_start)
		return err_set(err, "vmstate: section '%s' not ended",
			       w->names[w->section_count - 1]);
	if (vmstate__reserve(w, VMSTATE_TRAILER_SIZE, err) < 0)
		return -1;
	le_put32(w->buf + 16, w->section_count);
	le_put32(w->buf + w->len, crc32c(w->buf, w->len));
	*buf = w->buf;
	*len = w->len + VMSTATE_TRAILER_SIZE;
	/* The trailer is not counted in w->len, so finish is idempotent. */
	return 0;
}

int vmstate_writer_finish_fd(struct vmstate_writer *w, int fd, struct err *err)
{
	const void *buf;
	const uint8_t *p;
	size_t len;

	if (vmstate_writer_finish(w, &buf, &len, err) < 0)
		return -1;
	p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(err, errno, "vmstate: write");
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- reader ---- */

void vmstate_reader_free(struct vmstate_reader *r)
{
	free(r->sec);
	memset(r, 0, sizeof(*r));
}

int vmstate_parse(const void *buf, size_t len, struct vmstate_reader *r, struct err *err)
{
	const uint8_t *b = buf;
	struct vcursor c;
	uint32_t crc_want, crc_got;
	uint64_t max_secs;

	memset(r, 0, sizeof(*r));
	if (len < 8 || memcmp(b, VMSTATE_MAGIC, 8))
		return err_set(err, "vmstate: not a vm state file (bad magic)");
	if (len < VMSTATE_HDR_SIZE + VMSTATE_TRAILER_SIZE)
		return err_set(err, "vmstate: truncated (%zu bytes, header and trailer need %d)",
			       len, VMSTATE_HDR_SIZE + VMSTATE_TRAILER_SIZE);
	r->format_major = le_get16(b + 8);
	r->format_minor = le_get16(b + 10);
	r->flags = le_get32(b + 12);
	r->section_count = le_get32(b + 16);
	/* Version before CRC: a newer major may checksum differently, and
	 * "too new" is the useful message then. */
	if (r->format_major > VMSTATE_FORMAT_MAJOR)
		return err_set(err, "vmstate: snapshot format %u.x is newer than this vmm (%d.x)",
			       r->format_major, VMSTATE_FORMAT_MAJOR);
	if (r->format_major < VMSTATE_FORMAT_MAJOR)
		return err_set(err, "vmstate: snapshot format %u.x is too old for this vmm (%d.x)",
			       r->format_major, VMSTATE_FORMAT_MAJOR);
	crc_want = le_get32(b + len - VMSTATE_TRAILER_SIZE);
	crc_got = crc32c(b, len - VMSTATE_TRAILER_SIZE);
	if (crc_want != crc_got)
		return err_set(err, "vmstate: checksum mismatch (file says 0x%08x, data is 0x%08x): truncated or corrupt",
			       crc_want, crc_got);

	vcursor_init(&c, b + VMSTATE_HDR_SIZE, len - VMSTATE_HDR_SIZE - VMSTATE_TRAILER_SIZE);
	/* Each section takes at least header + 1 name byte: bound the count by
	 * the bytes present before allocating anything. */
	max_secs = vcursor_left(&c) / (VMSTATE_SEC_HDR_SIZE + 1);
	if (r->section_count > max_secs)
		return err_set(err, "vmstate: header claims %u sections but %zu bytes hold at most %llu",
			       r->section_count, vcursor_left(&c), (unsigned long long)max_secs);
	r->sec = calloc(r->section_count ? r->section_count : 1, sizeof(*r->sec));
	if (!r->sec)
		return err_errno(err, ENOMEM, "vmstate: %u sections", r->section_count);

	for (uint32_t i = 0; i < r->section_count; i++) {
		struct vmstate_section *s = &r->sec[i];
		uint16_t nlen;
		uint32_t reserved;
		const uint8_t *name;

		if (vcursor_get_u16(&c, &nlen) < 0)
			goto trunc;
		if (nlen == 0 || nlen > VMSTATE_NAME_MAX) {
			err_set(err, "vmstate: section %u: name length %u out of range 1..%d",
				i, nlen, VMSTATE_NAME_MAX);
			goto fail;
		}
		name = vcursor_take(&c, nlen);
		if (!name)
			goto trunc;
		if (!vmstate__name_ok(name, nlen)) {
			err_set(err, "vmstate: section %u: name is not printable ASCII", i);
			goto fail;
		}
		memcpy(s->name, name, nlen);
		s->name[nlen] = '\0';
		vcursor_get_u16(&c, &s->version);
		vcursor_get_u16(&c, &s->flags);
		vcursor_get_u32(&c, &reserved);
		vcursor_get_u64(&c, &s->len);
		if (vcursor_failed(&c))
			goto trunc;
		if (s->len > vcursor_left(&c)) {
			err_set(err, "vmstate: section %u '%s': payload_len %llu but only %zu bytes left",
				i, s->name, (unsigned long long)s->len, vcursor_left(&c));
			goto fail;
		}
		s->payload = vcursor_take(&c, s->len);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(r->sec[j].name, s->name)) {
				err_set(err, "vmstate: duplicate section '%s'", s->name);
				goto fail;
			}
		continue;
trunc:
		err_set(err, "vmstate: section %u of %u: truncated header", i, r->section_count);
		goto fail;
	}
	if (!vcursor_at_end(&c)) {
		err_set(err, "vmstate: %zu stray bytes after the last of %u sections",
			vcursor_left(&c), r->section_count);
		goto fail;
	}
	return 0;
fail:
	vmstate_reader_free(r);
	return -1;
}

int vmstate_find(const struct vmstate_reader *r, const char *name,
		 const void **payload, size_t *len, uint16_t *version)
{
	for (uint32_t i = 0; i < r->section_count; i++) {
		const struct vmstate_section *s = &r->sec[i];

		if (strcmp(s->name, name))
			continue;
		if (payload)
			*payload = s->payload;
		if (len)
			*len = s->len;
		if (version)
			*version = s->version;
		return 1;
	}
	return 0;
}

int vmstate_check_known(const struct vmstate_reader *r, const char *const known[],
			struct err *err)
{
	for (uint32_t i = 0; i < r->section_count; i++) {
		const struct vmstate_section *s = &r->sec[i];
		int found = 0;

		if (!(s->flags & VMSTATE_SEC_REQUIRED))
			continue;
		for (const char *const *k = known; k && *k; k++)
			if (!strcmp(*k, s->name)) {
				found = 1;
				break;
			}
		if (!found)
			return err_set(err, "vmstate: unknown required section '%s' (version %u)",
				       s->name, s->version);
	}
	return 0;
}
