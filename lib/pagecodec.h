/* Page codec: the wire format for guest pages, shared by live migration,
 * Remus checkpoints and clone images.
 *
 * A stream is a sequence of records, little-endian:
 *	u64 gfn | u8 kind | u8 reserved | u16 reserved | u32 payload_len | payload
 * kind ZERO: payload_len 0 (the page is all zero; bytes never sent)
 * kind RAW:  payload_len 4096, the page verbatim
 * kind LZ4:  0 < payload_len <= 4096, an LZ4 block that decodes to exactly
 *            4096 bytes
 * Reserved fields must be zero. A record is at most PAGECODEC_MAX_RECORD bytes.
 *
 * No globals: each thread runs its own encoder/decoder. */
#ifndef LIB_PAGECODEC_H
#define LIB_PAGECODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

#define PAGECODEC_PAGE_SIZE	4096
#define PAGECODEC_HDR_SIZE	16
#define PAGECODEC_MAX_RECORD	(PAGECODEC_HDR_SIZE + PAGECODEC_PAGE_SIZE)
/* LZ4 is used only if it saves at least this much over RAW. */
#define PAGECODEC_LZ4_SLACK	256

enum pagecodec_kind {
	PAGECODEC_ZERO = 1,
	PAGECODEC_RAW  = 2,
	PAGECODEC_LZ4  = 3,
};

struct pagecodec_stats {
	uint64_t zero_pages;
	uint64_t raw_pages;
	uint64_t lz4_pages;
	uint64_t bytes_in;	/* encoder: page bytes; decoder: record bytes */
	uint64_t bytes_out;	/* encoder: record bytes; decoder: page bytes */
};

/* True if the 4096-byte page is all zero. Any alignment. */
int pagecodec_is_zero(const void *page);

/* ---- encoder ---- */

#define PAGECODEC_ENC_NO_LZ4	0x1	/* only ZERO and RAW (fast links) */

struct pagecodec_enc {
	struct pagecodec_stats st;
	unsigned flags;
	void *lz4_state;	/* per-encoder LZ4 scratch, no 16K stack use */
	int lz4_accel;		/* LZ4 acceleration (<= 1: default, best ratio);
				 * higher = faster, fewer bytes saved; may change after init */
};

int pagecodec_enc_init(struct pagecodec_enc *e, unsigned flags, struct err *err);
void pagecodec_enc_fini(struct pagecodec_enc *e);

/* Append one record for (gfn, page) at out[*pos], advance *pos. Fails
 * (without writing) if fewer than PAGECODEC_MAX_RECORD bytes are free.
 * Returns the record kind, or -1. */
int pagecodec_encode(struct pagecodec_enc *e, uint64_t gfn, const void *page,
		     void *out, size_t cap, size_t *pos, struct err *err);

/* Append a ZERO record for gfn without looking at the page (the caller
 * knows it is zero, e.g. a hole in the backing memfd). Same capacity rule
 * and return value as pagecodec_encode. */
int pagecodec_encode_zero(struct pagecodec_enc *e, uint64_t gfn, void *out, size_t cap,
			  size_t *pos, struct err *err);

/* ---- decoder ---- */

#define PAGECODEC_RUN_MAX	256	/* pages applied by one system call */

/* About 1 MiB (run_buf): allocate it on the heap or statically. */
struct pagecodec_dec {
	struct pagecodec_stats st;
	uint64_t nr_gfns;	/* every gfn must be < nr_gfns */
	uint64_t records;	/* records decoded so far (for error text) */
	uint8_t scratch[PAGECODEC_PAGE_SIZE] __attribute__((aligned(64)));
	/* LZ4 pages of the pending pwritev run (pagecodec_decode_to) */
	uint8_t run_buf[PAGECODEC_RUN_MAX][PAGECODEC_PAGE_SIZE] __attribute__((aligned(64)));
};

/* One parsed, validated record; payload points into the input buffer. */
struct pagecodec_rec {
	uint64_t gfn;
	int kind;
	uint32_t payload_len;
	const uint8_t *payload;
};

void pagecodec_dec_init(struct pagecodec_dec *d, uint64_t nr_gfns);


/* Parse the record at buf[*pos], check header, bounds and gfn, advance *pos.
 * Returns 1 with *rec filled, 0 at a clean end of buffer, -1 on error.
 * Does not decompress: follow with pagecodec_rec_decode. */
int pagecodec_next(struct pagecodec_dec *d, const void *buf, size_t len,
		   size_t *pos, struct pagecodec_rec *rec, struct err *err);

/* Produce the 4096-byte page of rec into dst. ZERO pages are written only if
 * dst is not already zero (keeps untouched anonymous memory unpopulated). */
int pagecodec_rec_decode(struct pagecodec_dec *d, const struct pagecodec_rec *rec,
			 void *dst, struct err *err);

/* Called once per page; page is a 4096-byte buffer valid only during the
 * call. Return -1 (with err set) to stop decoding. */
typedef int (*pagecodec_page_fn)(void *opaque, uint64_t gfn, int kind,
				 const void *page, struct err *err);

/* Decode every record of buf, handing each page to fn. */
int pagecodec_decode_cb(struct pagecodec_dec *d, const void *buf, size_t len,
			pagecodec_page_fn fn, void *opaque, struct err *err);

/* Decode every record of buf straight into guest memory: page gfn lands at
 * mem + gfn * 4096; mem must span d->nr_gfns pages. */
int pagecodec_decode_to_mem(struct pagecodec_dec *d, const void *buf, size_t len,
			    void *mem, struct err *err);

/* Where page gfn lives (gfn already checked < nr_gfns). */
typedef void *(*pagecodec_addr_fn)(void *opaque, uint64_t gfn);
/* The file (memfd) and offset backing page gfn, or -1 if none. */
typedef int (*pagecodec_file_fn)(void *opaque, uint64_t gfn, off_t *off);

/* Decode every record of buf into the pages addr() names; *records counts
 * the records applied. Runs are applied with one system call each, in
 * stream order with the other records: ZERO records of pages adjacent in
 * memory as one pagecodec_zero_range; with file (may be NULL), RAW and LZ4
 * records of pages adjacent in one file as one pwritev (LZ4 pages are
 * decompressed into d->run_buf first; page-cache pages are filled in place:
 * no page fault, no clearing first; anything else goes through the mapping). On error, the records before the bad one were applied. */
int pagecodec_decode_to(struct pagecodec_dec *d, const void *buf, size_t len,
			pagecodec_addr_fn addr, pagecodec_file_fn file, void *opaque,
			uint64_t *records, struct err *err);

/* Make npages pages at dst read as zero. On shared memory (a memfd mapping)
 * this punches a hole (MADV_REMOVE): nothing is read or faulted in, which
 * matters on a fresh destination where reading a hole allocates a page.
 * Otherwise it writes the pages that are not already zero. */
void pagecodec_zero_range(void *dst, size_t npages);

const char *pagecodec_kind_name(int kind);

#endif
