/* Snapshot state file encoding and validation. Pure: no KVM, no files;
 * everything here treats its input as hostile (fuzz/fuzz_snapshot.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/vcursor.h"
#include "vmm/config.h"
#include "vmm/memory.h"
#include "vmm/snapshot.h"

static int put_str(struct vmstate_writer *w, const char *s, struct err *e)
{
	size_t n = s ? strlen(s) : 0;

	if (n >= SNAP_STR_MAX)
		return err_set(e, "string too long (%zu bytes)", n);
	if (vmstate_put_u16(w, (uint16_t)n, e) < 0)
		return -1;
	return n ? vmstate_put(w, s, n, e) : 0;
}

static int get_str(struct vcursor *c, char *dst, size_t cap)
{
	uint16_t n;
	const char *p;

	if (vcursor_get_u16(c, &n) < 0 || n >= cap || !(p = vcursor_take(c, n)))
		return -1;
	if (memchr(p, 0, n))
		return -1;
	memcpy(dst, p, n);
	dst[n] = 0;
	return 0;
}

int snap_encode_machine(struct vmstate_writer *w, const struct snap_machine *m, struct err *e)
{
	if (vmstate_begin_section(w, "machine", SNAP_MACHINE_VERSION, VMSTATE_SEC_REQUIRED, e) < 0 ||
	    put_str(w, m->name, e) < 0 || put_str(w, m->kernel, e) < 0 ||
	    put_str(w, m->initrd, e) < 0 || put_str(w, m->cmdline, e) < 0 ||
	    vmstate_put_u64(w, m->mem_size, e) < 0 || vmstate_put_u32(w, m->ncpus, e) < 0 ||
	    vmstate_put_u32(w, m->nregions, e) < 0)
		return err_prefix(e, "machine section");
	for (uint32_t i = 0; i < m->nregions; i++)
		if (vmstate_put_u64(w, m->regions[i].gpa, e) < 0 ||
		    vmstate_put_u64(w, m->regions[i].size, e) < 0 ||
		    vmstate_put_u64(w, m->regions[i].memfd_off, e) < 0)
			return err_prefix(e, "machine section");
	if (vmstate_put_u64(w, m->memory_file_size, e) < 0 || vmstate_end_section(w, e) < 0)
		return err_prefix(e, "machine section");
	return 0;
}

int snap_decode_machine(const void *p, size_t len, uint16_t version, struct snap_machine *m,
			struct err *e)
{
	struct mem_region want[MEM_MAX_REGIONS];
	struct vcursor c;
	int n;

	if (version != SNAP_MACHINE_VERSION)
		return err_set(e, "machine section version %u not supported (want %u)", version,
			       SNAP_MACHINE_VERSION);
	memset(m, 0, sizeof(*m));
	vcursor_init(&c, p, len);
	if (get_str(&c, m->name, sizeof(m->name)) < 0 || get_str(&c, m->kernel, sizeof(m->kernel)) < 0 ||
	    get_str(&c, m->initrd, sizeof(m->initrd)) < 0 ||
	    get_str(&c, m->cmdline, sizeof(m->cmdline)) < 0)
		return err_set(e, "machine section: bad or truncated string");
	vcursor_get_u64(&c, &m->mem_size);
	vcursor_get_u32(&c, &m->ncpus);
	vcursor_get_u32(&c, &m->nregions);
	if (vcursor_failed(&c))
		return err_set(e, "machine section: truncated");
	if (m->nregions < 1 || m->nregions > MEM_MAX_REGIONS)
		return err_set(e, "machine section: %u memory regions (want 1..%d)", m->nregions,
			       MEM_MAX_REGIONS);
	for (uint32_t i = 0; i < m->nregions; i++) {
		vcursor_get_u64(&c, &m->regions[i].gpa);
		vcursor_get_u64(&c, &m->regions[i].size);
		vcursor_get_u64(&c, &m->regions[i].memfd_off);
	}
	vcursor_get_u64(&c, &m->memory_file_size);
	if (vcursor_failed(&c))
		return err_set(e, "machine section: truncated");
	if (!vcursor_at_end(&c))
		return err_set(e, "machine section: %zu trailing bytes", vcursor_left(&c));
	if (!m->name[0])
		return err_set(e, "machine section: empty VM name");
	if (m->mem_size < VM_MIN_MEM || m->mem_size > SNAP_MAX_MEM || (m->mem_size & 0xfff))
		return err_set(e, "machine section: bad memory size %llu",
			       (unsigned long long)m->mem_size);
	if (m->ncpus < 1 || m->ncpus > VM_MAX_CPUS)
		return err_set(e, "machine section: %u vCPUs out of range [1, %d]", m->ncpus,
			       VM_MAX_CPUS);
	if (m->memory_file_size != m->mem_size)
		return err_set(e, "machine section: memory file size %llu != RAM size %llu",
			       (unsigned long long)m->memory_file_size,
			       (unsigned long long)m->mem_size);
	/* The layout is rebuilt from mem_size; it must be the one saved. */
	n = mem_layout(m->mem_size, want, MEM_MAX_REGIONS);
	if (n != (int)m->nregions)
		return err_set(e, "machine section: memory layout differs from this vmm's");
	for (int i = 0; i < n; i++)
		if (want[i].gpa != m->regions[i].gpa || want[i].size != m->regions[i].size ||
		    want[i].memfd_off != m->regions[i].memfd_off)
			return err_set(e, "machine section: memory region %d differs from this vmm's", i);
	return 0;
}

/* Wire image of struct vcpu_state: flags as u8 (never decode into bool). */
struct vcpu_wire {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
	uint32_t nmsrs;
	struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
	uint8_t has_xsave, has_xcrs, has_events, has_debugregs;
};

static const struct vmstate_field vcpu_fields[] = {
	VMSTATE_BYTES(struct vcpu_wire, regs, 1),
	VMSTATE_BYTES(struct vcpu_wire, sregs, 1),
	VMSTATE_BYTES(struct vcpu_wire, fpu, 1),
	VMSTATE_BYTES(struct vcpu_wire, xsave, 1),
	VMSTATE_BYTES(struct vcpu_wire, xcrs, 1),
	VMSTATE_BYTES(struct vcpu_wire, lapic, 1),
	VMSTATE_BYTES(struct vcpu_wire, events, 1),
	VMSTATE_BYTES(struct vcpu_wire, mp_state, 1),
	VMSTATE_BYTES(struct vcpu_wire, debugregs, 1),
	VMSTATE_U32(struct vcpu_wire, nmsrs, 1),
	VMSTATE_BYTES(struct vcpu_wire, msrs, 1),
	VMSTATE_U8(struct vcpu_wire, has_xsave, 1),
	VMSTATE_U8(struct vcpu_wire, has_xcrs, 1),
	VMSTATE_U8(struct vcpu_wire, has_events, 1),
	VMSTATE_U8(struct vcpu_wire, has_debugregs, 1),
	VMSTATE_END
};

int snap_encode_vcpu(struct vmstate_writer *w, int id, const struct vcpu_state *s,
		     struct err *e)
{
	struct vcpu_wire *v = calloc(1, sizeof(*v));
	char name[32];
	int r = -1;

	if (!v)
		return err_set(e, "out of memory");
	v->regs = s->regs;
	v->sregs = s->sregs;
	v->fpu = s->fpu;
	v->xsave = s->xsave;
	v->xcrs = s->xcrs;
	v->lapic = s->lapic;
	v->events = s->events;
	v->mp_state = s->mp_state;
	v->debugregs = s->debugregs;
	v->nmsrs = s->nmsrs;
	memcpy(v->msrs, s->msrs, sizeof(v->msrs));
	v->has_xsave = s->has_xsave;
	v->has_xcrs = s->has_xcrs;
	v->has_events = s->has_events;
	v->has_debugregs = s->has_debugregs;
	snprintf(name, sizeof(name), "cpu.%d", id);
	if (vmstate_begin_section(w, name, SNAP_CPU_VERSION, VMSTATE_SEC_REQUIRED, e) == 0 &&
	    vmstate_save_fields(w, vcpu_fields, v, e) == 0 && vmstate_end_section(w, e) == 0)
		r = 0;
	else
		err_prefix(e, "%s", name);
	free(v);
	return r;
}

int snap_decode_vcpu(const void *p, size_t len, uint16_t version, struct vcpu_state *s,
		     struct err *e)
{
	struct vcpu_wire *v;
	int r = -1;

	if (version != SNAP_CPU_VERSION)
		return err_set(e, "section version %u not supported (want %u)", version,
			       SNAP_CPU_VERSION);
	v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(e, "out of memory");
	if (vmstate_load_fields(p, len, version, vcpu_fields, v, e) < 0)
		goto out;
	if (v->nmsrs > VCPU_STATE_MAX_MSRS) {
		err_set(e, "%u MSRs (max %d)", v->nmsrs, VCPU_STATE_MAX_MSRS);
		goto out;
	}
	if (v->has_xsave > 1 || v->has_xcrs > 1 || v->has_events > 1 || v->has_debugregs > 1) {
		err_set(e, "bad capability flags");
		goto out;
	}
	memset(s, 0, sizeof(*s));
	s->regs = v->regs;
	s->sregs = v->sregs;
	s->fpu = v->fpu;
	s->xsave = v->xsave;
	s->xcrs = v->xcrs;
	s->lapic = v->lapic;
	s->events = v->events;
	s->mp_state = v->mp_state;
	s->debugregs = v->debugregs;
	s->nmsrs = v->nmsrs;
	memcpy(s->msrs, v->msrs, sizeof(s->msrs));
	s->has_xsave = v->has_xsave;
	s->has_xcrs = v->has_xcrs;
	s->has_events = v->has_events;
	s->has_debugregs = v->has_debugregs;
	r = 0;
out:
	free(v);
	return r;
}

static int parse_cpu_name(const char *name, uint32_t *id)
{
	const char *d = name + 4;
	unsigned long v = 0;

	if (strncmp(name, "cpu.", 4) || !*d || (d[0] == '0' && d[1]))
		return -1;
	for (; *d; d++) {
		if (*d < '0' || *d > '9' || v > 100000)
			return -1;
		v = v * 10 + (unsigned long)(*d - '0');
	}
	*id = (uint32_t)v;
	return 0;
}

static int need_section(const struct snap_state *s, const char *name, uint16_t version,
			size_t size, struct err *e)
{
	const void *p;
	size_t len;
	uint16_t ver;

	if (!vmstate_find(&s->r, name, &p, &len, &ver))
		return err_set(e, "missing section '%s'", name);
	if (ver != version)
		return err_set(e, "section '%s' version %u not supported (want %u)", name, ver, version);
	if (size && len != size)
		return err_set(e, "section '%s': %zu bytes, want %zu", name, len, size);
	return 0;
}

int snap_state_parse(const void *buf, size_t len, struct snap_state *s, struct err *e)
{
	const void *p;
	size_t plen;
	uint16_t ver;
	struct vcpu_state *vs = NULL;

	memset(&s->r, 0, sizeof(s->r));
	if (vmstate_parse(buf, len, &s->r, e) < 0)
		return -1;
	if (!vmstate_find(&s->r, "machine", &p, &plen, &ver)) {
		err_set(e, "missing section 'machine'");
		goto fail;
	}
	if (snap_decode_machine(p, plen, ver, &s->m, e) < 0)
		goto fail;
	/* Required sections must all be ones this vmm knows. Device sections
	 * are matched against the VM's devices later (snap_restore). */
	for (uint32_t i = 0; i < s->r.section_count; i++) {
		const struct vmstate_section *sec = &s->r.sec[i];
		uint32_t id;

		if (!(sec->flags & VMSTATE_SEC_REQUIRED))
			continue;
		if (!strcmp(sec->name, "machine") || !strcmp(sec->name, "irqchip") ||
		    !strcmp(sec->name, "pit") || !strcmp(sec->name, "clock") ||
		    !strncmp(sec->name, "dev.", 4))
			continue;
		if (!parse_cpu_name(sec->name, &id) && id < s->m.ncpus)
			continue;
		err_set(e, "unknown required section '%s'", sec->name);
		goto fail;
	}
	vs = malloc(sizeof(*vs));
	if (!vs) {
		err_set(e, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < s->m.ncpus; i++) {
		char name[32];

		snprintf(name, sizeof(name), "cpu.%u", i);
		if (!vmstate_find(&s->r, name, &p, &plen, &ver)) {
			err_set(e, "missing section '%s'", name);
			goto fail;
		}
		if (snap_decode_vcpu(p, plen, ver, vs, e) < 0) {
			err_prefix(e, "%s", name);
			goto fail;
		}
	}
	if (need_section(s, "irqchip", SNAP_IRQCHIP_VERSION, 3 * sizeof(struct kvm_irqchip), e) < 0 ||
	    need_section(s, "pit", SNAP_PIT_VERSION, sizeof(struct kvm_pit_state2), e) < 0 ||
	    need_section(s, "clock", SNAP_CLOCK_VERSION, sizeof(struct kvm_clock_data), e) < 0)
		goto fail;
	free(vs);
	s->buf = (void *)buf;
	s->len = len;
	return 0;
fail:
	free(vs);
	vmstate_reader_free(&s->r);
	memset(&s->r, 0, sizeof(s->r));
	return -1;
}

void snap_state_free(struct snap_state *s)
{
	vmstate_reader_free(&s->r);
	memset(&s->r, 0, sizeof(s->r));
	free(s->buf);
	s->buf = NULL;
}
