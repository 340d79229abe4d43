#include "vmm/virtio/blk.h"

#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/vcursor.h"
#include "lib/vmstate.h"

#define SECTOR		512ULL
#define HDR_LEN		16	/* u32 type, u32 reserved, u64 sector */

struct blk {
	int fd;
	bool readonly;
	uint64_t capacity;	/* sectors */
	char id[VIRTIO_BLK_ID_BYTES];
	struct vq_elem elem;
};

/* Transfer all of iov at off, retrying short transfers and EINTR. A read
 * that hits end of file zero-fills the rest (the image shrank under us).
 * Returns 0 or -errno. */
static int blk_rw(int fd, bool write, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = write ? pwritev(fd, iov, n, (off_t)off) : preadv(fd, iov, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			if (write)
				return -EIO;
			for (int i = 0; i < n; i++)
				memset(iov[i].iov_base, 0, iov[i].iov_len);
			return 0;
		}
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* Is [sector, sector + len bytes) inside the disk, in whole sectors? */
static bool blk_range_ok(const struct blk *b, uint64_t sector, uint32_t len)
{
	return len % SECTOR == 0 && sector <= b->capacity && len / SECTOR <= b->capacity - sector;
}

/* Serve one request; returns the used length (bytes written to the guest,
 * status byte included). Writes the status byte last. */
static uint32_t blk_request(struct virtio_dev *vd, struct blk *b, const struct vq_elem *e)
{
	struct iovec iov[VQ_MAX_SEGS];
	uint8_t hdr[HDR_LEN];
	uint8_t status = VIRTIO_BLK_S_IOERR;
	uint32_t type, data_len = e->in_len - 1, written = 0;	/* in_len >= 1 checked */
	uint64_t sector;
	int n;

	if (vq_elem_read(e, 0, hdr, HDR_LEN) != HDR_LEN)
		goto done;
	type = le_get32(hdr);
	sector = le_get64(hdr + 8);
	switch (type) {
	case VIRTIO_BLK_T_IN:
		if (!blk_range_ok(b, sector, data_len))
			break;
		n = vq_elem_iovec(e, true, 0, data_len, iov);
		/* Mark before checking the result: a failed read may still
		 * have changed part of the buffer. */
		if (blk_rw(b->fd, false, iov, n, sector * SECTOR) == 0)
			status = VIRTIO_BLK_S_OK;
		vq_elem_mark_dirty(vd->gm, e, 0, data_len);
		written = data_len;
		break;
	case VIRTIO_BLK_T_OUT:
		data_len = e->out_len - HDR_LEN;
		if (b->readonly || !blk_range_ok(b, sector, data_len))
			break;
		n = vq_elem_iovec(e, false, HDR_LEN, data_len, iov);
		if (blk_rw(b->fd, true, iov, n, sector * SECTOR) < 0)
			break;
		/* Without FLUSH the driver expects write-through. */
		if (!virtio_has_feature(vd, VIRTIO_BLK_F_FLUSH) && fdatasync(b->fd) < 0)
			break;
		status = VIRTIO_BLK_S_OK;	/* only now: the backend has it */
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (b->readonly || fdatasync(b->fd) == 0)
			status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID:
		written = data_len < VIRTIO_BLK_ID_BYTES ? data_len : VIRTIO_BLK_ID_BYTES;
		vq_elem_write(vd->gm, e, 0, b->id, written);
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
done:
	vq_elem_write(vd->gm, e, e->in_len - 1, &status, 1);
	return written + 1;
}

static void blk_notify(struct virtio_dev *vd, uint16_t q)
{
	struct blk *b = vd->priv;
	struct virtq *vq = &vd->vq[q];
	bool pushed = false;
	int r;

	while ((r = vq_pop(vq, &b->elem)) == 1) {
		uint32_t len;

		/* No room for a status byte: we cannot even fail the request. */
		if (b->elem.in_len < 1) {
			virtio_dev_broken(vd, "request without a status byte");
			return;
		}
		len = blk_request(vd, b, &b->elem);
		if (vq_push(vq, b->elem.head, len) < 0)
			break;
		pushed = true;
	}
	virtio_dev_check_vq(vd, q);
	if (pushed)
		virtio_dev_used(vd, q);
}

/* Device payload: u64 capacity (must match: same image on both sides). */
static int blk_save(struct virtio_dev *vd, struct vmstate_writer *w, struct err *e)
{
	struct blk *b = vd->priv;

	return vmstate_put_u64(w, b->capacity, e);
}

static int blk_load(struct virtio_dev *vd, struct vcursor *c, struct err *e)
{
	struct blk *b = vd->priv;
	uint64_t cap = 0;

	if (vcursor_get_u64(c, &cap) < 0)
		return err_set(e, "truncated state");
	if (cap != b->capacity)
		return err_set(e, "disk has %llu sectors, state says %llu",
			       (unsigned long long)b->capacity, (unsigned long long)cap);
	return 0;
}

static void blk_free(struct virtio_dev *vd)
{
	free(vd->priv);
}

const struct virtio_dev_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLK,
	.pci_class = 0x010000,	/* mass storage, SCSI */
	.queue_notify = blk_notify,
	.save = blk_save,
	.load = blk_load,
	.free = blk_free,
};

int virtio_blk_init(struct virtio_dev *vd, const struct guest_mem *gm, int fd, bool readonly,
		    const char *serial, struct err *e)
{
	struct stat st;
	uint64_t bytes;
	uint64_t feat = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
			(1ULL << VIRTIO_BLK_F_FLUSH);
	struct blk *b;

	if (fstat(fd, &st) < 0)
		return err_errno(e, errno, "virtio-blk: fstat");
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
			return err_errno(e, errno, "virtio-blk: BLKGETSIZE64");
	} else {
		bytes = (uint64_t)st.st_size;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, "virtio-blk: out of memory");
	b->fd = fd;
	b->readonly = readonly;
	b->capacity = bytes / SECTOR;
	if (serial)
		memcpy(b->id, serial, strnlen(serial, sizeof(b->id)));	/* NUL-padded, not terminated if 20 */
	if (readonly)
		feat |= 1ULL << VIRTIO_BLK_F_RO;
	virtio_dev_init(vd, &virtio_blk_ops, b, gm, feat, 1, VIRTIO_BLK_QUEUE_SIZE);
	/* struct virtio_blk_config: capacity, size_max, seg_max, geometry,
	 * blk_size (we fill the first 24 bytes). */
	vd->config_len = 24;
	le_put64(vd->config, b->capacity);
	le_put32(vd->config + 12, VIRTIO_BLK_SEG_MAX);
	le_put32(vd->config + 20, SECTOR);
	return 0;
}
