/* Migration wire protocol: payload encoders/decoders (see proto.h). */
#include "migrate/proto.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/le.h"
#include "lib/pagecodec.h"

const char *mig_frame_name(uint16_t type)
{
	switch (type) {
	case MIG_F_HELLO:	return "HELLO";
	case MIG_F_PAGES:	return "PAGES";
	case MIG_F_ROUND_END:	return "ROUND_END";
	case MIG_F_STATE:	return "STATE";
	case MIG_F_COMMIT:	return "COMMIT";
	case MIG_F_ACK_LOADED:	return "ACK_LOADED";
	case MIG_F_GO:		return "GO";
	case MIG_F_GO_ACK:	return "GO_ACK";
	case MIG_F_ERROR:	return "ERROR";
	case MIG_F_SYNC:	return "SYNC";
	case MIG_F_SYNCED:	return "SYNCED";
	default:		return "unknown";
	}
}

int mig_hello_encode(const struct mig_hello *h, uint8_t *buf, size_t cap, struct err *e)
{
	size_t need = 12 + (size_t)h->nregions * 16 + 4 + h->compat_len;
	uint8_t *p = buf;

	if (h->nregions > MIG_MAX_REGIONS || h->compat_len > MIG_COMPAT_MAX || need > cap)
		return err_set(e, "HELLO: %u regions / %u byte compat blob do not fit",
			       h->nregions, h->compat_len);
	le_put32(p, h->version);
	le_put32(p + 4, h->features);
	le_put32(p + 8, h->nregions);
	p += 12;
	for (uint32_t i = 0; i < h->nregions; i++, p += 16) {
		le_put64(p, h->region[i].gpa);
		le_put64(p + 8, h->region[i].size);
	}
	le_put32(p, h->compat_len);
	if (h->compat_len)
		memcpy(p + 4, h->compat, h->compat_len);
	return (int)need;
}

int mig_hello_decode(const uint8_t *p, size_t len, struct mig_hello *h, struct err *e)
{
	const uint8_t *end = p + len;

	memset(h, 0, sizeof(*h));
	if (len < 12)
		return err_set(e, "HELLO: %zu bytes, too short", len);
	h->version = le_get32(p);
	h->features = le_get32(p + 4);
	h->nregions = le_get32(p + 8);
	p += 12;
	/* Check the version first: a future version may change the rest. */
	if (h->version != MIG_WIRE_VERSION)
		return err_set(e, "HELLO: wire version %u, this side speaks %u",
			       h->version, MIG_WIRE_VERSION);
	if (h->nregions == 0 || h->nregions > MIG_MAX_REGIONS)
		return err_set(e, "HELLO: %u RAM regions (1..%d allowed)", h->nregions,
			       MIG_MAX_REGIONS);
	if ((size_t)(end - p) < (size_t)h->nregions * 16 + 4)
		return err_set(e, "HELLO: truncated region list");
	for (uint32_t i = 0; i < h->nregions; i++, p += 16) {
		h->region[i].gpa = le_get64(p);
		h->region[i].size = le_get64(p + 8);
		if (h->region[i].size == 0 || h->region[i].size % PAGECODEC_PAGE_SIZE ||
		    h->region[i].size > (1ull << 46))
			return err_set(e, "HELLO: region %u size 0x%llx invalid", i,
				       (unsigned long long)h->region[i].size);
	}
	h->compat_len = le_get32(p);
	p += 4;
	if (h->compat_len > MIG_COMPAT_MAX || h->compat_len != (size_t)(end - p))
		return err_set(e, "HELLO: compat blob length %u does not match the %zu bytes left",
			       h->compat_len, (size_t)(end - p));
	h->compat = h->compat_len ? p : NULL;
	return 0;
}

int mig_hello_from_regions(struct mig_hello *h, const struct mig_ram *r, int n,
			   uint32_t features, const uint8_t *compat, size_t compat_len,
			   struct err *e)
{
	memset(h, 0, sizeof(*h));
	if (n <= 0 || n > MIG_MAX_REGIONS)
		return err_set(e, "%d RAM regions (1..%d supported)", n, MIG_MAX_REGIONS);
	if (compat_len > MIG_COMPAT_MAX)
		return err_set(e, "compat blob of %zu bytes exceeds %d", compat_len,
			       MIG_COMPAT_MAX);
	h->version = MIG_WIRE_VERSION;
	h->features = features;
	h->nregions = n;
	for (int i = 0; i < n; i++) {
		if (r[i].size == 0 || r[i].size % PAGECODEC_PAGE_SIZE || !r[i].host)
			return err_set(e, "RAM region %d: size 0x%llx invalid or unmapped", i,
				       (unsigned long long)r[i].size);
		h->region[i].gpa = r[i].gpa;
		h->region[i].size = r[i].size;
	}
	h->compat_len = compat_len;
	h->compat = compat;
	return 0;
}

static void mig__size_str(uint64_t b, char *out, size_t cap)
{
	if (b % (1ull << 20) == 0)
		snprintf(out, cap, "%llu MiB", (unsigned long long)(b >> 20));
	else
		snprintf(out, cap, "%llu KiB", (unsigned long long)(b >> 10));
}

int mig_hello_check_layout(const struct mig_hello *mine, const struct mig_hello *peer,
			   const char *peer_name, struct err *e)
{
	char a[32], b[32];

	if (mine->nregions != peer->nregions)
		return err_set(e, "RAM layout mismatch: %u regions here, %u on %s",
			       mine->nregions, peer->nregions, peer_name);
	for (uint32_t i = 0; i < mine->nregions; i++) {
		if (mine->region[i].gpa == peer->region[i].gpa &&
		    mine->region[i].size == peer->region[i].size)
			continue;
		mig__size_str(mine->region[i].size, a, sizeof(a));
		mig__size_str(peer->region[i].size, b, sizeof(b));
		return err_set(e, "RAM layout mismatch: region %u is %s at 0x%llx here, %s at 0x%llx on %s",
			       i, a, (unsigned long long)mine->region[i].gpa, b,
			       (unsigned long long)peer->region[i].gpa, peer_name);
	}
	return 0;
}

int mig_round_end_encode(const struct mig_round_end *r, uint8_t *buf, size_t cap)
{
	if (cap < 48)
		return -1;
	le_put32(buf, r->round);
	le_put32(buf + 4, r->flags);
	le_put64(buf + 8, r->pages);
	le_put64(buf + 16, r->bytes);
	le_put64(buf + 24, r->dirty_left);
	le_put64(buf + 32, r->dirty_rate);
	le_put64(buf + 40, r->bandwidth);
	return 48;
}

int mig_round_end_decode(const uint8_t *p, size_t len, struct mig_round_end *r,
			 struct err *e)
{
	if (len != 48)
		return err_set(e, "ROUND_END: %zu bytes, want 48", len);
	r->round = le_get32(p);
	r->flags = le_get32(p + 4);
	r->pages = le_get64(p + 8);
	r->bytes = le_get64(p + 16);
	r->dirty_left = le_get64(p + 24);
	r->dirty_rate = le_get64(p + 32);
	r->bandwidth = le_get64(p + 40);
	if (r->flags & ~MIG_RE_FINAL)
		return err_set(e, "ROUND_END: unknown flags 0x%x", r->flags);
	return 0;
}

int mig_commit_encode(const struct mig_commit *c, uint8_t *buf, size_t cap)
{
	if (cap < 24)
		return -1;
	le_put64(buf, c->state_len);
	le_put32(buf + 8, c->state_crc);
	le_put32(buf + 12, c->rounds);
	le_put64(buf + 16, c->total_pages);
	return 24;
}

int mig_commit_decode(const uint8_t *p, size_t len, struct mig_commit *c, struct err *e)
{
	if (len != 24)
		return err_set(e, "COMMIT: %zu bytes, want 24", len);
	c->state_len = le_get64(p);
	c->state_crc = le_get32(p + 8);
	c->rounds = le_get32(p + 12);
	c->total_pages = le_get64(p + 16);
	return 0;
}

void mig_state_hdr_encode(uint8_t hdr[MIG_STATE_HDR], uint64_t total, uint64_t off)
{
	le_put64(hdr, total);
	le_put64(hdr + 8, off);
}

int mig_state_hdr_decode(const uint8_t *p, size_t len, uint64_t *total, uint64_t *off,
			 struct err *e)
{
	if (len < MIG_STATE_HDR)
		return err_set(e, "STATE: %zu bytes, shorter than its header", len);
	*total = le_get64(p);
	*off = le_get64(p + 8);
	if (*total == 0 || *total > MIG_STATE_MAX)
		return err_set(e, "STATE: total length %llu outside 1..%u",
			       (unsigned long long)*total, MIG_STATE_MAX);
	if (*off > *total || len - MIG_STATE_HDR > *total - *off)
		return err_set(e, "STATE: slice [%llu, +%zu) beyond the %llu byte blob",
			       (unsigned long long)*off, len - MIG_STATE_HDR,
			       (unsigned long long)*total);
	return 0;
}

void mig_ack_encode(uint8_t buf[16], uint64_t pages, uint64_t state_len)
{
	le_put64(buf, pages);
	le_put64(buf + 8, state_len);
}

int mig_ack_decode(const uint8_t *p, size_t len, uint64_t *pages, uint64_t *state_len,
		   struct err *e)
{
	if (len != 16)
		return err_set(e, "ACK_LOADED: %zu bytes, want 16", len);
	*pages = le_get64(p);
	*state_len = le_get64(p + 8);
	return 0;
}

void mig_synced_encode(uint8_t buf[8], uint64_t pages)
{
	le_put64(buf, pages);
}

int mig_synced_decode(const uint8_t *p, size_t len, uint64_t *pages, struct err *e)
{
	if (len != 8)
		return err_set(e, "SYNCED: %zu bytes, want 8", len);
	*pages = le_get64(p);
	return 0;
}

void mig_error_text(const uint8_t *p, size_t len, char *out, size_t cap)
{
	size_t n = 0;

	if (cap == 0)
		return;
	for (size_t i = 0; i < len && i < MIG_ERROR_MAX && n + 1 < cap; i++)
		out[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	out[n] = 0;
	if (n == 0)
		snprintf(out, cap, "(no reason given)");
}

void mig_send_error(struct frame_conn *c, const char *msg)
{
	struct err ignored;
	size_t n = strlen(msg);

	if (n > MIG_ERROR_MAX)
		n = MIG_ERROR_MAX;
	(void)frame_send(c, MIG_F_ERROR, msg, (uint32_t)n, &ignored);
}

uint64_t mig_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
