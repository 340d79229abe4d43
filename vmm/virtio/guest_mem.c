#include "vmm/virtio/guest_mem.h"

#include <string.h>

void gm_init_flat(struct guest_mem *gm, uint8_t *host, uint64_t size)
{
	memset(gm, 0, sizeof(*gm));
	gm->nregions = 1;
	gm->r[0].gpa = 0;
	gm->r[0].size = size;
	gm->r[0].host = host;
}

int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint8_t *host)
{
	if (gm->nregions >= GM_MAX_REGIONS || !size || gpa + size < gpa)
		return -1;
	for (int i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->r[i];

		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -1;
	}
	gm->r[gm->nregions].gpa = gpa;
	gm->r[gm->nregions].size = size;
	gm->r[gm->nregions].host = host;
	gm->nregions++;
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -1;
	memcpy(p, src, len);
	gm_mark_dirty(gm, gpa, len);
	return 0;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gm_ptr(gm, gpa, len);

	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}
