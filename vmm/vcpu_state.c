/* Save order follows KVM's guidance (and QEMU): mp_state first (it may
 * flush pending events into registers), then registers. Load order matters:
 *   regs -> xsave/fpu -> xcrs -> sregs (sets APIC base, EFER, CRs) -> MSRs
 *   (TSC, kvmclock, ... after EFER) -> mp_state -> lapic (after the APIC
 *   base from sregs) -> events (pending exceptions/NMIs last, so nothing
 *   above clobbers them) -> debugregs. */
#include "vmm/vcpu_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vm.h"

#ifndef MSR_KVM_WALL_CLOCK
#define MSR_KVM_WALL_CLOCK	0x11
#endif
#ifndef MSR_KVM_WALL_CLOCK_NEW
#define MSR_KVM_WALL_CLOCK_NEW	0x4b564d00
#endif

static int get_msrs(int fd, struct kvm_msr_entry *ent, uint32_t n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(*ent));
	int r;

	if (!m)
		return -1;
	m->nmsrs = n;
	memcpy(m->entries, ent, n * sizeof(*ent));
	r = ioctl(fd, KVM_GET_MSRS, m);
	if (r > 0)
		memcpy(ent, m->entries, (size_t)r * sizeof(*ent));
	free(m);
	return r;
}

static int set_msrs(int fd, const struct kvm_msr_entry *ent, uint32_t n)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(*ent));
	int r;

	if (!m)
		return -1;
	m->nmsrs = n;
	memcpy(m->entries, ent, n * sizeof(*ent));
	r = ioctl(fd, KVM_SET_MSRS, m);
	free(m);
	return r;
}

int vcpu_state_msr_list(struct vm *vm, uint32_t *idx, int max, struct err *e)
{
	struct kvm_msr_list *l;
	struct kvm_msr_entry probe;
	uint32_t n = 0;
	int out = 0;

	/* First call with nmsrs = 0 reports the count (E2BIG). */
	struct kvm_msr_list hdr = { .nmsrs = 0 };
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &hdr) < 0 && errno != E2BIG)
		return err_errno(e, errno, "KVM_GET_MSR_INDEX_LIST");
	n = hdr.nmsrs;
	l = calloc(1, sizeof(*l) + n * sizeof(uint32_t));
	if (!l)
		return err_set(e, "out of memory");
	l->nmsrs = n;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return err_errno(e, errno, "KVM_GET_MSR_INDEX_LIST");
	}
	/* Keep only MSRs this vCPU can actually read (the list is host-wide;
	 * some depend on guest CPUID). Probing costs one ioctl each, once. */
	for (uint32_t i = 0; i < l->nmsrs && out < max; i++) {
		memset(&probe, 0, sizeof(probe));
		probe.index = l->indices[i];
		if (get_msrs(vm->vcpus[0].fd, &probe, 1) == 1)
			idx[out++] = l->indices[i];
	}
	free(l);
	return out;
}

int vcpu_state_save(struct vcpu *v, struct vcpu_state *s, struct err *e)
{
	const struct kvm_caps *c = &v->vm->caps;
	uint32_t idx[VCPU_STATE_MAX_MSRS];
	int n, r;

	memset(s, 0, sizeof(*s));
	if (ioctl(v->fd, KVM_GET_MP_STATE, &s->mp_state) < 0)
		return err_errno(e, errno, "KVM_GET_MP_STATE");
	if (ioctl(v->fd, KVM_GET_REGS, &s->regs) < 0)
		return err_errno(e, errno, "KVM_GET_REGS");
	if (ioctl(v->fd, KVM_GET_SREGS, &s->sregs) < 0)
		return err_errno(e, errno, "KVM_GET_SREGS");
	if (c->xsave) {
		if (ioctl(v->fd, KVM_GET_XSAVE, &s->xsave) < 0)
			return err_errno(e, errno, "KVM_GET_XSAVE");
		s->has_xsave = true;
	} else if (ioctl(v->fd, KVM_GET_FPU, &s->fpu) < 0) {
		return err_errno(e, errno, "KVM_GET_FPU");
	}
	if (c->xcrs) {
		if (ioctl(v->fd, KVM_GET_XCRS, &s->xcrs) < 0)
			return err_errno(e, errno, "KVM_GET_XCRS");
		s->has_xcrs = true;
	}
	n = vcpu_state_msr_list(v->vm, idx, VCPU_STATE_MAX_MSRS, e);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		s->msrs[i].index = idx[i];
	r = get_msrs(v->fd, s->msrs, (uint32_t)n);
	if (r != n)
		return err_set(e, "KVM_GET_MSRS: read %d of %d (MSR 0x%x failed)", r, n,
			       r >= 0 && r < n ? idx[r] : 0);
	s->nmsrs = (uint32_t)n;
	if (ioctl(v->fd, KVM_GET_LAPIC, &s->lapic) < 0)
		return err_errno(e, errno, "KVM_GET_LAPIC");
	if (c->vcpu_events) {
		if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &s->events) < 0)
			return err_errno(e, errno, "KVM_GET_VCPU_EVENTS");
		s->has_events = true;
	}
	if (c->debugregs) {
		if (ioctl(v->fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0)
			return err_errno(e, errno, "KVM_GET_DEBUGREGS");
		s->has_debugregs = true;
	}
	return 0;
}

int vcpu_state_load(struct vcpu *v, const struct vcpu_state *s, struct err *e)
{
	const struct kvm_caps *c = &v->vm->caps;
	static __thread struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
	uint32_t nm;
	int r;

	if ((s->has_xsave && !c->xsave) || (s->has_xcrs && !c->xcrs) ||
	    (s->has_events && !c->vcpu_events) || (s->has_debugregs && !c->debugregs))
		return err_set(e, "state needs a KVM capability this host lacks");
	if (ioctl(v->fd, KVM_SET_REGS, &s->regs) < 0)
		return err_errno(e, errno, "KVM_SET_REGS");
	if (s->has_xsave) {
		if (ioctl(v->fd, KVM_SET_XSAVE, &s->xsave) < 0)
			return err_errno(e, errno, "KVM_SET_XSAVE");
	} else if (ioctl(v->fd, KVM_SET_FPU, &s->fpu) < 0) {
		return err_errno(e, errno, "KVM_SET_FPU");
	}
	if (s->has_xcrs && ioctl(v->fd, KVM_SET_XCRS, &s->xcrs) < 0)
		return err_errno(e, errno, "KVM_SET_XCRS");
	if (ioctl(v->fd, KVM_SET_SREGS, &s->sregs) < 0)
		return err_errno(e, errno, "KVM_SET_SREGS");
	/* MSR_KVM_WALL_CLOCK(_NEW) are write-only triggers: a write makes KVM
	 * store the host's wall clock into guest RAM at once. The guest wrote
	 * it (and read the result) when it wanted the time; writing it again
	 * here would change a page of guest RAM behind its back (a migrated
	 * guest's RAM would no longer equal the source's at pause). QEMU does
	 * not restore them either. */
	nm = 0;
	for (uint32_t i = 0; i < s->nmsrs; i++)
		if (s->msrs[i].index != MSR_KVM_WALL_CLOCK && s->msrs[i].index != MSR_KVM_WALL_CLOCK_NEW)
			msrs[nm++] = s->msrs[i];
	r = set_msrs(v->fd, msrs, nm);
	if (r != (int)nm)
		return err_set(e, "KVM_SET_MSRS: wrote %d of %u (MSR 0x%x rejected)", r, nm,
			       r >= 0 && (uint32_t)r < nm ? msrs[r].index : 0);
	if (ioctl(v->fd, KVM_SET_MP_STATE, &s->mp_state) < 0)
		return err_errno(e, errno, "KVM_SET_MP_STATE");
	if (ioctl(v->fd, KVM_SET_LAPIC, &s->lapic) < 0)
		return err_errno(e, errno, "KVM_SET_LAPIC");
	if (s->has_events && ioctl(v->fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
		return err_errno(e, errno, "KVM_SET_VCPU_EVENTS");
	if (s->has_debugregs && ioctl(v->fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0)
		return err_errno(e, errno, "KVM_SET_DEBUGREGS");
	return 0;
}
