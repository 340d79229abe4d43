#include "vmm/memory.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/layout.h"

int mem_layout(uint64_t size, struct mem_region *out, int max)
{
	uint64_t low = size < LAYOUT_PCI_HOLE_START ? size : LAYOUT_PCI_HOLE_START;
	int n = 0;

	if (max < 2)
		return -1;
	memset(out, 0, sizeof(*out) * (size_t)max);
	out[n].gpa = 0;
	out[n].size = low;
	out[n].memfd_off = 0;
	out[n].slot = (uint32_t)n;
	n++;
	if (size > low) {
		out[n].gpa = LAYOUT_4G;
		out[n].size = size - low;
		out[n].memfd_off = low;
		out[n].slot = (uint32_t)n;
		n++;
	}
	return n;
}

static int mem_set_slot(int vm_fd, const struct mem_region *r, uint64_t size, struct err *e)
{
	struct kvm_userspace_memory_region kr = {
		.slot = r->slot,
		.flags = r->flags,
		.guest_phys_addr = r->gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)r->host,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
		return err_errno(e, errno, "KVM_SET_USER_MEMORY_REGION slot %u gpa 0x%llx size 0x%llx",
				 r->slot, (unsigned long long)r->gpa, (unsigned long long)size);
	return 0;
}

int mem_init(struct vm_memory *m, int vm_fd, uint64_t size, const char *name, struct err *e)
{
	int i;

	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	m->memfd = memfd_create(name, MFD_CLOEXEC);
	if (m->memfd < 0)
		return err_errno(e, errno, "memfd_create");
	if (ftruncate(m->memfd, (off_t)size) < 0) {
		err_errno(e, errno, "ftruncate memfd to %llu bytes", (unsigned long long)size);
		goto fail;
	}
	m->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->memfd, 0);
	if (m->ram == MAP_FAILED) {
		m->ram = NULL;
		err_errno(e, errno, "mmap guest RAM (%llu bytes)", (unsigned long long)size);
		goto fail;
	}
	m->size = size;
	/* Transparent huge pages cut EPT/NPT walk cost; failure is harmless
	 * (shmem THP may be disabled). */
	madvise(m->ram, size, MADV_HUGEPAGE);
	m->nregions = mem_layout(size, m->regions, MEM_MAX_REGIONS);
	for (i = 0; i < m->nregions; i++) {
		m->regions[i].host = m->ram + m->regions[i].memfd_off;
		if (mem_set_slot(vm_fd, &m->regions[i], m->regions[i].size, e) < 0)
			goto fail;
	}
	return 0;
fail:
	/* Slots registered so far die with the VM fd; just drop the mapping. */
	mem_exit(m);
	return -1;
}

void mem_exit(struct vm_memory *m)
{
	if (m->ram)
		munmap(m->ram, m->size);
	if (m->memfd >= 0)
		close(m->memfd);
	m->ram = NULL;
	m->memfd = -1;
	m->nregions = 0;
}

void *mem_gpa_to_hva(const struct vm_memory *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->nregions; i++) {
		const struct mem_region *r = &m->regions[i];

		if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len)
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int mem_write(const struct vm_memory *m, uint64_t gpa, const void *src, uint64_t len,
	      const char *what, struct err *e)
{
	void *dst = mem_gpa_to_hva(m, gpa, len);

	if (!dst)
		return err_set(e, "%s (0x%llx bytes at 0x%llx) does not fit in guest RAM",
			       what, (unsigned long long)len, (unsigned long long)gpa);
	memcpy(dst, src, len);
	return 0;
}

uint64_t mem_low_end(const struct vm_memory *m)
{
	return m->nregions ? m->regions[0].size : 0;
}

int mem_set_slot_flags(struct vm_memory *m, int vm_fd, int idx, uint32_t flags, struct err *e)
{
	struct mem_region *r = &m->regions[idx];
	uint32_t old = r->flags;

	r->flags = flags;
	if (mem_set_slot(vm_fd, r, r->size, e) < 0) {
		r->flags = old;
		return -1;
	}
	return 0;
}
