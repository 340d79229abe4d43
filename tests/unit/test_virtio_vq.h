/* Shared fixture for the virtio unit tests: a fake guest RAM between two
 * PROT_NONE guard regions (any stray access faults) and a dirty-byte map
 * that checks every device write was reported. Header-only (included by
 * each test_virtio_*.c). */
#ifndef TEST_VIRTIO_VQ_H
#define TEST_VIRTIO_VQ_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/err.h"
#include "lib/vmstate.h"
#include "vmm/virtio/guest_mem.h"
#include "vmm/virtio/virtqueue.h"

#define RAM_SIZE	(256 * 1024)
#define GUARD		(64 * 1024)
#define DESC_GPA	0x1000
#define AVAIL_GPA	0x3000
#define USED_GPA	0x4000
#define DATA_GPA	0x10000

struct fake_ram {
	uint8_t *map;		/* guard | ram | guard */
	uint8_t *ram;
	uint8_t *snap;		/* copy taken by fr_snapshot */
	uint8_t *dirty;		/* one byte per RAM byte */
	struct guest_mem gm;
};

static void fr_mark_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
	struct fake_ram *fr = opaque;

	assert_true(gpa < RAM_SIZE && len <= RAM_SIZE - gpa);
	memset(fr->dirty + gpa, 1, len);
}

static inline struct fake_ram *fr_new(void)
{
	struct fake_ram *fr = calloc(1, sizeof(*fr));

	fr->map = mmap(NULL, RAM_SIZE + 2 * GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(fr->map != MAP_FAILED);
	fr->ram = fr->map + GUARD;
	assert_int_equal(mprotect(fr->ram, RAM_SIZE, PROT_READ | PROT_WRITE), 0);
	fr->snap = calloc(1, RAM_SIZE);
	fr->dirty = calloc(1, RAM_SIZE);
	gm_init_flat(&fr->gm, fr->ram, RAM_SIZE);
	fr->gm.mark_dirty = fr_mark_dirty;
	fr->gm.opaque = fr;
	return fr;
}

static inline void fr_free(struct fake_ram *fr)
{
	munmap(fr->map, RAM_SIZE + 2 * GUARD);
	free(fr->snap);
	free(fr->dirty);
	free(fr);
}

static inline void fr_snapshot(struct fake_ram *fr)
{
	memcpy(fr->snap, fr->ram, RAM_SIZE);
	memset(fr->dirty, 0, RAM_SIZE);
}

/* Every byte that changed since the snapshot must have been marked dirty. */
static inline void fr_check_dirty(struct fake_ram *fr)
{
	for (size_t i = 0; i < RAM_SIZE; i++)
		if (fr->ram[i] != fr->snap[i] && !fr->dirty[i]) {
			fprintf(stderr, "byte %#zx changed but not marked dirty\n", i);
			fail();
		}
}

/* Driver-side write: also applied to the snapshot (it is not a device write). */
static inline void drv_write(struct fake_ram *fr, uint64_t gpa, const void *src, size_t len)
{
	memcpy(fr->ram + gpa, src, len);
	memcpy(fr->snap + gpa, src, len);
}

static inline void put_desc(struct fake_ram *fr, uint64_t table, uint16_t i, uint64_t addr,
			    uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t d = table + 16 * i;

	drv_write(fr, d, &addr, 8);
	drv_write(fr, d + 8, &len, 4);
	drv_write(fr, d + 12, &flags, 2);
	drv_write(fr, d + 14, &next, 2);
}

static inline uint16_t avail_idx(struct fake_ram *fr)
{
	uint16_t v;

	memcpy(&v, fr->ram + AVAIL_GPA + 2, 2);
	return v;
}

/* Append head to the avail ring (size qs) and bump idx. */
static inline void avail_add(struct fake_ram *fr, uint16_t qs, uint16_t head)
{
	uint16_t idx = avail_idx(fr);

	drv_write(fr, AVAIL_GPA + 4 + 2 * (idx % qs), &head, 2);
	idx++;
	drv_write(fr, AVAIL_GPA + 2, &idx, 2);
}

static inline uint16_t used_idx(struct fake_ram *fr)
{
	uint16_t v;

	memcpy(&v, fr->ram + USED_GPA + 2, 2);
	return v;
}

static inline void used_elem(struct fake_ram *fr, uint16_t i, uint32_t *id, uint32_t *len)
{
	memcpy(id, fr->ram + USED_GPA + 4 + 8 * i, 4);
	memcpy(len, fr->ram + USED_GPA + 8 + 8 * i, 4);
}

static inline void vq_setup(struct virtq *vq, struct fake_ram *fr, uint16_t qs, bool ev, bool ind)
{
	vq_init(vq, &fr->gm, 256);
	vq->size = qs;
	vq->desc_addr = DESC_GPA;
	vq->avail_addr = AVAIL_GPA;
	vq->used_addr = USED_GPA;
	assert_int_equal(vq_enable(vq, ev, ind), 0);
}

/* Device state round trips: section_begin() opens a one-section state
 * writer, the test saves into it, section_parse() closes, parses and finds
 * the section again: *p, *plen is the payload to load (valid until
 * vmstate_writer_free(w); r is the caller's to free). */
static inline void section_begin(struct vmstate_writer *w, const char *name, uint16_t ver)
{
	struct err err;

	assert_int_equal(vmstate_writer_init(w, 0, &err), 0);
	assert_int_equal(vmstate_begin_section(w, name, ver, 0, &err), 0);
}

static inline void section_parse(struct vmstate_writer *w, struct vmstate_reader *r,
				 const char *name, const void **p, size_t *plen, uint16_t *ver)
{
	const void *buf;
	size_t len;
	struct err err;

	assert_int_equal(vmstate_end_section(w, &err), 0);
	assert_int_equal(vmstate_writer_finish(w, &buf, &len, &err), 0);
	assert_int_equal(vmstate_parse(buf, len, r, &err), 0);
	assert_int_equal(vmstate_find(r, name, p, plen, ver), 1);
}

#endif
