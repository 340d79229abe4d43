#include "vmm/virtio/pci.h"

#include <string.h>

#include "lib/le.h"
#include "lib/vcursor.h"
#include "lib/vmstate.h"

/* virtio_pci_cap cfg_type values (virtio 1.x 4.1.4). */
#define CAP_COMMON	1
#define CAP_NOTIFY	2
#define CAP_ISR		3
#define CAP_DEVICE	4
#define CAP_PCI_CFG	5

#define MSIX_CTRL_ENABLE	0x8000
#define MSIX_CTRL_FMASK		0x4000

static uint16_t msix_ctrl(const struct virtio_pci *p)
{
	return le_get16(p->pci.cfg + p->msix_cap + 2);
}

static bool msix_enabled(const struct virtio_pci *p)
{
	return msix_ctrl(p) & MSIX_CTRL_ENABLE;
}

static void set_intx(struct virtio_pci *p, bool level)
{
	/* Disabled by the command register = the line stays low. */
	if (le_get16(p->pci.cfg + 4) & PCI_CMD_INTX_DISABLE)
		level = false;
	if (level != p->intx_level) {
		p->intx_level = level;
		p->cb.intx(p->opaque, level);
	}
}

static void msix_fire(struct virtio_pci *p, uint16_t v)
{
	const uint8_t *ent = p->msix_table + 16 * v;

	/* Function mask or entry mask: remember it in the PBA instead. */
	if ((msix_ctrl(p) & MSIX_CTRL_FMASK) || (le_get32(ent + 12) & 1)) {
		p->msix_pba |= 1ULL << v;
		return;
	}
	p->msix_pba &= ~(1ULL << v);
	p->cb.msi(p->opaque, le_get64(ent), le_get32(ent + 8));
}

/* Deliver pending vectors that are no longer masked. */
static void msix_flush(struct virtio_pci *p)
{
	if (!msix_enabled(p))
		return;
	for (uint16_t v = 0; v < p->msix_nvec; v++)
		if (p->msix_pba & (1ULL << v))
			msix_fire(p, v);
}

static void raise_irq(struct virtio_pci *p, uint16_t vector, uint8_t isr_bit)
{
	if (msix_enabled(p)) {
		if (vector < p->msix_nvec)	/* NO_VECTOR: the driver wants none */
			msix_fire(p, vector);
		return;
	}
	p->isr |= isr_bit;
	set_intx(p, true);
}

static void irq_queue(void *t, uint16_t q)
{
	struct virtio_pci *p = t;

	raise_irq(p, q < VIRTIO_MAX_QUEUES ? p->queue_vector[q] : VIRTIO_PCI_NO_VECTOR, 1);
}

static void irq_config(void *t)
{
	struct virtio_pci *p = t;

	raise_irq(p, p->config_vector, 2);
}

static void transport_reset(struct virtio_pci *p)
{
	p->dfselect = p->gfselect = 0;
	p->queue_select = 0;
	p->config_vector = VIRTIO_PCI_NO_VECTOR;
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		p->queue_vector[i] = VIRTIO_PCI_NO_VECTOR;
	p->isr = 0;
	set_intx(p, false);
}

void virtio_pci_reset(struct virtio_pci *p)
{
	virtio_dev_reset(p->vd);
	transport_reset(p);
	memset(p->msix_table, 0, sizeof(p->msix_table));
	for (int v = 0; v < p->msix_nvec; v++)
		p->msix_table[16 * v + 12] = 1;		/* entries start masked */
	p->msix_pba = 0;
	/* PCI reset: command, BARs, MSI-X control and the rest go back too. */
	for (int i = 0; i < PCI_CFG_SIZE; i++)
		if (i != 0x3c)		/* the interrupt line is firmware's */
			p->pci.cfg[i] &= (uint8_t)~p->pci.wmask[i];
	p->pci.cfg[0x10] |= PCI_BAR_MEM64;
	for (int i = 0; i < PCI_NUM_BARS; i++)
		if (p->pci.bar_mapped[i]) {
			p->pci.bar_mapped[i] = 0;
			if (p->cb.bar_moved)
				p->cb.bar_moved(p->opaque);
		}
}

/* ---- common configuration ---- */

/* The registers as the driver sees them, composed into a byte image. */
static void common_image(struct virtio_pci *p, uint8_t *img)
{
	struct virtio_dev *vd = p->vd;
	uint16_t q = p->queue_select;

	memset(img, 0, VIRTIO_PCI_COMMON_LEN);
	le_put32(img + 0x00, p->dfselect);
	le_put32(img + 0x04, p->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * p->dfselect)) : 0);
	le_put32(img + 0x08, p->gfselect);
	le_put32(img + 0x0c, p->gfselect < 2 ? (uint32_t)(vd->guest_features >> (32 * p->gfselect)) : 0);
	le_put16(img + 0x10, p->config_vector);
	le_put16(img + 0x12, vd->nqueues);
	img[0x14] = vd->status;
	img[0x15] = vd->config_generation;
	le_put16(img + 0x16, q);
	if (q < vd->nqueues) {	/* queue_size reads 0 for a missing queue */
		const struct virtq *vq = &vd->vq[q];

		le_put16(img + 0x18, vq->size);
		le_put16(img + 0x1a, p->queue_vector[q]);
		le_put16(img + 0x1c, vq->ready);
		le_put16(img + 0x1e, q);	/* queue_notify_off */
		le_put64(img + 0x20, vq->desc_addr);
		le_put64(img + 0x28, vq->avail_addr);
		le_put64(img + 0x30, vq->used_addr);
	}
}

static uint16_t valid_vector(const struct virtio_pci *p, uint16_t v)
{
	/* Reading back NO_VECTOR tells the driver the vector was refused. */
	return v < p->msix_nvec ? v : VIRTIO_PCI_NO_VECTOR;
}

/* Field table: offset, size. Writes apply to every field they overlap, in
 * offset order, with the field's value taken from the updated image, so
 * any access width (including 64-bit fields as two dwords) works. */
static const uint8_t common_fields[][2] = {
	{ 0x00, 4 }, { 0x04, 4 }, { 0x08, 4 }, { 0x0c, 4 }, { 0x10, 2 }, { 0x12, 2 },
	{ 0x14, 1 }, { 0x15, 1 }, { 0x16, 2 }, { 0x18, 2 }, { 0x1a, 2 }, { 0x1c, 2 },
	{ 0x1e, 2 }, { 0x20, 8 }, { 0x28, 8 }, { 0x30, 8 },
};

static void common_write_field(struct virtio_pci *p, uint32_t off, const uint8_t *img)
{
	struct virtio_dev *vd = p->vd;
	uint16_t q = p->queue_select;
	struct virtq *vq = q < vd->nqueues ? &vd->vq[q] : NULL;
	/* Queue registers are frozen once the queue is enabled. */
	bool qw = vq && !vq->ready;

	switch (off) {
	case 0x00: p->dfselect = le_get32(img); break;
	case 0x08: p->gfselect = le_get32(img + 8); break;
	case 0x0c: virtio_dev_set_guest_features(vd, p->gfselect, le_get32(img + 0x0c)); break;
	case 0x10: p->config_vector = valid_vector(p, le_get16(img + 0x10)); break;
	case 0x14:
		virtio_dev_set_status(vd, img[0x14]);
		if (img[0x14] == 0)
			transport_reset(p);
		break;
	case 0x16: p->queue_select = le_get16(img + 0x16); break;
	case 0x18: if (qw) vq->size = le_get16(img + 0x18); break;
	case 0x1a: if (vq) p->queue_vector[q] = valid_vector(p, le_get16(img + 0x1a)); break;
	case 0x1c:
		if (vq && le_get16(img + 0x1c) == 1)
			virtio_dev_queue_enable(vd, q);
		break;
	case 0x20: if (qw) vq->desc_addr = le_get64(img + 0x20); break;
	case 0x28: if (qw) vq->avail_addr = le_get64(img + 0x28); break;
	case 0x30: if (qw) vq->used_addr = le_get64(img + 0x30); break;
	default: break;	/* read-only */
	}
}

static void common_write(struct virtio_pci *p, uint32_t off, const void *data, uint32_t len)
{
	uint8_t img[VIRTIO_PCI_COMMON_LEN];

	common_image(p, img);
	memcpy(img + off, data, len);
	for (size_t i = 0; i < sizeof(common_fields) / sizeof(common_fields[0]); i++) {
		uint32_t fo = common_fields[i][0], fl = common_fields[i][1];

		if (off < fo + fl && fo < off + len)
			common_write_field(p, fo, img);
	}
}

/* ---- BAR ---- */

void virtio_pci_bar_read(struct virtio_pci *p, uint64_t off, void *data, uint32_t len)
{
	struct virtio_dev *vd = p->vd;
	uint8_t img[VIRTIO_PCI_COMMON_LEN];

	memset(data, 0, len);
	if (len > 8 || off >= VIRTIO_PCI_BAR_SIZE || len > VIRTIO_PCI_BAR_SIZE - off)
		return;
	if (off + len <= VIRTIO_PCI_COMMON_LEN) {
		common_image(p, img);
		memcpy(data, img + off, len);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		/* Read-to-clear; deasserts INTx. */
		*(uint8_t *)data = p->isr;
		p->isr = 0;
		set_intx(p, false);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;

		if (o < vd->config_len && len <= vd->config_len - o)
			memcpy(data, vd->config + o, len);
	} else if (off >= VIRTIO_PCI_MSIX_OFF && off - VIRTIO_PCI_MSIX_OFF < 16u * p->msix_nvec &&
		   len <= 16u * p->msix_nvec - (off - VIRTIO_PCI_MSIX_OFF)) {
		memcpy(data, p->msix_table + (off - VIRTIO_PCI_MSIX_OFF), len);
	} else if (off >= VIRTIO_PCI_PBA_OFF && off + len <= VIRTIO_PCI_PBA_OFF + 8) {
		uint8_t b[8];

		le_put64(b, p->msix_pba);
		memcpy(data, b + (off - VIRTIO_PCI_PBA_OFF), len);
	}
}

void virtio_pci_bar_write(struct virtio_pci *p, uint64_t off, const void *data, uint32_t len)
{
	struct virtio_dev *vd = p->vd;

	if (len > 8 || off >= VIRTIO_PCI_BAR_SIZE || len > VIRTIO_PCI_BAR_SIZE - off)
		return;
	if (off + len <= VIRTIO_PCI_COMMON_LEN) {
		common_write(p, (uint32_t)off, data, len);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		uint64_t o = off - VIRTIO_PCI_DEVICE_OFF;

		if (vd->ops->config_write && o < vd->config_len && len <= vd->config_len - o) {
			memcpy(vd->config + o, data, len);
			vd->ops->config_write(vd, (uint32_t)o, len);
		}
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF && off < VIRTIO_PCI_MSIX_OFF) {
		/* The address names the queue; the value is ignored. */
		uint64_t q = (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;

		if (q < vd->nqueues)
			virtio_pci_queue_notify(p, (uint16_t)q);
	} else if (off >= VIRTIO_PCI_MSIX_OFF && off - VIRTIO_PCI_MSIX_OFF < 16u * p->msix_nvec &&
		   len <= 16u * p->msix_nvec - (off - VIRTIO_PCI_MSIX_OFF)) {
		memcpy(p->msix_table + (off - VIRTIO_PCI_MSIX_OFF), data, len);
		msix_flush(p);	/* an entry may have been unmasked */
	}
}

uint64_t virtio_pci_bar_addr(const struct virtio_pci *p)
{
	return p->pci.bar_mapped[0];
}

uint64_t virtio_pci_notify_addr(const struct virtio_pci *p, uint16_t q)
{
	uint64_t a = p->pci.bar_mapped[0];

	return a ? a + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT : 0;
}

void virtio_pci_queue_notify(struct virtio_pci *p, uint16_t q)
{
	virtio_dev_notify(p->vd, q);
}

/* ---- config space ---- */

static void pci_bar_rw(void *opaque, int bar, uint64_t off, bool write, void *data, uint32_t len)
{
	if (bar != 0)
		return;
	if (write)
		virtio_pci_bar_write(opaque, off, data, len);
	else
		virtio_pci_bar_read(opaque, off, data, len);
}

static void pci_bar_moved(void *opaque, int bar)
{
	struct virtio_pci *p = opaque;

	if (bar == 0 && p->cb.bar_moved)
		p->cb.bar_moved(p->opaque);
}

/* VIRTIO_PCI_CAP_PCI_CFG: a window into the BARs through config space.
 * cap+4 bar, cap+8 offset, cap+12 length, cap+16 data. */
static bool pcicfg_window(struct virtio_pci *p, uint32_t off, uint32_t len, uint32_t *boff,
			  uint32_t *blen)
{
	uint8_t c = p->pcicfg_cap;

	if (!c || off + len <= c + 16u || off >= c + 20u)
		return false;
	*boff = le_get32(p->pci.cfg + c + 8);
	*blen = le_get32(p->pci.cfg + c + 12);
	return p->pci.cfg[c + 4] == 0 && (*blen == 1 || *blen == 2 || *blen == 4);
}

static void pci_pre_read(void *opaque, uint32_t off, uint32_t len)
{
	struct virtio_pci *p = opaque;
	uint32_t boff, blen;

	if (pcicfg_window(p, off, len, &boff, &blen))
		virtio_pci_bar_read(p, boff, p->pci.cfg + p->pcicfg_cap + 16, blen);
}

static void pci_written(void *opaque, uint32_t off, uint32_t len)
{
	struct virtio_pci *p = opaque;
	uint32_t boff, blen;

	if (pcicfg_window(p, off, len, &boff, &blen))
		virtio_pci_bar_write(p, boff, p->pci.cfg + p->pcicfg_cap + 16, blen);
	if (off <= p->msix_cap + 3u && off + len > p->msix_cap + 2u)
		msix_flush(p);	/* enabled or function-unmasked */
	if (off <= 5 && off + len > 4)
		set_intx(p, p->isr && !msix_enabled(p));	/* INTx disable toggled */
}

void virtio_pci_cfg_read(struct virtio_pci *p, uint32_t offset, void *data, uint32_t len)
{
	pci_cfg_read(&p->pci, offset, data, len);
}

void virtio_pci_cfg_write(struct virtio_pci *p, uint32_t offset, const void *data, uint32_t len)
{
	pci_cfg_write(&p->pci, offset, data, len);
}

static uint8_t add_vcap(struct pci_func *f, uint8_t type, uint8_t len, uint32_t off,
			uint32_t blen)
{
	uint8_t c = pci_func_add_cap(f, PCI_CAP_ID_VNDR, len);

	f->cfg[c + 2] = len;
	f->cfg[c + 3] = type;
	f->cfg[c + 4] = 0;	/* BAR0 */
	le_put32(f->cfg + c + 8, off);
	le_put32(f->cfg + c + 12, blen);
	return c;
}

int virtio_pci_init(struct virtio_pci *p, struct virtio_dev *vd, const struct virtio_pci_cb *cb,
		    void *opaque, struct err *e)
{
	struct pci_func *f = &p->pci;
	uint8_t c;

	if (!cb || !cb->msi || !cb->intx)
		return err_set(e, "virtio-pci: msi and intx callbacks are required");
	memset(p, 0, sizeof(*p));
	p->vd = vd;
	p->cb = *cb;
	p->opaque = opaque;
	vd->irq_queue = irq_queue;
	vd->irq_config = irq_config;
	vd->transport = p;
	p->msix_nvec = vd->nqueues + 1;

	/* Subsystem id >= 0x40 marks a modern-only device. */
	pci_func_init(f, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + vd->ops->device_id,
		      vd->ops->pci_class, VIRTIO_PCI_VENDOR, 0x40);
	f->opaque = p;
	f->bar_rw = pci_bar_rw;
	f->bar_moved = pci_bar_moved;
	f->cfg_pre_read = pci_pre_read;
	f->cfg_written = pci_written;
	pci_func_add_bar(f, 0, VIRTIO_PCI_BAR_SIZE, PCI_BAR_MEM64);
	f->cfg[0x3d] = 1;	/* INTA# */

	add_vcap(f, CAP_COMMON, 16, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN);
	c = add_vcap(f, CAP_NOTIFY, 20, VIRTIO_PCI_NOTIFY_OFF,
		     VIRTIO_PCI_NOTIFY_MULT * (uint32_t)vd->nqueues);
	le_put32(f->cfg + c + 16, VIRTIO_PCI_NOTIFY_MULT);
	add_vcap(f, CAP_ISR, 16, VIRTIO_PCI_ISR_OFF, 1);
	if (vd->config_len)
		add_vcap(f, CAP_DEVICE, 16, VIRTIO_PCI_DEVICE_OFF, vd->config_len);
	c = add_vcap(f, CAP_PCI_CFG, 20, 0, 0);
	p->pcicfg_cap = c;
	/* bar, offset, length, data are the driver's to write */
	f->wmask[c + 4] = 0xff;
	memset(f->wmask + c + 8, 0xff, 12);

	c = pci_func_add_cap(f, PCI_CAP_ID_MSIX, 12);
	if (!c)
		return err_set(e, "virtio-pci: config space full");
	p->msix_cap = c;
	le_put16(f->cfg + c + 2, (uint16_t)(p->msix_nvec - 1));
	f->wmask[c + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
	le_put32(f->cfg + c + 4, VIRTIO_PCI_MSIX_OFF);	/* BIR 0 */
	le_put32(f->cfg + c + 8, VIRTIO_PCI_PBA_OFF);
	virtio_pci_reset(p);
	return 0;
}

/* ---- save/load ---- */

/* Payload: pci config (256) | u32 dfselect | u32 gfselect | u16 queue_select
 * | u16 config_vector | u16 nqueues | nqueues x u16 queue_vector | u8 isr
 * | u16 msix_nvec | 16*nvec table | u64 pba | virtio_dev_save(...). */
int virtio_pci_save(struct virtio_pci *p, struct vmstate_writer *w, struct err *e)
{
	struct virtio_dev *vd = p->vd;

	if (pci_func_save(&p->pci, w, e) < 0 || vmstate_put_u32(w, p->dfselect, e) < 0 ||
	    vmstate_put_u32(w, p->gfselect, e) < 0 || vmstate_put_u16(w, p->queue_select, e) < 0 ||
	    vmstate_put_u16(w, p->config_vector, e) < 0 || vmstate_put_u16(w, vd->nqueues, e) < 0)
		goto fail;
	for (int i = 0; i < vd->nqueues; i++)
		if (vmstate_put_u16(w, p->queue_vector[i], e) < 0)
			goto fail;
	if (vmstate_put_u8(w, p->isr, e) < 0 || vmstate_put_u16(w, p->msix_nvec, e) < 0 ||
	    vmstate_put(w, p->msix_table, 16u * p->msix_nvec, e) < 0 ||
	    vmstate_put_u64(w, p->msix_pba, e) < 0)
		goto fail;
	if (virtio_dev_save(vd, w, e) < 0)
		return -1;
	return 0;
fail:
	return err_prefix(e, "virtio-pci %s", vd->ops->name);
}

int virtio_pci_load(struct virtio_pci *p, const void *payload, size_t len, uint16_t version,
		    struct err *e)
{
	struct virtio_dev *vd = p->vd;
	struct vcursor c;
	uint16_t nq = 0, nvec = 0;

	if (version != VIRTIO_PCI_STATE_VERSION)
		return err_set(e, "virtio-pci %s: unknown state version %u", vd->ops->name, version);
	vcursor_init(&c, payload, len);
	if (pci_func_load(&p->pci, &c, e) < 0)
		return err_prefix(e, "virtio-pci %s", vd->ops->name);
	vcursor_get_u32(&c, &p->dfselect);
	vcursor_get_u32(&c, &p->gfselect);
	vcursor_get_u16(&c, &p->queue_select);
	vcursor_get_u16(&c, &p->config_vector);
	vcursor_get_u16(&c, &nq);
	if (nq != vd->nqueues)
		return err_set(e, "virtio-pci %s: %u queues in state, %u here", vd->ops->name, nq,
			       vd->nqueues);
	for (int i = 0; i < nq; i++)
		vcursor_get_u16(&c, &p->queue_vector[i]);
	vcursor_get_u8(&c, &p->isr);
	vcursor_get_u16(&c, &nvec);
	if (nvec != p->msix_nvec)
		return err_set(e, "virtio-pci %s: %u MSI-X vectors in state, %u here",
			       vd->ops->name, nvec, p->msix_nvec);
	vcursor_get_bytes(&c, p->msix_table, 16u * nvec);
	vcursor_get_u64(&c, &p->msix_pba);
	if (vcursor_failed(&c))
		return err_set(e, "virtio-pci %s: truncated state", vd->ops->name);
	if (virtio_dev_load(vd, &c, e) < 0)
		return -1;
	if (!vcursor_at_end(&c))
		return err_set(e, "virtio-pci %s: %zu trailing bytes in state", vd->ops->name,
			       vcursor_left(&c));
	p->config_vector = valid_vector(p, p->config_vector);
	for (int i = 0; i < nq; i++)
		p->queue_vector[i] = valid_vector(p, p->queue_vector[i]);
	p->msix_pba &= nvec < 64 ? (1ULL << nvec) - 1 : ~0ULL;
	/* Re-assert a pending level interrupt on the new VM's irqchip. */
	p->intx_level = false;
	set_intx(p, p->isr && !msix_enabled(p));
	return 0;
}
