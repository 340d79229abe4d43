/* virtio-balloon free page reporting against a memfd-backed fake RAM:
 * reported ranges are punched (read as zeros, memfd holes, marked dirty),
 * hostile ranges (unaligned, readable, outside the memfd, outside RAM)
 * are skipped and counted or break the queue, never crash; inflate PFNs;
 * config (num_pages stays 0) and save/load. Driven through struct
 * virtio_dev without a transport. */
#include "tests/unit/test_virtio_vq.h"

#include <fcntl.h>

#include "lib/le.h"
#include "lib/vcursor.h"
#include "lib/vmstate.h"
#include "vmm/virtio/balloon.h"

#define QS	16
#define PG	4096
/* A second guest region that is not part of the memfd mapping. */
#define FOREIGN_GPA	0x100000
#define FOREIGN_SIZE	0x10000

struct fix {
	struct fake_ram *fr;
	int memfd;
	uint8_t *foreign;
	struct virtio_dev vd;
	int irqs, cfg_irqs;
};

static void irq_q(void *t, uint16_t q) { (void)q; ((struct fix *)t)->irqs++; }
static void irq_c(void *t) { ((struct fix *)t)->cfg_irqs++; }

/* Queue q's rings share DESC/AVAIL/USED_GPA: one queue in use per test. */
static void drv_up(struct fix *f, uint16_t q)
{
	struct virtio_dev *vd = &f->vd;

	vd->irq_queue = irq_q;
	vd->irq_config = irq_c;
	vd->transport = f;
	virtio_dev_set_status(vd, VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER);
	virtio_dev_set_guest_features(vd, 0, (uint32_t)vd->host_features);
	virtio_dev_set_guest_features(vd, 1, 1);	/* VERSION_1 */
	virtio_dev_set_status(vd, vd->status | VIRTIO_STAT_FEATURES_OK);
	assert_true(vd->status & VIRTIO_STAT_FEATURES_OK);
	vd->vq[q].size = QS;
	vd->vq[q].desc_addr = DESC_GPA;
	vd->vq[q].avail_addr = AVAIL_GPA;
	vd->vq[q].used_addr = USED_GPA;
	virtio_dev_queue_enable(vd, q);
	assert_true(vd->vq[q].ready);
	virtio_dev_set_status(vd, vd->status | VIRTIO_STAT_DRIVER_OK);
}

static struct fix *fix_new(uint16_t q)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct err err;

	f->fr = fr_new();
	/* RAM becomes a shared memfd mapping (guards stay around it). */
	f->memfd = memfd_create("test_balloon", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, RAM_SIZE), 0);
	assert_true(mmap(f->fr->ram, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 f->memfd, 0) == f->fr->ram);
	f->foreign = mmap(NULL, FOREIGN_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f->foreign != MAP_FAILED);
	assert_int_equal(gm_add_region(&f->fr->gm, FOREIGN_GPA, FOREIGN_SIZE, f->foreign), 0);
	assert_int_equal(virtio_balloon_init(&f->vd, &f->fr->gm, f->memfd, f->fr->ram, RAM_SIZE,
					     &err), 0);
	drv_up(f, q);
	return f;
}

static void fix_free(struct fix *f)
{
	virtio_dev_free(&f->vd);
	munmap(f->foreign, FOREIGN_SIZE);
	fr_free(f->fr);		/* unmaps the memfd mapping with the guards */
	close(f->memfd);
	free(f);
}

static void fill(struct fix *f, uint64_t gpa, uint64_t len, uint8_t v)
{
	uint8_t *buf = malloc(len);

	memset(buf, v, len);
	drv_write(f->fr, gpa, buf, len);
	free(buf);
}

static bool all(const uint8_t *p, uint64_t len, uint8_t v)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static bool is_hole(struct fix *f, uint64_t off, uint64_t len)
{
	off_t d = lseek(f->memfd, (off_t)off, SEEK_DATA);

	return d < 0 || (uint64_t)d >= off + len;
}

/* Post one chain (descs 0..n-1 from segs) on queue q and kick. */
struct seg { uint64_t gpa; uint32_t len; uint16_t flags; };

static void post(struct fix *f, uint16_t q, const struct seg *s, int n)
{
	uint16_t u = used_idx(f->fr);

	for (int i = 0; i < n; i++)
		put_desc(f->fr, DESC_GPA, (uint16_t)i, s[i].gpa, s[i].len,
			 (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			 (uint16_t)(i + 1));
	avail_add(f->fr, QS, 0);
	virtio_dev_notify(&f->vd, q);
	if (!(f->vd.status & VIRTIO_STAT_NEEDS_RESET)) {
		uint32_t id, len;

		assert_int_equal(used_idx(f->fr), (uint16_t)(u + 1));
		used_elem(f->fr, u % QS, &id, &len);
		assert_int_equal(id, 0);
		assert_int_equal(len, 0);
	}
}

static void test_layout(void **state)
{
	struct fix *f = fix_new(VIRTIO_BALLOON_Q_REPORTING);

	(void)state;
	/* only reporting offered: inflateq, deflateq, reporting_vq = 3 queues */
	assert_int_equal(f->vd.nqueues, 3);
	assert_int_equal(f->vd.host_features & 0xffffffffu & ~VIRTIO_TRANSPORT_FEATURES,
			 1u << VIRTIO_BALLOON_F_REPORTING_BIT);
	assert_int_equal(f->vd.ops->device_id, 5);
	assert_true(f->vd.vq[2].max_size >= 32);
	assert_int_equal(f->vd.config_len, 8);
	assert_int_equal(le_get32(f->vd.config), 0);
	fix_free(f);
}

static void test_report(void **state)
{
	struct fix *f = fix_new(VIRTIO_BALLOON_Q_REPORTING);
	struct virtio_balloon_stats st;
	const struct seg s[] = {
		{ 0x20000, 16 * PG, VIRTQ_DESC_F_WRITE },
		{ 0x34000, PG, VIRTQ_DESC_F_WRITE },
	};

	(void)state;
	fill(f, 0x20000, 0x20000, 0xab);
	fr_snapshot(f->fr);
	assert_false(is_hole(f, 0x20000, 0x20000));
	post(f, VIRTIO_BALLOON_Q_REPORTING, s, 2);
	/* holes first: reading a shmem hole through the mapping fills it */
	assert_true(is_hole(f, 0x20000, 16 * PG));
	assert_true(is_hole(f, 0x34000, PG));
	assert_false(is_hole(f, 0x30000, PG));
	assert_true(all(f->fr->ram + 0x20000, 16 * PG, 0));
	assert_true(all(f->fr->ram + 0x30000, 4 * PG, 0xab));
	assert_true(all(f->fr->ram + 0x34000, PG, 0));
	assert_true(all(f->fr->ram + 0x35000, 0xb000, 0xab));
	fr_check_dirty(f->fr);	/* punched bytes read as zeros: all marked */
	assert_true(f->fr->dirty[0x20000] && f->fr->dirty[0x2ffff] && f->fr->dirty[0x34fff]);
	virtio_balloon_get_stats(&f->vd, &st);
	assert_int_equal(st.reported_bytes, 17 * PG);
	assert_int_equal(st.ranges, 2);
	assert_int_equal(st.skipped, 0);
	assert_int_equal(f->irqs, 1);
	assert_false(f->vd.status & VIRTIO_STAT_NEEDS_RESET);
	fix_free(f);
}

static void test_hostile_ranges(void **state)
{
	struct fix *f = fix_new(VIRTIO_BALLOON_Q_REPORTING);
	struct virtio_balloon_stats st;
	const struct seg s[] = {
		{ 0x20000, PG, 0 },				/* readable */
		{ 0x21001, PG, VIRTQ_DESC_F_WRITE },		/* unaligned start */
		{ 0x22000, 100, VIRTQ_DESC_F_WRITE },		/* unaligned length */
		{ 0x23000, 0, VIRTQ_DESC_F_WRITE },		/* empty */
		{ FOREIGN_GPA, PG, VIRTQ_DESC_F_WRITE },	/* RAM, but not the memfd */
		{ 0x24000, PG, VIRTQ_DESC_F_WRITE },		/* the one good range */
	};
	const struct seg bad[] = {
		{ RAM_SIZE - PG, 2 * PG, VIRTQ_DESC_F_WRITE },	/* runs past RAM */
	};

	(void)state;
	fill(f, 0x20000, 0x10000, 0xcd);
	memset(f->foreign, 0xcd, FOREIGN_SIZE);
	fr_snapshot(f->fr);
	post(f, VIRTIO_BALLOON_Q_REPORTING, s, 6);
	assert_true(all(f->fr->ram + 0x20000, 4 * PG, 0xcd));	/* skipped ones untouched */
	assert_true(all(f->fr->ram + 0x24000, PG, 0));
	assert_true(all(f->foreign, FOREIGN_SIZE, 0xcd));
	fr_check_dirty(f->fr);
	virtio_balloon_get_stats(&f->vd, &st);
	assert_int_equal(st.reported_bytes, PG);
	assert_int_equal(st.ranges, 1);
	/* readable + start + length + foreign; the empty one is counted or
	 * dropped by the ring code, either way nothing is punched */
	assert_true(st.skipped >= 4 && st.skipped <= 5);
	/* a range outside guest RAM breaks the queue (ring rule), no crash */
	post(f, VIRTIO_BALLOON_Q_REPORTING, bad, 1);
	assert_true(f->vd.status & VIRTIO_STAT_NEEDS_RESET);
	assert_true(all(f->fr->ram + RAM_SIZE - PG, PG, 0));	/* fill never reached it */
	virtio_balloon_get_stats(&f->vd, &st);
	assert_int_equal(st.ranges, 1);
	fix_free(f);
}

static void test_inflate(void **state)
{
	struct fix *f = fix_new(VIRTIO_BALLOON_Q_INFLATE);
	struct virtio_balloon_stats st;
	uint8_t pfns[14];
	const struct seg s[] = { { 0x8000, sizeof(pfns), 0 } };

	(void)state;
	le_put32(pfns, 0x30);				/* gpa 0x30000: in RAM */
	le_put32(pfns + 4, 0xffffffffu);		/* far outside RAM */
	le_put32(pfns + 8, FOREIGN_GPA / PG);		/* not the memfd */
	pfns[12] = 0x31;				/* trailing half PFN: ignored */
	pfns[13] = 0;
	drv_write(f->fr, 0x8000, pfns, sizeof(pfns));
	fill(f, 0x30000, 2 * PG, 0xee);
	fr_snapshot(f->fr);
	post(f, VIRTIO_BALLOON_Q_INFLATE, s, 1);
	assert_true(all(f->fr->ram + 0x30000, PG, 0));
	assert_true(all(f->fr->ram + 0x31000, PG, 0xee));
	fr_check_dirty(f->fr);
	virtio_balloon_get_stats(&f->vd, &st);
	assert_int_equal(st.inflated_bytes, PG);
	assert_int_equal(st.reported_bytes, 0);
	assert_int_equal(st.skipped, 2);
	fix_free(f);
}

static void test_deflate(void **state)
{
	struct fix *f = fix_new(VIRTIO_BALLOON_Q_DEFLATE);
	uint8_t pfns[4];
	const struct seg s[] = { { 0x8000, 4, 0 } };

	(void)state;
	le_put32(pfns, 0x30);
	drv_write(f->fr, 0x8000, pfns, 4);
	fill(f, 0x30000, PG, 0xee);
	post(f, VIRTIO_BALLOON_Q_DEFLATE, s, 1);
	assert_true(all(f->fr->ram + 0x30000, PG, 0xee));	/* deflate touches nothing */
	fix_free(f);
}

static void test_config_save_load(void **state)
{
	struct fix *f = fix_new(VIRTIO_BALLOON_Q_REPORTING);
	struct virtio_dev vd2;
	struct vmstate_writer w;
	struct vmstate_reader r;
	struct vcursor c;
	struct err err;
	const void *p;
	size_t plen;

	(void)state;
	/* the transport stores the bytes, then calls config_write */
	le_put32(f->vd.config, 1000);
	le_put32(f->vd.config + 4, 77);
	f->vd.ops->config_write(&f->vd, 0, 8);
	assert_int_equal(le_get32(f->vd.config), 0);	/* num_pages is ours */
	assert_int_equal(le_get32(f->vd.config + 4), 77);

	section_begin(&w, "balloon", 1);
	assert_int_equal(virtio_dev_save(&f->vd, &w, &err), 0);
	section_parse(&w, &r, "balloon", &p, &plen, NULL);
	assert_int_equal(virtio_balloon_init(&vd2, &f->fr->gm, f->memfd, f->fr->ram, RAM_SIZE,
					     &err), 0);
	vcursor_init(&c, p, plen);
	assert_int_equal(virtio_dev_load(&vd2, &c, &err), 0);
	assert_true(vcursor_at_end(&c));
	assert_int_equal(le_get32(vd2.config + 4), 77);
	assert_int_equal(le_get32(vd2.config), 0);
	assert_true(vd2.vq[2].ready);
	/* truncated device payload is refused */
	vcursor_init(&c, p, plen - 1);
	assert_int_equal(virtio_dev_load(&vd2, &c, &err), -1);
	virtio_dev_free(&vd2);
	/* reset forgets 'actual' */
	virtio_dev_set_status(&f->vd, 0);
	assert_int_equal(le_get32(f->vd.config + 4), 0);
	vmstate_reader_free(&r);
	vmstate_writer_free(&w);
	fix_free(f);
}

static void test_no_memfd(void **state)
{
	struct fake_ram *fr = fr_new();
	struct virtio_dev vd;
	struct err err;

	(void)state;
	assert_int_equal(virtio_balloon_init(&vd, &fr->gm, -1, fr->ram, RAM_SIZE, &err), -1);
	assert_non_null(strstr(err.msg, "memfd"));
	fr_free(fr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_hostile_ranges),
		cmocka_unit_test(test_inflate),
		cmocka_unit_test(test_deflate),
		cmocka_unit_test(test_config_save_load),
		cmocka_unit_test(test_no_memfd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
