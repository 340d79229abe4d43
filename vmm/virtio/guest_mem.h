/* Guest RAM as the virtio device models see it.
 *
 * The device models never see KVM: they get this small view of guest
 * physical memory (up to GM_MAX_REGIONS regions, normally [0, low) and
 * [4 GiB, 4 GiB + high) around the PCI hole) and a dirty-marking hook.
 *
 * THE DIRTY RULE: every byte a device writes into guest memory (used ring,
 * used idx, avail_event, request data, status bytes, RX buffers) must be
 * reported with gm_mark_dirty(). KVM's dirty log only sees guest writes;
 * migration, Remus checkpoints and clones rely on these marks for VMM writes.
 *
 * gm_ptr() is the only way to turn a guest-physical address into a host
 * pointer: it fails unless [gpa, gpa+len) lies wholly inside one region. */
#ifndef VMM_VIRTIO_GUEST_MEM_H
#define VMM_VIRTIO_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 4

struct gm_region {
	uint64_t gpa;		/* guest-physical start */
	uint64_t size;		/* bytes */
	uint8_t *host;		/* host address of gpa */
};

struct guest_mem {
	int nregions;
	struct gm_region r[GM_MAX_REGIONS];
	/* Called for every device write into guest RAM; may be NULL. Must be
	 * callable from any thread that runs device code. */
	void (*mark_dirty)(void *opaque, uint64_t gpa, uint64_t len);
	void *opaque;
};

/* One region [0, size) at host. */
void gm_init_flat(struct guest_mem *gm, uint8_t *host, uint64_t size);
/* Append a region; returns -1 if full, overlapping or wrapping. */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size, uint8_t *host);

/* Host pointer for [gpa, gpa+len) if it lies wholly inside one region
 * (overflow-safe), else NULL. len == 0 is allowed when gpa is inside RAM or
 * at a region's end. */
static inline void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->r[i];

		/* gpa - r->gpa cannot wrap once gpa >= r->gpa; compare lengths
		 * instead of end addresses so gpa + len never overflows. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

static inline void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (gm->mark_dirty && len)
		gm->mark_dirty(gm->opaque, gpa, len);
}

/* Copy into guest memory and mark it dirty; -1 if out of RAM. */
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);
/* Copy out of guest memory; -1 if out of RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);

#endif
