/* virtio-blk against a temp file: read/write/flush/get-id, range checks,
 * read-only, dirty marks, save/load. Driven through struct virtio_dev
 * without a transport. */
#include "tests/unit/test_virtio_vq.h"

#include <fcntl.h>

#include "lib/vmstate.h"
#include "vmm/virtio/blk.h"

#define DISK_SECTORS 64

struct fix {
	struct fake_ram *fr;
	struct virtio_dev vd;
	char path[64];
	int fd;
	int irqs, cfg_irqs;
};

static void irq_q(void *t, uint16_t q) { (void)q; ((struct fix *)t)->irqs++; }
static void irq_c(void *t) { ((struct fix *)t)->cfg_irqs++; }

static void drv_up(struct fix *f)
{
	struct virtio_dev *vd = &f->vd;

	vd->irq_queue = irq_q;
	vd->irq_config = irq_c;
	vd->transport = f;
	virtio_dev_set_status(vd, VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER);
	virtio_dev_set_guest_features(vd, 0, (uint32_t)(vd->host_features & ~(1u << VIRTIO_BLK_F_RO)));
	virtio_dev_set_guest_features(vd, 1, 1);	/* VERSION_1 */
	virtio_dev_set_status(vd, vd->status | VIRTIO_STAT_FEATURES_OK);
	assert_true(vd->status & VIRTIO_STAT_FEATURES_OK);
	vd->vq[0].size = 16;
	vd->vq[0].desc_addr = DESC_GPA;
	vd->vq[0].avail_addr = AVAIL_GPA;
	vd->vq[0].used_addr = USED_GPA;
	virtio_dev_queue_enable(vd, 0);
	assert_true(vd->vq[0].ready);
	virtio_dev_set_status(vd, vd->status | VIRTIO_STAT_DRIVER_OK);
}

static struct fix *fix_new(bool ro)
{
	struct fix *f = calloc(1, sizeof(*f));
	uint8_t sec[512];
	struct err err;

	f->fr = fr_new();
	strcpy(f->path, "/tmp/test_virtio_blk.XXXXXX");
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	for (int i = 0; i < DISK_SECTORS; i++) {
		memset(sec, i, sizeof(sec));
		assert_int_equal(write(f->fd, sec, sizeof(sec)), sizeof(sec));
	}
	assert_int_equal(virtio_blk_init(&f->vd, &f->fr->gm, f->fd, ro, "serial-123", &err), 0);
	drv_up(f);
	return f;
}

static void fix_free(struct fix *f)
{
	virtio_dev_free(&f->vd);
	close(f->fd);
	unlink(f->path);
	fr_free(f->fr);
	free(f);
}

/* Queue a request at head 0: header in desc 0, data in desc 1 (len dlen,
 * writable if wdata), status in desc 2. Returns the status byte. */
static uint8_t req(struct fix *f, uint32_t type, uint64_t sector, uint64_t data_gpa,
		   uint32_t dlen, bool wdata, uint32_t *used_len)
{
	uint8_t hdr[16] = { 0 };
	uint16_t u = used_idx(f->fr);
	uint32_t id;

	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	drv_write(f->fr, 0x8000, hdr, 16);
	drv_write(f->fr, 0x8100, &(uint8_t){ 0xee }, 1);
	put_desc(f->fr, DESC_GPA, 0, 0x8000, 16, VIRTQ_DESC_F_NEXT, 1);
	if (dlen) {
		put_desc(f->fr, DESC_GPA, 1, data_gpa, dlen,
			 VIRTQ_DESC_F_NEXT | (wdata ? VIRTQ_DESC_F_WRITE : 0), 2);
	} else {
		put_desc(f->fr, DESC_GPA, 0, 0x8000, 16, VIRTQ_DESC_F_NEXT, 2);
	}
	put_desc(f->fr, DESC_GPA, 2, 0x8100, 1, VIRTQ_DESC_F_WRITE, 0);
	avail_add(f->fr, 16, 0);
	virtio_dev_notify(&f->vd, 0);
	assert_int_equal(used_idx(f->fr), (uint16_t)(u + 1));
	used_elem(f->fr, u % 16, &id, used_len);
	assert_int_equal(id, 0);
	return f->fr->ram[0x8100];
}

static void test_rw(void **state)
{
	struct fix *f = fix_new(false);
	uint8_t buf[1024];
	uint32_t ul;

	(void)state;
	fr_snapshot(f->fr);
	/* read sectors 3..4 */
	assert_int_equal(req(f, VIRTIO_BLK_T_IN, 3, DATA_GPA, 1024, true, &ul), VIRTIO_BLK_S_OK);
	assert_int_equal(ul, 1025);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(f->fr->ram[DATA_GPA + i], i < 512 ? 3 : 4);
	fr_check_dirty(f->fr);
	assert_true(f->irqs > 0);
	/* write sector 10 */
	memset(buf, 0xab, 512);
	drv_write(f->fr, DATA_GPA + 0x1000, buf, 512);
	assert_int_equal(req(f, VIRTIO_BLK_T_OUT, 10, DATA_GPA + 0x1000, 512, false, &ul),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(ul, 1);
	assert_int_equal(pread(f->fd, buf, 512, 10 * 512), 512);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], 0xab);
	assert_int_equal(pread(f->fd, buf, 1, 11 * 512), 1);
	assert_int_equal(buf[0], 11);
	/* flush */
	assert_int_equal(req(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &ul), VIRTIO_BLK_S_OK);
	/* get id */
	assert_int_equal(req(f, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA + 0x2000, 20, true, &ul),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(ul, 21);
	assert_string_equal((char *)f->fr->ram + DATA_GPA + 0x2000, "serial-123");
	/* unknown type */
	assert_int_equal(req(f, 77, 0, DATA_GPA, 512, true, &ul), VIRTIO_BLK_S_UNSUPP);
	/* beyond capacity, straddling the end, not whole sectors */
	assert_int_equal(req(f, VIRTIO_BLK_T_IN, DISK_SECTORS, DATA_GPA, 512, true, &ul),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(req(f, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, DATA_GPA, 1024, true, &ul),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(req(f, VIRTIO_BLK_T_OUT, UINT64_MAX, DATA_GPA, 512, false, &ul),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(req(f, VIRTIO_BLK_T_IN, 0, DATA_GPA, 100, true, &ul), VIRTIO_BLK_S_IOERR);
	fr_check_dirty(f->fr);
	assert_false(f->vd.status & VIRTIO_STAT_NEEDS_RESET);
	fix_free(f);
}

static void test_readonly(void **state)
{
	struct fix *f = fix_new(true);
	uint8_t b;
	uint32_t ul;

	(void)state;
	assert_true(f->vd.host_features & (1ULL << VIRTIO_BLK_F_RO));
	assert_int_equal(req(f, VIRTIO_BLK_T_OUT, 1, DATA_GPA, 512, false, &ul), VIRTIO_BLK_S_IOERR);
	assert_int_equal(pread(f->fd, &b, 1, 512), 1);
	assert_int_equal(b, 1);
	assert_int_equal(req(f, VIRTIO_BLK_T_IN, 1, DATA_GPA, 512, true, &ul), VIRTIO_BLK_S_OK);
	fix_free(f);
}

static void test_broken_ring(void **state)
{
	struct fix *f = fix_new(false);

	(void)state;
	put_desc(f->fr, DESC_GPA, 0, RAM_SIZE, 16, 0, 0);
	avail_add(f->fr, 16, 0);
	virtio_dev_notify(&f->vd, 0);
	assert_true(f->vd.status & VIRTIO_STAT_NEEDS_RESET);
	assert_int_equal(f->cfg_irqs, 1);
	assert_non_null(strstr(f->vd.err.msg, "outside guest RAM"));
	/* reset recovers */
	virtio_dev_set_status(&f->vd, 0);
	assert_int_equal(f->vd.status, 0);
	assert_false(f->vd.vq[0].broken);
	fix_free(f);
}

static void test_save_load(void **state)
{
	struct fix *f = fix_new(false), *g;
	struct vmstate_writer w;
	struct vmstate_reader r;
	struct vcursor c;
	struct err err;
	const void *p;
	size_t plen;
	uint32_t ul;

	(void)state;
	assert_int_equal(req(f, VIRTIO_BLK_T_IN, 3, DATA_GPA, 512, true, &ul), VIRTIO_BLK_S_OK);
	section_begin(&w, "blk", 1);
	assert_int_equal(virtio_dev_save(&f->vd, &w, &err), 0);
	section_parse(&w, &r, "blk", &p, &plen, NULL);

	/* a second device on the same RAM and disk takes over */
	g = calloc(1, sizeof(*g));
	g->fr = f->fr;
	assert_int_equal(virtio_blk_init(&g->vd, &f->fr->gm, f->fd, false, NULL, &err), 0);
	g->vd.irq_queue = irq_q;
	g->vd.transport = g;
	vcursor_init(&c, p, plen);
	assert_int_equal(virtio_dev_load(&g->vd, &c, &err), 0);
	assert_true(vcursor_at_end(&c));
	assert_int_equal(g->vd.status, f->vd.status);
	assert_int_equal(g->vd.guest_features, f->vd.guest_features);
	virtio_dev_free(&f->vd);
	f->vd = g->vd;	/* continue on the loaded device */
	assert_int_equal(req(f, VIRTIO_BLK_T_IN, 5, DATA_GPA, 512, true, &ul), VIRTIO_BLK_S_OK);
	assert_int_equal(f->fr->ram[DATA_GPA], 5);
	assert_int_equal(used_idx(f->fr), 2);
	free(g);
	/* a smaller disk refuses the state */
	{
		struct virtio_dev vd2;

		assert_int_equal(ftruncate(f->fd, 512 * 10), 0);
		assert_int_equal(virtio_blk_init(&vd2, &f->fr->gm, f->fd, false, NULL, &err), 0);
		vcursor_init(&c, p, plen);
		assert_int_equal(virtio_dev_load(&vd2, &c, &err), -1);
		assert_non_null(strstr(err.msg, "sectors"));
		virtio_dev_free(&vd2);
	}
	vmstate_reader_free(&r);
	vmstate_writer_free(&w);
	fix_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rw),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_broken_ring),
		cmocka_unit_test(test_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
