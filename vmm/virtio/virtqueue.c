#include "vmm/virtio/virtqueue.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/vcursor.h"
#include "lib/vmstate.h"

/* Ring layout (virtio 1.x 2.7): all fields little-endian; this VMM only
 * runs on x86, so guest values are loaded directly. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host only");

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "desc layout");

#define AVAIL_SIZE(n)	(6 + 2 * (uint64_t)(n))	/* flags, idx, ring[n], used_event */
#define USED_SIZE(n)	(6 + 8 * (uint64_t)(n))	/* flags, idx, ring[n], avail_event */

static int vq_fail(struct virtq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vq_fail(struct virtq *vq, const char *fmt, ...)
{
	va_list ap;

	if (!vq->broken) {	/* keep the first reason */
		va_start(ap, fmt);
		vsnprintf(vq->err.msg, sizeof(vq->err.msg), fmt, ap);
		va_end(ap);
	}
	vq->broken = true;
	return -1;
}

void vq_init(struct virtq *vq, const struct guest_mem *gm, uint16_t max_size)
{
	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
	vq->max_size = max_size;
	vq_reset(vq);
}

void vq_reset(struct virtq *vq)
{
	const struct guest_mem *gm = vq->gm;
	uint16_t max = vq->max_size;

	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
	vq->max_size = max;
	vq->size = max;		/* the driver reads the default size, may lower it */
}

/* Host pointers of the three ring parts, or -1 (broken) if any lies outside
 * RAM. Recomputed on each use: cheap, and never stale after a load. */
static int vq_rings(struct virtq *vq, struct vring_desc **desc, uint8_t **avail, uint8_t **used)
{
	*desc = gm_ptr(vq->gm, vq->desc_addr, 16 * (uint64_t)vq->size);
	*avail = gm_ptr(vq->gm, vq->avail_addr, AVAIL_SIZE(vq->size));
	*used = gm_ptr(vq->gm, vq->used_addr, USED_SIZE(vq->size));
	if (!*desc || !*avail || !*used)
		return vq_fail(vq, "virtqueue: ring outside guest RAM (desc %#llx avail %#llx used %#llx size %u)",
			       (unsigned long long)vq->desc_addr, (unsigned long long)vq->avail_addr,
			       (unsigned long long)vq->used_addr, vq->size);
	return 0;
}

int vq_enable(struct virtq *vq, bool event_idx, bool indirect)
{
	struct vring_desc *d;
	uint8_t *a, *u;

	vq->event_idx = event_idx;
	vq->indirect = indirect;
	/* Split rings must have a power-of-2 size (virtio 1.x 2.7). */
	if (!vq->size || vq->size > vq->max_size || (vq->size & (vq->size - 1)))
		return vq_fail(vq, "virtqueue: bad queue size %u (max %u)", vq->size, vq->max_size);
	if ((vq->desc_addr & 15) || (vq->avail_addr & 1) || (vq->used_addr & 3))
		return vq_fail(vq, "virtqueue: misaligned ring");
	if (vq_rings(vq, &d, &a, &u) < 0)
		return -1;
	vq->ready = true;
	return 0;
}

static inline uint16_t ld16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static inline void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}

/* Publish avail_event = last_avail_idx: "notify me when you add past it". */
static void vq_set_avail_event(struct virtq *vq, uint8_t *used)
{
	uint64_t off = 4 + 8 * (uint64_t)vq->size;

	st16(used + off, vq->last_avail_idx);
	gm_mark_dirty(vq->gm, vq->used_addr + off, 2);
}

/* Add one descriptor's buffer to elem. */
static int vq_add_seg(struct virtq *vq, struct vq_elem *e, const struct vring_desc *d)
{
	bool w = d->flags & VIRTQ_DESC_F_WRITE;
	uint8_t *p;
	struct vq_iov *iov;

	if (!w && e->n_in)
		return vq_fail(vq, "virtqueue: readable descriptor after a writable one");
	if (!d->len)
		return 0;	/* harmless; nothing to map */
	if (e->n_out + e->n_in >= VQ_MAX_SEGS)
		return vq_fail(vq, "virtqueue: chain has more than %d segments", VQ_MAX_SEGS);
	p = gm_ptr(vq->gm, d->addr, d->len);
	if (!p)
		return vq_fail(vq, "virtqueue: buffer %#llx+%u outside guest RAM",
			       (unsigned long long)d->addr, d->len);
	/* Totals are u32; a chain summing past 4 GiB is hostile. */
	if (w) {
		if (d->len > UINT32_MAX - e->in_len)
			return vq_fail(vq, "virtqueue: chain length overflows");
		e->in_len += d->len;
		iov = &e->iov[e->n_out + e->n_in++];
	} else {
		if (d->len > UINT32_MAX - e->out_len)
			return vq_fail(vq, "virtqueue: chain length overflows");
		e->out_len += d->len;
		iov = &e->iov[e->n_out++];
	}
	iov->base = p;
	iov->gpa = d->addr;
	iov->len = d->len;
	return 0;
}

int vq_pop(struct virtq *vq, struct vq_elem *e)
{
	struct vring_desc *ring, *table, d;
	uint8_t *avail, *used;
	uint16_t avail_idx, head, idx;
	uint32_t tsize, steps;
	bool in_indirect = false;

	if (vq->broken)
		return -1;
	if (!vq->ready)
		return 0;
	if (vq_rings(vq, &ring, &avail, &used) < 0)
		return -1;

	avail_idx = ld16(avail + 2);
	if (avail_idx == vq->last_avail_idx) {
		if (!vq->event_idx)
			return 0;
		/* Ask for a kick at the next buffer, then re-check: the driver
		 * may have added one before it could see avail_event. */
		vq_set_avail_event(vq, used);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = ld16(avail + 2);
		if (avail_idx == vq->last_avail_idx)
			return 0;
	}
	/* The driver can be at most a full ring ahead of us. */
	if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->size)
		return vq_fail(vq, "virtqueue: avail idx %u is more than %u ahead of %u",
			       avail_idx, vq->size, vq->last_avail_idx);
	/* Read ring entries and descriptors only after seeing idx. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);

	head = ld16(avail + 4 + 2 * (vq->last_avail_idx & (vq->size - 1)));
	if (head >= vq->size)
		return vq_fail(vq, "virtqueue: head index %u >= size %u", head, vq->size);

	memset(e, 0, offsetof(struct vq_elem, iov));
	e->head = head;
	table = ring;
	tsize = vq->size;
	idx = head;
	/* A chain visits each descriptor of its table at most once, so more
	 * than tsize steps means a loop. */
	for (steps = 0;; steps++) {
		if (steps >= tsize)
			return vq_fail(vq, "virtqueue: descriptor chain longer than its table (loop?)");
		memcpy(&d, &table[idx], sizeof(d));	/* one read of guest data */
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return vq_fail(vq, "virtqueue: indirect descriptor not negotiated");
			if (in_indirect)
				return vq_fail(vq, "virtqueue: nested indirect descriptor");
			if (steps != 0 || (d.flags & VIRTQ_DESC_F_NEXT))
				return vq_fail(vq, "virtqueue: indirect descriptor must be the only one in a chain");
			if (!d.len || d.len % 16 || d.len / 16 > VQ_MAX_SIZE)
				return vq_fail(vq, "virtqueue: bad indirect table length %u", d.len);
			if (d.addr & 15)
				return vq_fail(vq, "virtqueue: misaligned indirect table");
			table = gm_ptr(vq->gm, d.addr, d.len);
			if (!table)
				return vq_fail(vq, "virtqueue: indirect table %#llx+%u outside guest RAM",
					       (unsigned long long)d.addr, d.len);
			tsize = d.len / 16;
			in_indirect = true;
			idx = 0;
			steps = (uint32_t)-1;	/* restart the count for the table */
			continue;
		}
		if (vq_add_seg(vq, e, &d) < 0)
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		idx = d.next;
		if (idx >= tsize)
			return vq_fail(vq, "virtqueue: next index %u >= table size %u", idx, tsize);
	}

	vq->last_avail_idx++;
	vq->inflight++;
	if (vq->event_idx)
		vq_set_avail_event(vq, used);
	return 1;
}

void vq_unpop(struct virtq *vq, uint16_t n)
{
	if (n > vq->inflight)
		n = vq->inflight;
	vq->last_avail_idx -= n;
	vq->inflight -= n;
}

int vq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vring_desc *ring;
	uint8_t *avail, *used;
	uint64_t off;

	if (vq->broken)
		return -1;
	if (!vq->ready || !vq->inflight)
		return vq_fail(vq, "virtqueue: push with nothing in flight");
	if (vq_rings(vq, &ring, &avail, &used) < 0)
		return -1;
	off = 4 + 8 * (uint64_t)(vq->used_idx & (vq->size - 1));
	memcpy(used + off, &(uint32_t){ head }, 4);
	memcpy(used + off + 4, &len, 4);
	gm_mark_dirty(vq->gm, vq->used_addr + off, 8);
	vq->used_idx++;
	vq->inflight--;
	/* The element must be visible before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	st16(used + 2, vq->used_idx);
	gm_mark_dirty(vq->gm, vq->used_addr + 2, 2);
	return 0;
}

bool vq_should_notify(struct virtq *vq)
{
	struct vring_desc *ring;
	uint8_t *avail, *used;
	uint16_t old, new, event;
	bool valid;

	if (vq->broken || !vq->ready || vq_rings(vq, &ring, &avail, &used) < 0)
		return false;
	/* Our used idx store must be ordered before reading the driver's
	 * suppression fields, or we could miss its request for a kick. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(ld16(avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_used_valid;
	new = vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	event = ld16(avail + 4 + 2 * (uint64_t)vq->size);
	/* vring_need_event(): did used idx cross used_event since last time? */
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

/* The pieces of segments [first, end) of e that hold bytes off..off+len of
 * their concatenation: fn(ctx, segment, offset in it, length, bytes done
 * before it) for each. Returns the bytes covered (< len if e is shorter). */
static uint32_t vq__walk(const struct vq_elem *e, int first, int end, uint32_t off, uint32_t len,
			 void (*fn)(void *ctx, const struct vq_iov *v, uint32_t voff, uint32_t n,
				    uint32_t done),
			 void *ctx)
{
	uint32_t done = 0;

	for (int i = first; i < end && done < len; i++) {
		const struct vq_iov *v = &e->iov[i];
		uint32_t n;

		if (off >= v->len) {
			off -= v->len;
			continue;
		}
		n = v->len - off < len - done ? v->len - off : len - done;
		fn(ctx, v, off, n, done);
		done += n;
		off = 0;
	}
	return done;
}

struct vq__copy {
	const struct guest_mem *gm;
	uint8_t *buf;
};

static void vq__read_piece(void *ctx, const struct vq_iov *v, uint32_t voff, uint32_t n, uint32_t done)
{
	memcpy(((struct vq__copy *)ctx)->buf + done, v->base + voff, n);
}

static void vq__write_piece(void *ctx, const struct vq_iov *v, uint32_t voff, uint32_t n, uint32_t done)
{
	struct vq__copy *c = ctx;

	memcpy(v->base + voff, c->buf + done, n);
	gm_mark_dirty(c->gm, v->gpa + voff, n);
}

static void vq__dirty_piece(void *ctx, const struct vq_iov *v, uint32_t voff, uint32_t n, uint32_t done)
{
	(void)done;
	gm_mark_dirty(((struct vq__copy *)ctx)->gm, v->gpa + voff, n);
}

uint32_t vq_elem_read(const struct vq_elem *e, uint32_t off, void *dst, uint32_t len)
{
	struct vq__copy c = { .buf = dst };

	return vq__walk(e, 0, e->n_out, off, len, vq__read_piece, &c);
}

uint32_t vq_elem_write(const struct guest_mem *gm, const struct vq_elem *e, uint32_t off,
		       const void *src, uint32_t len)
{
	/* buf is only read by vq__write_piece */
	struct vq__copy c = { .gm = gm, .buf = (uint8_t *)(uintptr_t)src };

	return vq__walk(e, e->n_out, e->n_out + e->n_in, off, len, vq__write_piece, &c);
}

void vq_elem_mark_dirty(const struct guest_mem *gm, const struct vq_elem *e, uint32_t off,
			uint32_t len)
{
	struct vq__copy c = { .gm = gm };

	vq__walk(e, e->n_out, e->n_out + e->n_in, off, len, vq__dirty_piece, &c);
}

int vq_elem_iovec(const struct vq_elem *e, bool in, uint32_t off, uint32_t len,
		  struct iovec *iov)
{
	int first = in ? e->n_out : 0, end = in ? e->n_out + e->n_in : e->n_out, n = 0;
	uint32_t done = 0;

	for (int i = first; i < end && done < len; i++) {
		const struct vq_iov *v = &e->iov[i];
		uint32_t k;

		if (off >= v->len) {
			off -= v->len;
			continue;
		}
		k = v->len - off < len - done ? v->len - off : len - done;
		iov[n].iov_base = v->base + off;
		iov[n].iov_len = k;
		n++;
		done += k;
		off = 0;
	}
	return n;
}

/* Payload (all little-endian): u16 size, u8 ready, u64 desc, u64 avail,
 * u64 used, u16 last_avail_idx, u16 used_idx, u16 signalled_used,
 * u8 signalled_used_valid, u16 inflight, u8 event_idx, u8 indirect,
 * u8 broken. 42 bytes. */
int vq_save(const struct virtq *vq, struct vmstate_writer *w, struct err *e)
{
	if (vmstate_put_u16(w, vq->size, e) < 0 || vmstate_put_u8(w, vq->ready, e) < 0 ||
	    vmstate_put_u64(w, vq->desc_addr, e) < 0 || vmstate_put_u64(w, vq->avail_addr, e) < 0 ||
	    vmstate_put_u64(w, vq->used_addr, e) < 0 ||
	    vmstate_put_u16(w, vq->last_avail_idx, e) < 0 ||
	    vmstate_put_u16(w, vq->used_idx, e) < 0 ||
	    vmstate_put_u16(w, vq->signalled_used, e) < 0 ||
	    vmstate_put_u8(w, vq->signalled_used_valid, e) < 0 ||
	    vmstate_put_u16(w, vq->inflight, e) < 0 || vmstate_put_u8(w, vq->event_idx, e) < 0 ||
	    vmstate_put_u8(w, vq->indirect, e) < 0 || vmstate_put_u8(w, vq->broken, e) < 0)
		return err_prefix(e, "virtqueue");
	return 0;
}

int vq_load(struct virtq *vq, struct vcursor *c, struct err *e)
{
	uint8_t ready = 0, sig_valid = 0, event_idx = 0, indirect = 0, broken = 0;
	uint16_t inflight = 0;

	vq_reset(vq);
	vcursor_get_u16(c, &vq->size);
	vcursor_get_u8(c, &ready);
	vcursor_get_u64(c, &vq->desc_addr);
	vcursor_get_u64(c, &vq->avail_addr);
	vcursor_get_u64(c, &vq->used_addr);
	vcursor_get_u16(c, &vq->last_avail_idx);
	vcursor_get_u16(c, &vq->used_idx);
	vcursor_get_u16(c, &vq->signalled_used);
	vcursor_get_u8(c, &sig_valid);
	vcursor_get_u16(c, &inflight);
	vcursor_get_u8(c, &event_idx);
	vcursor_get_u8(c, &indirect);
	vcursor_get_u8(c, &broken);
	if (vcursor_failed(c))
		return err_set(e, "virtqueue: truncated state");
	if (vq->size > vq->max_size || inflight > vq->size)
		return err_set(e, "virtqueue: bad state (size %u max %u inflight %u)",
			       vq->size, vq->max_size, inflight);
	vq->signalled_used_valid = sig_valid;
	/* Chains popped but not completed at save time are handed out again:
	 * our devices complete in pop order, so they are the last ones. */
	vq->last_avail_idx -= inflight;
	if (broken)
		vq_fail(vq, "virtqueue: was broken when saved");
	else if (ready && vq_enable(vq, event_idx, indirect) < 0)
		return err_set(e, "%s", vq->err.msg);
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return 0;
}
