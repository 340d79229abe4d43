#include "vmm/virtio/balloon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/le.h"
#include "lib/vcursor.h"
#include "lib/vmstate.h"

/* struct virtio_balloon_config: le32 num_pages, le32 actual (the hint and
 * poison fields belong to features we do not offer). */
#define CFG_NUM_PAGES	0
#define CFG_ACTUAL	4
#define CFG_LEN		8

#define PFNS_PER_READ	256
/* A progress line on stderr once 1 MiB was reported (Linux reports 2 MiB
 * blocks), then every LOG_STEP bytes. */
#define LOG_FIRST	(1ULL << 20)
#define LOG_STEP	(64ULL << 20)

struct balloon {
	struct vq_elem elem;
	int memfd;
	uint8_t *ram;
	uint64_t ram_size;
	struct virtio_balloon_stats st;
	bool warned;		/* one message for the first failed punch */
	uint64_t next_log;	/* reported_bytes that prints the next progress line */
};

/* Give [gpa, gpa+len) (host pointer host, from vq_pop or gm_ptr, so inside
 * one RAM region) back to the host. Returns the bytes punched. */
static uint64_t punch(struct virtio_dev *vd, uint8_t *host, uint64_t gpa, uint64_t len)
{
	struct balloon *b = vd->priv;
	uintptr_t h = (uintptr_t)host, base = (uintptr_t)b->ram;
	uint64_t off = h - base;	/* meaningful only once h >= base */

	/* Inside the memfd mapping (overflow-safe: lengths, not ends). */
	if (!len || (h | gpa | len) & (VIRTIO_BALLOON_PAGE - 1) || h < base ||
	    off > b->ram_size || len > b->ram_size - off) {
		b->st.skipped++;
		return 0;
	}
	/* ORDER (migration/Remus/clone invariant): punch FIRST, mark dirty
	 * AFTER. The range now reads as zeros, a change KVM's dirty log never
	 * sees, so the VMM bitmap must carry it. A dirty sync that harvests
	 * between the two calls misses nothing: the mark lands in the next
	 * sync. Marking before the punch would let a sync harvest the mark and
	 * send the old bytes, then the punch would zero the page unseen and the
	 * destination would keep stale data. The final sync at switchover runs
	 * with every device lock held, so no punch is half done then. A failed
	 * or partial punch is marked too (over-marking is harmless). The
	 * sender sends memfd holes unread, as zero pages. */
	if (fallocate(b->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) < 0) {
		if (!b->warned)
			fprintf(stderr, "vmm: virtio-balloon: punching %llu bytes at memfd "
				"offset 0x%llx: %s (counted as skipped from now on)\n",
				(unsigned long long)len, (unsigned long long)off, strerror(errno));
		b->warned = true;
		b->st.skipped++;
		gm_mark_dirty(vd->gm, gpa, len);
		return 0;
	}
	gm_mark_dirty(vd->gm, gpa, len);
	b->st.ranges++;
	return len;
}

/* reporting_vq: each chain lists free ranges as device-writable segments
 * (the driver adds them with virtqueue_add_inbuf); readable ones are not
 * part of the protocol and are skipped. Nothing is written back. */
static void report(struct virtio_dev *vd, struct vq_elem *el)
{
	struct balloon *b = vd->priv;

	b->st.skipped += el->n_out;
	for (int i = el->n_out; i < el->n_out + el->n_in; i++)
		b->st.reported_bytes += punch(vd, el->iov[i].base, el->iov[i].gpa, el->iov[i].len);
	if (b->st.reported_bytes >= b->next_log) {
		fprintf(stderr, "vmm: virtio-balloon: guest reported %llu MiB free so far\n",
			(unsigned long long)(b->st.reported_bytes >> 20));
		b->next_log = (b->st.reported_bytes / LOG_STEP + 1) * LOG_STEP;
	}
}

/* inflateq: the readable bytes are le32 PFNs of 4 KiB pages the guest gave
 * up. A trailing partial PFN is ignored; each page must be in RAM. */
static void inflate(struct virtio_dev *vd, struct vq_elem *el)
{
	struct balloon *b = vd->priv;
	uint8_t buf[4 * PFNS_PER_READ];
	uint32_t off = 0, got;

	while ((got = vq_elem_read(el, off, buf, sizeof(buf))) >= 4) {
		for (uint32_t i = 0; i + 4 <= got; i += 4) {
			uint64_t gpa = (uint64_t)le_get32(buf + i) * VIRTIO_BALLOON_PAGE;
			uint8_t *host = gm_ptr(vd->gm, gpa, VIRTIO_BALLOON_PAGE);

			if (!host) {
				b->st.skipped++;
				continue;
			}
			b->st.inflated_bytes += punch(vd, host, gpa, VIRTIO_BALLOON_PAGE);
		}
		off += got & ~3u;
		if (got < sizeof(buf))
			break;
	}
}

static void balloon_notify(struct virtio_dev *vd, uint16_t q)
{
	struct balloon *b = vd->priv;
	struct virtq *vq = &vd->vq[q];
	bool pushed = false;

	while (vq_pop(vq, &b->elem) == 1) {
		if (q == VIRTIO_BALLOON_Q_REPORTING)
			report(vd, &b->elem);
		else if (q == VIRTIO_BALLOON_Q_INFLATE)
			inflate(vd, &b->elem);
		/* deflateq: nothing to do without MUST_TELL_HOST; the
		 * pages fault back in (zero-filled) when the guest uses them. */
		if (vq_push(vq, b->elem.head, 0) < 0)
			break;
		pushed = true;
	}
	virtio_dev_check_vq(vd, q);
	if (pushed)
		virtio_dev_used(vd, q);
}

/* Only 'actual' is the driver's; num_pages is ours and stays 0. */
static void balloon_config_write(struct virtio_dev *vd, uint32_t off, uint32_t len)
{
	(void)off;
	(void)len;
	le_put32(vd->config + CFG_NUM_PAGES, 0);
}

static void balloon_reset(struct virtio_dev *vd)
{
	memset(vd->config, 0, CFG_LEN);
}

/* Device payload: u32 actual (what the driver last said it gave up). */
static int balloon_save(struct virtio_dev *vd, struct vmstate_writer *w, struct err *e)
{
	return vmstate_put_u32(w, le_get32(vd->config + CFG_ACTUAL), e);
}

static int balloon_load(struct virtio_dev *vd, struct vcursor *c, struct err *e)
{
	uint32_t actual;

	if (vcursor_get_u32(c, &actual) < 0)
		return err_set(e, "truncated state");
	le_put32(vd->config + CFG_NUM_PAGES, 0);
	le_put32(vd->config + CFG_ACTUAL, actual);
	return 0;
}

static void balloon_free(struct virtio_dev *vd)
{
	free(vd->priv);
}

const struct virtio_dev_ops virtio_balloon_ops = {
	.name = "virtio-balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.pci_class = 0x050000,	/* memory controller, RAM */
	.config_write = balloon_config_write,
	.queue_notify = balloon_notify,
	.reset = balloon_reset,
	.save = balloon_save,
	.load = balloon_load,
	.free = balloon_free,
};

int virtio_balloon_init(struct virtio_dev *vd, const struct guest_mem *gm, int memfd,
			uint8_t *ram, uint64_t ram_size, struct err *e)
{
	struct balloon *b;

	if (memfd < 0 || !ram)
		return err_set(e, "virtio-balloon: guest RAM is not a memfd");
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, "virtio-balloon: out of memory");
	b->memfd = memfd;
	b->ram = ram;
	b->ram_size = ram_size;
	b->next_log = LOG_FIRST;
	virtio_dev_init(vd, &virtio_balloon_ops, b, gm, 1ULL << VIRTIO_BALLOON_F_REPORTING_BIT, 3,
			VIRTIO_BALLOON_QUEUE_SIZE);
	vd->config_len = CFG_LEN;	/* zeroed by virtio_dev_init: num_pages = 0 */
	return 0;
}

void virtio_balloon_get_stats(const struct virtio_dev *vd, struct virtio_balloon_stats *out)
{
	const struct balloon *b = vd->priv;

	if (b)
		*out = b->st;
	else
		memset(out, 0, sizeof(*out));
}
