/* virtio-pci transport + PCI bus, driven like a guest driver would: config
 * mechanism #1, BAR sizing, capability walk, feature negotiation, queue
 * setup through MMIO, MSI-X and INTx delivery, save/load, reset. Device:
 * virtio-rng. */
#include "tests/unit/test_virtio_vq.h"

#include "lib/le.h"
#include "lib/vmstate.h"
#include "vmm/virtio/pci.h"
#include "vmm/virtio/pci_bus.h"
#include "vmm/virtio/rng.h"

#define WIN 0xe0000000ULL

struct sys {
	struct fake_ram *fr;
	struct pci_bus bus;
	struct virtio_dev vd;
	struct virtio_pci vp;
	int msis, moved, intx;
	uint64_t msi_addr;
	uint32_t msi_data;
};

static void cb_msi(void *o, uint64_t a, uint32_t d)
{
	struct sys *s = o;

	s->msis++;
	s->msi_addr = a;
	s->msi_data = d;
}
static void cb_intx(void *o, int level) { ((struct sys *)o)->intx = level; }
static void cb_moved(void *o) { ((struct sys *)o)->moved++; }

static const struct virtio_pci_cb cbs = { cb_msi, cb_intx, cb_moved };

static struct sys *sys_new(struct fake_ram *fr)
{
	struct sys *s = calloc(1, sizeof(*s));
	struct err err;

	s->fr = fr ? fr : fr_new();
	pci_bus_init(&s->bus);
	assert_int_equal(virtio_rng_init(&s->vd, &s->fr->gm, &err), 0);
	assert_int_equal(virtio_pci_init(&s->vp, &s->vd, &cbs, s, &err), 0);
	assert_int_equal(pci_bus_add(&s->bus, &s->vp.pci, -1, &err), 0);
	assert_int_equal(s->vp.pci.slot, 1);
	return s;
}

static void sys_free(struct sys *s, bool ram)
{
	virtio_dev_free(&s->vd);
	if (ram)
		fr_free(s->fr);
	free(s);
}

static uint32_t cfg_rd(struct sys *s, int slot, uint32_t off, int size)
{
	uint32_t a = 0x80000000u | (uint32_t)slot << 11 | (off & 0xfc), v = 0;

	assert_true(pci_bus_pio(&s->bus, 0xcf8, true, &a, 4));
	assert_true(pci_bus_pio(&s->bus, 0xcfc + (off & 3), false, &v, size));
	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void cfg_wr(struct sys *s, int slot, uint32_t off, uint32_t v, int size)
{
	uint32_t a = 0x80000000u | (uint32_t)slot << 11 | (off & 0xfc);

	assert_true(pci_bus_pio(&s->bus, 0xcf8, true, &a, 4));
	assert_true(pci_bus_pio(&s->bus, 0xcfc + (off & 3), true, &v, size));
}

static uint64_t mrd(struct sys *s, uint64_t off, uint32_t len)
{
	uint8_t b[8] = { 0 };

	assert_true(pci_bus_mmio(&s->bus, WIN + off, false, b, len));
	return le_get64(b);
}

static void mwr(struct sys *s, uint64_t off, uint64_t v, uint32_t len)
{
	uint8_t b[8];

	le_put64(b, v);
	assert_true(pci_bus_mmio(&s->bus, WIN + off, true, b, len));
}

static void test_config_space(void **state)
{
	struct sys *s = sys_new(NULL);
	struct err err;
	int types = 0, msix = 0;

	(void)state;
	/* host bridge and device identity; empty slot reads all-ones */
	assert_int_equal(cfg_rd(s, 0, 0, 4), 0x12378086);
	assert_int_equal(cfg_rd(s, 1, 0, 2), 0x1af4);
	assert_int_equal(cfg_rd(s, 1, 2, 2), 0x1044);
	assert_int_equal(cfg_rd(s, 5, 0, 4), 0xffffffff);
	assert_int_equal(cfg_rd(s, 1, 0x08, 1), 1);	/* revision */
	/* BAR sizing: 64-bit memory BAR of 32 KiB */
	assert_int_equal(cfg_rd(s, 1, 0x10, 4), 0x4);
	cfg_wr(s, 1, 0x10, 0xffffffff, 4);
	cfg_wr(s, 1, 0x14, 0xffffffff, 4);
	assert_int_equal(cfg_rd(s, 1, 0x10, 4), 0xffff8004);
	assert_int_equal(cfg_rd(s, 1, 0x14, 4), 0xffffffff);
	assert_int_equal(cfg_rd(s, 1, 0x18, 4), 0);	/* no BAR2 */
	cfg_wr(s, 1, 0x10, 0, 4);
	cfg_wr(s, 1, 0x14, 0, 4);
	/* placement in the window, memory decode on */
	assert_int_equal(pci_bus_assign_bars(&s->bus, WIN, 0x100000, &err), 0);
	assert_int_equal(cfg_rd(s, 1, 0x10, 4), (uint32_t)WIN | 4);
	assert_int_equal(virtio_pci_bar_addr(&s->vp), WIN);
	assert_int_equal(virtio_pci_notify_addr(&s->vp, 0), WIN + 0x3000);
	assert_true(s->moved >= 1);
	assert_int_equal(pci_bus_assign_bars(&s->bus, WIN, 0x1000, &err), -1);
	/* memory decode off: BAR stops answering */
	cfg_wr(s, 1, 0x04, 0, 2);
	assert_false(pci_bus_mmio(&s->bus, WIN, false, &(uint32_t){ 0 }, 4));
	cfg_wr(s, 1, 0x04, 2, 2);
	/* capability walk */
	assert_true(cfg_rd(s, 1, 0x06, 2) & 0x10);
	for (uint32_t c = cfg_rd(s, 1, 0x34, 1), n = 0; c && n < 48; c = cfg_rd(s, 1, c + 1, 1), n++) {
		uint32_t id = cfg_rd(s, 1, c, 1);

		assert_true(c >= 0x40 && c % 4 == 0);
		if (id == PCI_CAP_ID_VNDR)
			types |= 1 << cfg_rd(s, 1, c + 3, 1);
		if (id == PCI_CAP_ID_MSIX) {
			msix = 1;
			assert_int_equal(cfg_rd(s, 1, c + 2, 2) & 0x7ff, 1);	/* 2 vectors */
			assert_int_equal(cfg_rd(s, 1, c + 4, 4), 0x4000);
		}
	}
	assert_int_equal(types, (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5));
	assert_true(msix);
	sys_free(s, true);
}

/* Up to DRIVER_OK with queue 0 of size 16 at the fixture's ring addresses. */
static void driver_init(struct sys *s, bool use_msix)
{
	struct err err;
	uint64_t f;

	assert_int_equal(pci_bus_assign_bars(&s->bus, WIN, 0x100000, &err), 0);
	mwr(s, 0x14, VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER, 1);
	mwr(s, 0x00, 0, 4);
	f = mrd(s, 0x04, 4);
	mwr(s, 0x00, 1, 4);
	f |= mrd(s, 0x04, 4) << 32;
	assert_true(f & (1ULL << 32));
	assert_true(f & (1ULL << 29));
	assert_true(f & (1ULL << 28));
	/* without VERSION_1 FEATURES_OK doesn't stick */
	mwr(s, 0x08, 0, 4);
	mwr(s, 0x0c, 1u << 29, 4);
	mwr(s, 0x14, VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER | VIRTIO_STAT_FEATURES_OK, 1);
	assert_false(mrd(s, 0x14, 1) & VIRTIO_STAT_FEATURES_OK);
	/* an unoffered bit doesn't either */
	mwr(s, 0x08, 1, 4);
	mwr(s, 0x0c, 1 | 2, 4);
	mwr(s, 0x14, VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER | VIRTIO_STAT_FEATURES_OK, 1);
	assert_false(mrd(s, 0x14, 1) & VIRTIO_STAT_FEATURES_OK);
	mwr(s, 0x0c, 1, 4);
	mwr(s, 0x14, VIRTIO_STAT_ACKNOWLEDGE | VIRTIO_STAT_DRIVER | VIRTIO_STAT_FEATURES_OK, 1);
	assert_true(mrd(s, 0x14, 1) & VIRTIO_STAT_FEATURES_OK);
	assert_int_equal(s->vd.guest_features, (1ULL << 32) | (1ULL << 29));
	/* feature writes after FEATURES_OK are ignored */
	mwr(s, 0x0c, 0, 4);
	assert_int_equal(s->vd.guest_features, (1ULL << 32) | (1ULL << 29));

	if (use_msix) {
		uint8_t c = s->vp.msix_cap;

		cfg_wr(s, 1, c + 2, 0x8000 | cfg_rd(s, 1, c + 2, 2), 2);
		mwr(s, 0x4000 + 16, 0xfee00000, 4);	/* vector 1 */
		mwr(s, 0x4000 + 20, 0, 4);
		mwr(s, 0x4000 + 24, 0x4041, 4);
		mwr(s, 0x4000 + 28, 0, 4);		/* unmask */
		mwr(s, 0x10, 0, 2);			/* config -> vector 0 */
		assert_int_equal(mrd(s, 0x10, 2), 0);
	}
	mwr(s, 0x16, 0, 2);
	assert_int_equal(mrd(s, 0x18, 2), VIRTIO_RNG_QUEUE_SIZE);
	mwr(s, 0x18, 16, 2);
	mwr(s, 0x1a, 7, 2);			/* no such vector */
	assert_int_equal(mrd(s, 0x1a, 2), VIRTIO_PCI_NO_VECTOR);
	mwr(s, 0x1a, use_msix ? 1 : VIRTIO_PCI_NO_VECTOR, 2);
	mwr(s, 0x20, DESC_GPA, 4);			/* 64-bit fields as two dwords */
	mwr(s, 0x24, 0, 4);
	mwr(s, 0x28, AVAIL_GPA, 8);
	mwr(s, 0x30, USED_GPA, 4);
	mwr(s, 0x34, 0, 4);
	mwr(s, 0x1c, 1, 2);
	assert_int_equal(mrd(s, 0x1c, 2), 1);
	mwr(s, 0x28, 0x9999, 8);		/* frozen once enabled */
	assert_int_equal(mrd(s, 0x28, 8), AVAIL_GPA);
	assert_int_equal(mrd(s, 0x1e, 2), 0);	/* notify off */
	mwr(s, 0x14, 0x0f, 1);
	assert_int_equal(mrd(s, 0x14, 1), 0x0f);
}

/* One 64-byte entropy request at head 0; kick through the BAR. */
static void rng_req(struct sys *s, uint16_t i)
{
	uint16_t ue = used_idx(s->fr);

	/* EVENT_IDX: used_event = current used idx asks for the next interrupt */
	drv_write(s->fr, AVAIL_GPA + 4 + 2 * 16, &ue, 2);
	put_desc(s->fr, DESC_GPA, 0, DATA_GPA + 64 * i, 64, VIRTQ_DESC_F_WRITE, 0);
	avail_add(s->fr, 16, 0);
	mwr(s, 0x3000, 0, 2);
}

static void test_msix_and_save_load(void **state)
{
	struct sys *s = sys_new(NULL), *t;
	struct vmstate_writer w;
	struct vmstate_reader r;
	struct err err;
	const void *p;
	size_t plen;
	uint16_t ver;
	uint32_t id, ul;
	static const uint8_t zero[64];

	(void)state;
	driver_init(s, true);
	fr_snapshot(s->fr);
	rng_req(s, 0);
	assert_int_equal(used_idx(s->fr), 1);
	used_elem(s->fr, 0, &id, &ul);
	assert_int_equal(ul, 64);
	assert_memory_not_equal(s->fr->ram + DATA_GPA, zero, 64);
	fr_check_dirty(s->fr);
	assert_int_equal(s->msis, 1);
	assert_int_equal(s->msi_addr, 0xfee00000);
	assert_int_equal(s->msi_data, 0x4041);
	assert_int_equal(s->intx, 0);
	/* masked entry: pending bit, delivered on unmask */
	mwr(s, 0x4000 + 28, 1, 4);
	rng_req(s, 1);
	assert_int_equal(s->msis, 1);
	assert_int_equal(mrd(s, 0x5000, 8), 2);
	mwr(s, 0x4000 + 28, 0, 4);
	assert_int_equal(s->msis, 2);
	assert_int_equal(mrd(s, 0x5000, 8), 0);

	/* save -> load into a fresh system on the same RAM */
	section_begin(&w, "virtio.rng", VIRTIO_PCI_STATE_VERSION);
	assert_int_equal(virtio_pci_save(&s->vp, &w, &err), 0);
	section_parse(&w, &r, "virtio.rng", &p, &plen, &ver);
	t = sys_new(s->fr);
	assert_int_equal(virtio_pci_load(&t->vp, p, plen, ver, &err), 0);
	assert_int_equal(virtio_pci_bar_addr(&t->vp), WIN);
	assert_true(t->moved >= 1);
	assert_int_equal(t->vd.status, 0x0f);
	assert_int_equal(mrd(t, 0x1a, 2), 1);
	rng_req(t, 2);
	assert_int_equal(used_idx(s->fr), 3);
	assert_int_equal(t->msis, 1);
	assert_int_equal(t->msi_data, 0x4041);
	/* a truncated or wrong-version state is refused */
	assert_int_equal(virtio_pci_load(&t->vp, p, plen - 3, ver, &err), -1);
	assert_int_equal(virtio_pci_load(&t->vp, p, plen, ver + 1, &err), -1);

	/* reset through the status register */
	mwr(t, 0x14, 0, 1);
	assert_int_equal(mrd(t, 0x14, 1), 0);
	assert_int_equal(mrd(t, 0x1c, 2), 0);
	assert_int_equal(mrd(t, 0x1a, 2), VIRTIO_PCI_NO_VECTOR);
	assert_int_equal(mrd(t, 0x10, 2), VIRTIO_PCI_NO_VECTOR);
	rng_req(t, 3);				/* ignored: not live */
	assert_int_equal(used_idx(s->fr), 3);
	vmstate_reader_free(&r);
	vmstate_writer_free(&w);
	sys_free(t, false);
	sys_free(s, true);
}

static void test_intx_and_broken(void **state)
{
	struct sys *s = sys_new(NULL);

	(void)state;
	driver_init(s, false);
	rng_req(s, 0);
	assert_int_equal(s->intx, 1);
	assert_int_equal(mrd(s, 0x1000, 1), 1);	/* queue bit; read clears */
	assert_int_equal(s->intx, 0);
	assert_int_equal(mrd(s, 0x1000, 1), 0);
	/* a hostile descriptor: NEEDS_RESET + config interrupt */
	put_desc(s->fr, DESC_GPA, 0, RAM_SIZE - 4, 64, VIRTQ_DESC_F_WRITE, 0);
	avail_add(s->fr, 16, 0);
	mwr(s, 0x3000, 0, 2);
	assert_true(mrd(s, 0x14, 1) & VIRTIO_STAT_NEEDS_RESET);
	assert_int_equal(s->intx, 1);
	assert_int_equal(mrd(s, 0x1000, 1), 2);	/* config bit */
	/* the driver's status writes can't clear NEEDS_RESET; reset can */
	mwr(s, 0x14, 0x0f, 1);
	assert_true(mrd(s, 0x14, 1) & VIRTIO_STAT_NEEDS_RESET);
	mwr(s, 0x14, 0, 1);
	assert_int_equal(mrd(s, 0x14, 1), 0);
	/* out-of-range BAR and config accesses are harmless */
	virtio_pci_bar_write(&s->vp, VIRTIO_PCI_BAR_SIZE - 2, &(uint64_t){ 0 }, 8);
	virtio_pci_cfg_write(&s->vp, 254, &(uint32_t){ 0 }, 4);
	sys_free(s, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_space),
		cmocka_unit_test(test_msix_and_save_load),
		cmocka_unit_test(test_intx_and_broken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
