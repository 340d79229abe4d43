/* The VM state container: snapshot files, the migration device-state blob,
 * Remus checkpoints and clone restore all use this one format.
 *
 * Little-endian layout:
 *   header  magic "KVMSTAT\0"(8) | u16 format_major | u16 format_minor |
 *           u32 flags | u32 section_count | u32 reserved            (24 bytes)
 *   section u16 name_len | name | u16 section_version | u16 flags |
 *           u32 reserved | u64 payload_len | payload                (18+n+len)
 *   trailer u32 crc32c over every byte before it
 *
 * The container's format version is independent of each section's version.
 * A reader accepts any minor of its own major (newer minors only add
 * optional things) and rejects a newer major. Names are 1..64 printable ASCII
 * characters (0x21..0x7e), unique within a file. Reserved fields are written
 * as zero and ignored on read; unknown flag bits are ignored.
 *
 * The writer builds the file in memory; it is meant for device state and
 * metadata, bulk RAM goes through lib/pagecodec streams. */
#ifndef LIB_VMSTATE_H
#define LIB_VMSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/vcursor.h"

#define VMSTATE_MAGIC		"KVMSTAT"	/* 8 bytes with the NUL */
#define VMSTATE_FORMAT_MAJOR	1
#define VMSTATE_FORMAT_MINOR	0
#define VMSTATE_HDR_SIZE	24
#define VMSTATE_SEC_HDR_SIZE	18	/* without the name */
#define VMSTATE_TRAILER_SIZE	4
#define VMSTATE_NAME_MAX	64

#define VMSTATE_SEC_REQUIRED	0x1	/* a reader that doesn't know it must fail */

/* ---- writer ---- */

struct vmstate_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t section_count;
	size_t sec_start;	/* offset of the open section's header, or 0 */
	size_t sec_payload;	/* offset of the open section's payload */
	char **names;		/* names written so far, for duplicate checks */
	int failed;		/* sticky: a put failed, finish must fail */
};

int vmstate_writer_init(struct vmstate_writer *w, uint32_t flags, struct err *err);
void vmstate_writer_free(struct vmstate_writer *w);
int vmstate_begin_section(struct vmstate_writer *w, const char *name,
			  uint16_t version, uint16_t flags, struct err *err);
int vmstate_put(struct vmstate_writer *w, const void *data, size_t len, struct err *err);
int vmstate_put_u8(struct vmstate_writer *w, uint8_t v, struct err *err);
int vmstate_put_u16(struct vmstate_writer *w, uint16_t v, struct err *err);
int vmstate_put_u32(struct vmstate_writer *w, uint32_t v, struct err *err);
int vmstate_put_u64(struct vmstate_writer *w, uint64_t v, struct err *err);
int vmstate_end_section(struct vmstate_writer *w, struct err *err);
/* Seal the file (section count, CRC). *buf stays owned by the writer. */
int vmstate_writer_finish(struct vmstate_writer *w, const void **buf, size_t *len,
			  struct err *err);
/* Seal and write the whole file to fd (handles short writes and EINTR). */
int vmstate_writer_finish_fd(struct vmstate_writer *w, int fd, struct err *err);

/* ---- reader ---- */

struct vmstate_section {
	char name[VMSTATE_NAME_MAX + 1];
	uint16_t version;
	uint16_t flags;
	const uint8_t *payload;	/* points into the parsed buffer */
	uint64_t len;
};

struct vmstate_reader {
	uint16_t format_major, format_minor;
	uint32_t flags;
	uint32_t section_count;
	struct vmstate_section *sec;
};

/* Validate the whole buffer (magic, version, CRC, every length, names,
 * duplicates). buf must outlive the reader. */
int vmstate_parse(const void *buf, size_t len, struct vmstate_reader *r, struct err *err);
void vmstate_reader_free(struct vmstate_reader *r);
/* 1 and outputs filled if found, 0 if not. Any output may be NULL. */
int vmstate_find(const struct vmstate_reader *r, const char *name,
		 const void **payload, size_t *len, uint16_t *version);
/* Fail on a REQUIRED section not in known[] (NULL-terminated); unknown
 * optional sections are fine (the caller just never looks them up). */
int vmstate_check_known(const struct vmstate_reader *r, const char *const known[],
			struct err *err);

/* ---- field descriptions (QEMU VMState-like) ----
 *
 * A section payload made by vmstate_save_fields is a sequence of entries
 *	u16 name_len | name | u32 len | bytes
 * (integers little-endian). The loader matches entries by name: unknown
 * entries are skipped, fields missing from the stream are left untouched
 * (default) if they are optional or newer than the stream's section version,
 * and an error otherwise. */

enum vmstate_ftype { VMSF_U8 = 1, VMSF_U16, VMSF_U32, VMSF_U64, VMSF_BYTES };

#define VMSF_OPTIONAL	0x1

struct vmstate_field {
	const char *name;
	size_t offset;
	size_t size;
	enum vmstate_ftype type;
	uint16_t since_version;	/* first section version that has it */
	uint16_t flags;
};

/* Generic form; use fl = VMSF_OPTIONAL for a field that may be absent. */
#define VMSTATE_FIELD(st, f, t, since, fl) \
	{ #f, offsetof(st, f), sizeof(((st *)0)->f), t, since, fl }
#define VMSTATE_U8(st, f, since)	VMSTATE_FIELD(st, f, VMSF_U8, since, 0)
#define VMSTATE_U16(st, f, since)	VMSTATE_FIELD(st, f, VMSF_U16, since, 0)
#define VMSTATE_U32(st, f, since)	VMSTATE_FIELD(st, f, VMSF_U32, since, 0)
#define VMSTATE_U64(st, f, since)	VMSTATE_FIELD(st, f, VMSF_U64, since, 0)
#define VMSTATE_BYTES(st, f, since)	VMSTATE_FIELD(st, f, VMSF_BYTES, since, 0)
#define VMSTATE_END		{ NULL, 0, 0, 0, 0, 0 }

/* Append obj's fields as entries to the open section. */
int vmstate_save_fields(struct vmstate_writer *w, const struct vmstate_field *fields,
			const void *obj, struct err *err);
/* Load entries from payload into obj. */
int vmstate_load_fields(const void *payload, size_t len, uint16_t section_version,
			const struct vmstate_field *fields, void *obj, struct err *err);

#endif
