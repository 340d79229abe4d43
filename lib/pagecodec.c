#include "lib/pagecodec.h"

#include <emmintrin.h>
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static const uint8_t pagecodec__zero_page[PAGECODEC_PAGE_SIZE] __attribute__((aligned(64)));

static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static inline void put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }
static inline uint16_t get_le16(const uint8_t *p) { return p[0] | (uint16_t)p[1] << 8; }
static inline uint32_t get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

const char *pagecodec_kind_name(int kind)
{
	switch (kind) {
	case PAGECODEC_ZERO: return "zero";
	case PAGECODEC_RAW: return "raw";
	case PAGECODEC_LZ4: return "lz4";
	}
	return "invalid";
}

int pagecodec_is_zero(const void *page)
{
	const uint8_t *p = page;
	uint64_t first;

	/* Most non-zero pages differ in the first word: cheap early out. */
	memcpy(&first, p, 8);
	if (first)
		return 0;
	for (size_t i = 0; i < PAGECODEC_PAGE_SIZE; i += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)(p + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(p + i + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(p + i + 32));
		__m128i d = _mm_loadu_si128((const __m128i *)(p + i + 48));
		__m128i o = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));

		if (_mm_movemask_epi8(_mm_cmpeq_epi8(o, _mm_setzero_si128())) != 0xffff)
			return 0;
	}
	return 1;
}

/* ---- encoder ---- */

int pagecodec_enc_init(struct pagecodec_enc *e, unsigned flags, struct err *err)
{
	memset(e, 0, sizeof(*e));
	e->flags = flags;
	if (!(flags & PAGECODEC_ENC_NO_LZ4)) {
		e->lz4_state = malloc(LZ4_sizeofState());
		if (!e->lz4_state)
			return err_errno(err, ENOMEM, "pagecodec: lz4 state");
	}
	return 0;
}

void pagecodec_enc_fini(struct pagecodec_enc *e)
{
	free(e->lz4_state);
	e->lz4_state = NULL;
}

static void pagecodec__put_hdr(uint8_t *o, uint64_t gfn, int kind, uint32_t plen)
{
	put_le64(o, gfn);
	o[8] = kind;
	o[9] = 0;
	put_le16(o + 10, 0);
	put_le32(o + 12, plen);
}

int pagecodec_encode_zero(struct pagecodec_enc *e, uint64_t gfn, void *out, size_t cap,
			  size_t *pos, struct err *err)
{
	if (*pos > cap || cap - *pos < PAGECODEC_MAX_RECORD)
		return err_set(err, "pagecodec: output buffer full (%zu of %zu bytes used)",
			       *pos, cap);
	pagecodec__put_hdr((uint8_t *)out + *pos, gfn, PAGECODEC_ZERO, 0);
	*pos += PAGECODEC_HDR_SIZE;
	e->st.zero_pages++;
	e->st.bytes_in += PAGECODEC_PAGE_SIZE;
	e->st.bytes_out += PAGECODEC_HDR_SIZE;
	return PAGECODEC_ZERO;
}

int pagecodec_encode(struct pagecodec_enc *e, uint64_t gfn, const void *page,
		     void *out, size_t cap, size_t *pos, struct err *err)
{
	uint8_t *o;
	uint32_t plen;
	int kind;

	if (*pos > cap || cap - *pos < PAGECODEC_MAX_RECORD)
		return err_set(err, "pagecodec: output buffer full (%zu of %zu bytes used)",
			       *pos, cap);
	o = (uint8_t *)out + *pos;

	if (pagecodec_is_zero(page)) {
		kind = PAGECODEC_ZERO;
		plen = 0;
		e->st.zero_pages++;
	} else {
		int n = 0;

		/* Capacity below the slack makes LZ4 give up (return 0)
		 * early on incompressible pages instead of finishing. */
		/* flags may change after init (a peer that refused LZ4). */
		if (e->lz4_state && !(e->flags & PAGECODEC_ENC_NO_LZ4))
			n = LZ4_compress_fast_extState(e->lz4_state, page,
					(char *)o + PAGECODEC_HDR_SIZE, PAGECODEC_PAGE_SIZE,
					PAGECODEC_PAGE_SIZE - PAGECODEC_LZ4_SLACK - 1,
					e->lz4_accel > 1 ? e->lz4_accel : 1);
		if (n > 0) {
			kind = PAGECODEC_LZ4;
			plen = n;
			e->st.lz4_pages++;
		} else {
			kind = PAGECODEC_RAW;
			plen = PAGECODEC_PAGE_SIZE;
			memcpy(o + PAGECODEC_HDR_SIZE, page, PAGECODEC_PAGE_SIZE);
			e->st.raw_pages++;
		}
	}
	pagecodec__put_hdr(o, gfn, kind, plen);
	*pos += PAGECODEC_HDR_SIZE + plen;
	e->st.bytes_in += PAGECODEC_PAGE_SIZE;
	e->st.bytes_out += PAGECODEC_HDR_SIZE + plen;
	return kind;
}

/* ---- decoder ---- */

void pagecodec_dec_init(struct pagecodec_dec *d, uint64_t nr_gfns)
{
	memset(&d->st, 0, sizeof(d->st));
	d->nr_gfns = nr_gfns;
	d->records = 0;
}

int pagecodec_next(struct pagecodec_dec *d, const void *buf, size_t len,
		   size_t *pos, struct pagecodec_rec *rec, struct err *err)
{
	const uint8_t *p;
	size_t left;
	uint64_t n = d->records;

	if (*pos == len)
		return 0;
	if (*pos > len)
		return err_set(err, "pagecodec: record %llu: position %zu past end %zu",
			       (unsigned long long)n, *pos, len);
	left = len - *pos;
	p = (const uint8_t *)buf + *pos;
	if (left < PAGECODEC_HDR_SIZE)
		return err_set(err, "pagecodec: record %llu: truncated header (got %zu of %d bytes)",
			       (unsigned long long)n, left, PAGECODEC_HDR_SIZE);

	rec->gfn = get_le64(p);
	rec->kind = p[8];
	rec->payload_len = get_le32(p + 12);
	rec->payload = p + PAGECODEC_HDR_SIZE;
	left -= PAGECODEC_HDR_SIZE;

	if (p[9] || get_le16(p + 10))
		return err_set(err, "pagecodec: record %llu: reserved header bytes not zero",
			       (unsigned long long)n);
	switch (rec->kind) {
	case PAGECODEC_ZERO:
		if (rec->payload_len != 0)
			return err_set(err, "pagecodec: record %llu: zero page with payload_len %u, want 0",
				       (unsigned long long)n, rec->payload_len);
		break;
	case PAGECODEC_RAW:
		if (rec->payload_len != PAGECODEC_PAGE_SIZE)
			return err_set(err, "pagecodec: record %llu: raw page with payload_len %u, want %d",
				       (unsigned long long)n, rec->payload_len, PAGECODEC_PAGE_SIZE);
		break;
	case PAGECODEC_LZ4:
		if (rec->payload_len == 0 || rec->payload_len > PAGECODEC_PAGE_SIZE)
			return err_set(err, "pagecodec: record %llu: lz4 payload_len %u out of range 1..%d",
				       (unsigned long long)n, rec->payload_len, PAGECODEC_PAGE_SIZE);
		break;
	default:
		return err_set(err, "pagecodec: record %llu: unknown kind %d",
			       (unsigned long long)n, rec->kind);
	}
	if (rec->payload_len > left)
		return err_set(err, "pagecodec: record %llu: payload_len %u but only %zu bytes left",
			       (unsigned long long)n, rec->payload_len, left);
	if (rec->gfn >= d->nr_gfns)
		return err_set(err, "pagecodec: record %llu: gfn 0x%llx beyond guest memory (%llu pages)",
			       (unsigned long long)n, (unsigned long long)rec->gfn,
			       (unsigned long long)d->nr_gfns);

	*pos += PAGECODEC_HDR_SIZE + rec->payload_len;
	d->records++;
	d->st.bytes_in += PAGECODEC_HDR_SIZE + rec->payload_len;
	return 1;
}

int pagecodec_rec_decode(struct pagecodec_dec *d, const struct pagecodec_rec *rec,
			 void *dst, struct err *err)
{
	/* records was bumped by pagecodec_next; report the same index. */
	unsigned long long n = d->records ? d->records - 1 : 0;
	int got;

	switch (rec->kind) {
	case PAGECODEC_ZERO:
		if (!pagecodec_is_zero(dst))
			memset(dst, 0, PAGECODEC_PAGE_SIZE);
		d->st.zero_pages++;
		break;
	case PAGECODEC_RAW:
		memcpy(dst, rec->payload, PAGECODEC_PAGE_SIZE);
		d->st.raw_pages++;
		break;
	case PAGECODEC_LZ4:
		got = LZ4_decompress_safe((const char *)rec->payload, dst,
					  rec->payload_len, PAGECODEC_PAGE_SIZE);
		if (got < 0)
			return err_set(err, "pagecodec: record %llu: lz4 payload is corrupt or decodes to more than %d bytes",
				       n, PAGECODEC_PAGE_SIZE);
		if (got != PAGECODEC_PAGE_SIZE)
			return err_set(err, "pagecodec: record %llu: lz4 payload decodes to %d bytes, want %d",
				       n, got, PAGECODEC_PAGE_SIZE);
		d->st.lz4_pages++;
		break;
	default:
		return err_set(err, "pagecodec: record %llu: unknown kind %d", n, rec->kind);
	}
	d->st.bytes_out += PAGECODEC_PAGE_SIZE;
	return 0;
}

int pagecodec_decode_cb(struct pagecodec_dec *d, const void *buf, size_t len,
			pagecodec_page_fn fn, void *opaque, struct err *err)
{
	struct pagecodec_rec rec;
	size_t pos = 0;
	int r;

	while ((r = pagecodec_next(d, buf, len, &pos, &rec, err)) > 0) {
		const void *page;

		switch (rec.kind) {
		case PAGECODEC_ZERO:
			page = pagecodec__zero_page;
			d->st.zero_pages++;
			d->st.bytes_out += PAGECODEC_PAGE_SIZE;
			break;
		case PAGECODEC_RAW:
			page = rec.payload;	/* no copy needed */
			d->st.raw_pages++;
			d->st.bytes_out += PAGECODEC_PAGE_SIZE;
			break;
		default:
			if (pagecodec_rec_decode(d, &rec, d->scratch, err) < 0)
				return -1;
			page = d->scratch;
			break;
		}
		if (fn(opaque, rec.gfn, rec.kind, page, err) < 0)
			return err_prefix(err, "pagecodec: record %llu (gfn 0x%llx)",
					  (unsigned long long)d->records - 1,
					  (unsigned long long)rec.gfn);
	}
	return r;
}

void pagecodec_zero_range(void *dst, size_t npages)
{
	uint8_t *p = dst;

	/* Shared memory (memfd, shmem): punch a hole. No page is read or
	 * faulted in, a populated page is freed, later reads see zeros.
	 * Anything else (private or unaligned memory) fails with EINVAL:
	 * zero page by page, writing only pages that are not zero. */
	if (((uintptr_t)p & (PAGECODEC_PAGE_SIZE - 1)) == 0 &&
	    madvise(p, npages * PAGECODEC_PAGE_SIZE, MADV_REMOVE) == 0)
		return;
	for (size_t i = 0; i < npages; i++, p += PAGECODEC_PAGE_SIZE)
		if (!pagecodec_is_zero(p))
			memset(p, 0, PAGECODEC_PAGE_SIZE);
}

/* One pending run of records, applied with one system call (see
 * pagecodec_decode_to): zero pages adjacent in memory, or RAW pages
 * adjacent in one file. At most one run is pending, so records take effect
 * in stream order. */
struct pagecodec__run {
	int kind;			/* 0 none, PAGECODEC_ZERO, PAGECODEC_RAW (file pages) */
	uint8_t *zstart;
	size_t n;			/* pages */
	int fd;
	off_t off;			/* file offset of the first RAW page */
	struct iovec iov[PAGECODEC_RUN_MAX];
	uint8_t *dst[PAGECODEC_RUN_MAX];	/* for the fallback */
};

static void pagecodec__flush(struct pagecodec__run *run)
{
	size_t done = 0;

	if (run->kind == PAGECODEC_ZERO) {
		pagecodec_zero_range(run->zstart, run->n);
	} else if (run->kind == PAGECODEC_RAW) {
		/* pwritev fills page-cache pages directly: no page fault and
		 * no clearing of a fresh page before the copy. Any failure or
		 * short write: copy the rest through the mapping. */
		ssize_t w = pwritev(run->fd, run->iov, (int)run->n, run->off);

		if (w > 0)
			done = (size_t)w / PAGECODEC_PAGE_SIZE;
		for (size_t i = done; i < run->n; i++)
			memcpy(run->dst[i], run->iov[i].iov_base, PAGECODEC_PAGE_SIZE);
	}
	run->kind = 0;
	run->n = 0;
}

int pagecodec_decode_to(struct pagecodec_dec *d, const void *buf, size_t len,
			pagecodec_addr_fn addr, pagecodec_file_fn file, void *opaque,
			uint64_t *records, struct err *err)
{
	struct pagecodec__run runbuf, *run = &runbuf;	/* ~6 KiB of stack */
	struct pagecodec_rec rec;
	size_t pos = 0;
	int r;

	*records = 0;
	run->kind = 0;
	run->n = 0;
	while ((r = pagecodec_next(d, buf, len, &pos, &rec, err)) > 0) {
		/* gfn < nr_gfns was checked by pagecodec_next. */
		uint8_t *dst = addr(opaque, rec.gfn);
		off_t off = 0;
		int fd;

		if (rec.kind == PAGECODEC_ZERO) {
			(*records)++;
			d->st.zero_pages++;
			d->st.bytes_out += PAGECODEC_PAGE_SIZE;
			if (run->kind == PAGECODEC_ZERO &&
			    dst == run->zstart + run->n * PAGECODEC_PAGE_SIZE) {
				run->n++;
				continue;
			}
			pagecodec__flush(run);
			run->kind = PAGECODEC_ZERO;
			run->zstart = dst;
			run->n = 1;
			continue;
		}
		if (rec.kind != PAGECODEC_ZERO && file && (fd = file(opaque, rec.gfn, &off)) >= 0) {
			const void *page = rec.payload;

			if (!(run->kind == PAGECODEC_RAW && run->fd == fd && run->n < PAGECODEC_RUN_MAX &&
			      off == run->off + (off_t)(run->n * PAGECODEC_PAGE_SIZE))) {
				pagecodec__flush(run);
				run->kind = PAGECODEC_RAW;
				run->fd = fd;
				run->off = off;
			}
			/* An LZ4 page joins the run decompressed into its own
			 * slot of run_buf (slot n stays untouched until this run
			 * is flushed): writing it through the mapping instead
			 * would fault in and clear a fresh page first. */
			if (rec.kind == PAGECODEC_LZ4) {
				if (pagecodec_rec_decode(d, &rec, d->run_buf[run->n], err) < 0) {
					pagecodec__flush(run);	/* the records before it */
					return -1;
				}
				page = d->run_buf[run->n];
			} else {
				d->st.raw_pages++;
				d->st.bytes_out += PAGECODEC_PAGE_SIZE;
			}
			(*records)++;
			run->iov[run->n] = (struct iovec){ (void *)page, PAGECODEC_PAGE_SIZE };
			run->dst[run->n++] = dst;
			continue;
		}
		pagecodec__flush(run);
		if (pagecodec_rec_decode(d, &rec, dst, err) < 0)
			return -1;
		(*records)++;
	}
	pagecodec__flush(run);
	return r;
}

static void *pagecodec__flat(void *mem, uint64_t gfn)
{
	return (uint8_t *)mem + gfn * PAGECODEC_PAGE_SIZE;
}

int pagecodec_decode_to_mem(struct pagecodec_dec *d, const void *buf, size_t len,
			    void *mem, struct err *err)
{
	uint64_t n;

	return pagecodec_decode_to(d, buf, len, pagecodec__flat, NULL, mem, &n, err);
}
