/* Snapshot save and restore (format and atomicity rules: snapshot.h).
 *
 * RESTORE ORDER (snap_restore), and why:
 *  0. The VM is built from the machine section exactly like a fresh one
 *     (memory layout, irqchip + PIT created, devices realized, vCPUs created
 *     with CPUID set) but the kernel is not loaded.
 *  1. RAM from DIR/memory first: device load may look at guest memory
 *     (virtio rings) and nothing below may run with stale RAM.
 *  2. Each vCPU (vcpu_state_load): regs -> xsave/fpu -> xcrs -> sregs (EFER,
 *     CRs, APIC base) -> MSRs (after CPUID, set at vCPU creation, which
 *     decides which MSRs exist; after EFER; includes IA32_TSC so the guest
 *     TSC continues from the saved value) -> mp_state -> LAPIC (after the
 *     APIC base MSR/sregs) -> events (pending exceptions/NMI/SIPI last so
 *     nothing above clobbers them) -> debugregs.
 *  3. IA32_TSC_DEADLINE once more, after the LAPIC: KVM drops a deadline
 *     written while the LAPIC timer is not in TSC-deadline mode, and the
 *     guest would wait for its next timer interrupt forever.
 *  4. irqchip (PIC master, slave, IOAPIC) after all LAPICs, so routed and
 *     re-evaluated level interrupts reach configured LAPICs.
 *  5. PIT after the irqchip (its output is ISA IRQ 0).
 *  6. Devices (their load may re-assert IRQ lines: needs the irqchip).
 *  7. KVM clock (KVM_SET_CLOCK) last, just before the vCPUs run: the guest's
 *     kvmclock continues from the saved value, so CLOCK_MONOTONIC never
 *     jumps back and the time the VM was down is invisible to it (apart
 *     from the pause, the same as a long steal).
 * Save takes mp_state first (vcpu_state_save), with every vCPU out of
 * KVM_RUN and pending I/O completed (pause.c re-enters KVM_RUN with
 * immediate_exit set). */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fdio.h"
#include "vmm/config.h"
#include "vmm/vm.h"

#define MSR_IA32_TSC_DEADLINE	0x6e0
#define PAGE			4096u

static void dev_section_name(const struct vm *vm, int idx, char *out, size_t cap)
{
	const char *name = vm->devs[idx].ops->name;
	int k = 0;

	for (int i = 0; i < idx; i++)
		if (!strcmp(vm->devs[i].ops->name, name))
			k++;
	if (k)
		snprintf(out, cap, "dev.%s.%d", name, k);
	else
		snprintf(out, cap, "dev.%s", name);
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (unsigned i = 0; i < PAGE / 8; i += 8)
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7])
			return false;
	return true;
}

static int pwrite_full(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t r = pwrite(fd, p, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

static int pread_full(int fd, uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t r = pread(fd, p, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO;	/* file shrank under us */
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

/* Write RAM sparsely: only extents the memfd has data in (SEEK_DATA), and
 * within them only non-zero pages; the rest stays a hole. */
static int save_memory(struct vm *vm, int fd, struct err *e)
{
	uint64_t size = vm->mem.size, off = 0;

	if (ftruncate(fd, (off_t)size) < 0)
		return err_errno(e, errno, "ftruncate");
	while (off < size) {
		off_t d = lseek(vm->mem.memfd, (off_t)off, SEEK_DATA);
		off_t h;

		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0) {	/* no SEEK_DATA: treat everything as data */
			d = (off_t)off;
			h = (off_t)size;
		} else {
			h = lseek(vm->mem.memfd, d, SEEK_HOLE);
			if (h < 0 || (uint64_t)h > size)
				h = (off_t)size;
		}
		uint64_t p = (uint64_t)d & ~(uint64_t)(PAGE - 1), end = (uint64_t)h;

		while (p < end) {
			uint64_t run;

			if (page_is_zero(vm->mem.ram + p)) {
				p += PAGE;
				continue;
			}
			for (run = p + PAGE; run < end && run - p < (8u << 20) &&
			     !page_is_zero(vm->mem.ram + run); run += PAGE)
				;
			if (pwrite_full(fd, vm->mem.ram + p, run - p, (off_t)p) < 0)
				return err_errno(e, errno, "write at offset %llu",
						 (unsigned long long)p);
			p = run;
		}
		off = end;
	}
	return 0;
}

static int load_memory(struct vm *vm, int fd, struct err *e)
{
	uint64_t size = vm->mem.size, off = 0;

	while (off < size) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);
		off_t h;

		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0) {
			d = (off_t)off;
			h = (off_t)size;
		} else {
			h = lseek(fd, d, SEEK_HOLE);
			if (h < 0 || (uint64_t)h > size)
				h = (off_t)size;
		}
		if ((uint64_t)d >= size)
			break;
		if (pread_full(fd, vm->mem.ram + d, (size_t)(h - d), d) < 0)
			return err_errno(e, errno, "read at offset %llu", (unsigned long long)d);
		off = (uint64_t)h;
	}
	return 0;
}

static int build_state(struct vm *vm, struct vmstate_writer *w, struct err *e)
{
	struct snap_machine *m = calloc(1, sizeof(*m));
	struct vcpu_state *vs = malloc(sizeof(*vs));
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	int r = -1;

	if (!m || !vs) {
		err_set(e, "out of memory");
		goto out;
	}
	snprintf(m->name, sizeof(m->name), "%s", vm->cfg.name ? vm->cfg.name : "vm");
	snprintf(m->kernel, sizeof(m->kernel), "%s", vm->cfg.kernel ? vm->cfg.kernel : "");
	snprintf(m->initrd, sizeof(m->initrd), "%s", vm->cfg.initrd ? vm->cfg.initrd : "");
	snprintf(m->cmdline, sizeof(m->cmdline), "%s", vm->cfg.cmdline ? vm->cfg.cmdline : "");
	m->mem_size = vm->mem.size;
	m->ncpus = (uint32_t)vm->ncpus;
	m->nregions = (uint32_t)vm->mem.nregions;
	for (int i = 0; i < vm->mem.nregions; i++) {
		m->regions[i].gpa = vm->mem.regions[i].gpa;
		m->regions[i].size = vm->mem.regions[i].size;
		m->regions[i].memfd_off = vm->mem.regions[i].memfd_off;
	}
	m->memory_file_size = vm->mem.size;
	if (snap_encode_machine(w, m, e) < 0)
		goto out;
	for (int i = 0; i < vm->ncpus; i++) {
		if (vcpu_state_save(&vm->vcpus[i], vs, e) < 0) {
			err_prefix(e, "vcpu %d", i);
			goto out;
		}
		if (snap_encode_vcpu(w, i, vs, e) < 0)
			goto out;
	}
	memset(chip, 0, sizeof(chip));
	for (int i = 0; i < 3; i++) {
		chip[i].chip_id = (uint32_t)i;	/* PIC master, PIC slave, IOAPIC */
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip[i]) < 0) {
			err_errno(e, errno, "KVM_GET_IRQCHIP %d", i);
			goto out;
		}
	}
	if (vmstate_begin_section(w, "irqchip", SNAP_IRQCHIP_VERSION, VMSTATE_SEC_REQUIRED, e) < 0 ||
	    vmstate_put(w, chip, sizeof(chip), e) < 0 || vmstate_end_section(w, e) < 0)
		goto out;
	memset(&pit, 0, sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0) {
		err_errno(e, errno, "KVM_GET_PIT2");
		goto out;
	}
	if (vmstate_begin_section(w, "pit", SNAP_PIT_VERSION, VMSTATE_SEC_REQUIRED, e) < 0 ||
	    vmstate_put(w, &pit, sizeof(pit), e) < 0 || vmstate_end_section(w, e) < 0)
		goto out;
	for (int i = 0; i < vm->ndevs; i++) {
		struct device *d = &vm->devs[i];
		char name[VMSTATE_NAME_MAX + 1];
		int rr;

		if (!d->realized)
			continue;
		if (!d->ops->save) {
			if (d->priv) {
				err_set(e, "device '%s' has state but no save op", d->ops->name);
				goto out;
			}
			continue;
		}
		dev_section_name(vm, i, name, sizeof(name));
		if (vmstate_begin_section(w, name, d->ops->state_version ? d->ops->state_version : 1,
					  VMSTATE_SEC_REQUIRED, e) < 0)
			goto out;
		rr = d->ops->save(d, w, e);	/* d->lock held by snap_save */
		if (rr < 0 || vmstate_end_section(w, e) < 0) {
			err_prefix(e, "device '%s'", d->ops->name);
			goto out;
		}
	}
	/* Clock last: the closest to the moment the vCPUs stopped. */
	memset(&clock, 0, sizeof(clock));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0) {
		err_errno(e, errno, "KVM_GET_CLOCK");
		goto out;
	}
	if (vmstate_begin_section(w, "clock", SNAP_CLOCK_VERSION, VMSTATE_SEC_REQUIRED, e) < 0 ||
	    vmstate_put(w, &clock, sizeof(clock), e) < 0 || vmstate_end_section(w, e) < 0)
		goto out;
	r = 0;
out:
	free(m);
	free(vs);
	return r;
}

static int fsync_path(const char *path, struct err *e)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_errno(e, errno, "open %s", path);
	if (fsync(fd) < 0) {
		close(fd);
		return err_errno(e, errno, "fsync %s", path);
	}
	close(fd);
	return 0;
}

static void unlock_devs(struct vm *vm)
{
	for (int i = vm->ndevs - 1; i >= 0; i--)
		pthread_mutex_unlock(&vm->devs[i].lock);
}

int snap_save(struct vm *vm, const char *dir, struct err *e)
{
	struct vmstate_writer w;
	char state[PATH_MAX], mem[PATH_MAX], state_tmp[PATH_MAX], mem_tmp[PATH_MAX];
	bool locked = false;
	int fd = -1;

	if (snprintf(state, sizeof(state), "%s/state", dir) >= (int)sizeof(state) ||
	    snprintf(mem, sizeof(mem), "%s/memory", dir) >= (int)sizeof(mem) ||
	    snprintf(state_tmp, sizeof(state_tmp), "%s/.state.tmp", dir) >= (int)sizeof(state_tmp) ||
	    snprintf(mem_tmp, sizeof(mem_tmp), "%s/.memory.tmp", dir) >= (int)sizeof(mem_tmp))
		return err_set(e, "%s: path too long", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_errno(e, errno, "mkdir %s", dir);
	if (vmstate_writer_init(&w, 0, e) < 0)
		return -1;
	/* vCPUs are stopped, but the I/O thread may still move device state
	 * and write RAM (tap RX, pending ioeventfds): hold every device lock
	 * (table order = the pci-before-device lock order) until RAM is
	 * written, so device state and RAM are one consistent cut. */
	for (int i = 0; i < vm->ndevs; i++)
		pthread_mutex_lock(&vm->devs[i].lock);
	locked = true;
	/* All KVM state first: a failure here touches no file. */
	if (build_state(vm, &w, e) < 0)
		goto fail;
	/* Invalidate the old snapshot before replacing any part of it. */
	if (unlink(state) < 0 && errno != ENOENT) {
		err_errno(e, errno, "unlink %s", state);
		goto fail;
	}
	fd = open(mem_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_errno(e, errno, "create %s", mem_tmp);
		goto fail;
	}
	if (save_memory(vm, fd, e) < 0 || (fsync(fd) < 0 && err_errno(e, errno, "fsync"))) {
		err_prefix(e, "%s", mem_tmp);
		goto fail;
	}
	unlock_devs(vm);
	locked = false;
	close(fd);
	fd = open(state_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_errno(e, errno, "create %s", state_tmp);
		goto fail;
	}
	if (vmstate_writer_finish_fd(&w, fd, e) < 0 ||
	    (fsync(fd) < 0 && err_errno(e, errno, "fsync"))) {
		err_prefix(e, "%s", state_tmp);
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(mem_tmp, mem) < 0) {
		err_errno(e, errno, "rename %s", mem_tmp);
		goto fail;
	}
	if (rename(state_tmp, state) < 0) {
		err_errno(e, errno, "rename %s", state_tmp);
		goto fail;
	}
	vmstate_writer_free(&w);
	return fsync_path(dir, e);
fail:
	if (locked)
		unlock_devs(vm);
	if (fd >= 0)
		close(fd);
	unlink(mem_tmp);
	unlink(state_tmp);
	vmstate_writer_free(&w);
	return -1;
}

int snap_open(const char *dir, struct snap_state *s, struct err *e)
{
	char path[PATH_MAX];
	struct stat st;
	uint8_t *buf = NULL;
	int fd;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "%s/state", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "%s: no usable state file (incomplete or no snapshot)", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, "%s: not a regular file", path);
	}
	if (st.st_size > SNAP_STATE_MAX) {
		close(fd);
		return err_set(e, "%s: %lld bytes, larger than any state file", path,
			       (long long)st.st_size);
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return err_set(e, "out of memory");
	}
	if (pread_full(fd, buf, (size_t)st.st_size, 0) < 0) {
		err_errno(e, errno, "read %s", path);
		close(fd);
		free(buf);
		return -1;
	}
	close(fd);
	if (snap_state_parse(buf, (size_t)st.st_size, s, e) < 0) {
		free(buf);
		return err_prefix(e, "%s", path);
	}
	snprintf(path, sizeof(path), "%s/memory", dir);
	if (stat(path, &st) < 0) {
		err_errno(e, errno, "%s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != s->m.memory_file_size) {
		err_set(e, "%s: %lld bytes, want %llu (RAM size in the state file)", path,
			(long long)st.st_size, (unsigned long long)s->m.memory_file_size);
		goto fail;
	}
	return 0;
fail:
	snap_state_free(s);
	return -1;
}

void snap_apply_config(const struct snap_state *s, struct vm_config *cfg)
{
	cfg->name = s->m.name;
	cfg->kernel = NULL;	/* no boot: vm_create leaves RAM to snap_restore */
	cfg->initrd = s->m.initrd[0] ? s->m.initrd : NULL;
	cfg->cmdline = s->m.cmdline;
	cfg->mem_size = s->m.mem_size;
	cfg->ncpus = (int)s->m.ncpus;
}

static int set_tsc_deadline(struct vcpu *v, const struct vcpu_state *s, struct err *e)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry ent;
	} m;

	for (uint32_t i = 0; i < s->nmsrs; i++) {
		if (s->msrs[i].index != MSR_IA32_TSC_DEADLINE)
			continue;
		memset(&m, 0, sizeof(m));
		m.h.nmsrs = 1;
		m.ent = s->msrs[i];
		if (ioctl(v->fd, KVM_SET_MSRS, &m) != 1)
			return err_set(e, "KVM_SET_MSRS IA32_TSC_DEADLINE failed");
	}
	return 0;
}

int snap_restore(struct vm *vm, const char *dir, const struct snap_state *s, struct err *e)
{
	char path[PATH_MAX];
	int fd;

	if (vm->ncpus != (int)s->m.ncpus || vm->mem.size != s->m.mem_size)
		return err_set(e, "VM shape differs from the snapshot");
	/* 1. RAM */
	snprintf(path, sizeof(path), "%s/memory", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "open %s", path);
	if (load_memory(vm, fd, e) < 0) {
		close(fd);
		return err_prefix(e, "%s", path);
	}
	close(fd);
	return snap_restore_state(vm, s, e);
}

int snap_save_state(struct vm *vm, struct vmstate_writer *w, struct err *e)
{
	return build_state(vm, w, e);
}

int snap_restore_state(struct vm *vm, const struct snap_state *s, struct err *e)
{
	struct vcpu_state *vs;
	const void *p;
	size_t len;
	uint16_t ver;

	if (vm->ncpus != (int)s->m.ncpus || vm->mem.size != s->m.mem_size)
		return err_set(e, "VM shape differs from the saved state (%u vCPUs, %llu bytes RAM; "
			       "this VM has %d, %llu)", s->m.ncpus, (unsigned long long)s->m.mem_size,
			       vm->ncpus, (unsigned long long)vm->mem.size);
	/* 2-3. vCPUs */
	vs = malloc(sizeof(*vs));
	if (!vs)
		return err_set(e, "out of memory");
	for (int i = 0; i < vm->ncpus; i++) {
		char name[32];

		snprintf(name, sizeof(name), "cpu.%d", i);
		if (!vmstate_find(&s->r, name, &p, &len, &ver) ||
		    snap_decode_vcpu(p, len, ver, vs, e) < 0 ||
		    vcpu_state_load(&vm->vcpus[i], vs, e) < 0 ||
		    set_tsc_deadline(&vm->vcpus[i], vs, e) < 0) {
			free(vs);
			return err_prefix(e, "vcpu %d", i);
		}
	}
	free(vs);
	/* 4. irqchip */
	if (vmstate_find(&s->r, "irqchip", &p, &len, &ver)) {
		struct kvm_irqchip chip[3];

		memcpy(chip, p, sizeof(chip));
		for (int i = 0; i < 3; i++) {
			chip[i].chip_id = (uint32_t)i;
			if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip[i]) < 0)
				return err_errno(e, errno, "KVM_SET_IRQCHIP %d", i);
		}
	}
	/* 5. PIT */
	if (vmstate_find(&s->r, "pit", &p, &len, &ver)) {
		struct kvm_pit_state2 pit;

		memcpy(&pit, p, sizeof(pit));
		if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
			return err_errno(e, errno, "KVM_SET_PIT2");
	}
	/* 6. devices: every device with state must find its section, and every
	 * device section must belong to a device of this VM. */
	for (int i = 0; i < vm->ndevs; i++) {
		struct device *d = &vm->devs[i];
		char name[VMSTATE_NAME_MAX + 1];
		int rr;

		if (!d->realized)
			continue;
		dev_section_name(vm, i, name, sizeof(name));
		if (!vmstate_find(&s->r, name, &p, &len, &ver)) {
			if (d->ops->load || d->priv)
				return err_set(e, "snapshot has no state for device '%s'", name + 4);
			continue;
		}
		if (!d->ops->load)
			return err_set(e, "device '%s' cannot load state", name + 4);
		pthread_mutex_lock(&d->lock);
		rr = d->ops->load(d, p, len, ver, e);
		pthread_mutex_unlock(&d->lock);
		if (rr < 0)
			return err_prefix(e, "device '%s'", name + 4);
	}
	for (uint32_t i = 0; i < s->r.section_count; i++) {
		const char *n = s->r.sec[i].name;
		bool found = false;

		if (strncmp(n, "dev.", 4))
			continue;
		for (int k = 0; k < vm->ndevs && !found; k++) {
			char name[VMSTATE_NAME_MAX + 1];

			dev_section_name(vm, k, name, sizeof(name));
			found = !strcmp(name, n);
		}
		if (!found && (s->r.sec[i].flags & VMSTATE_SEC_REQUIRED))
			return err_set(e, "snapshot has state for device '%s' which this VM lacks "
				       "(restore with the same device options)", n + 4);
	}
	/* 7. clock */
	if (vmstate_find(&s->r, "clock", &p, &len, &ver)) {
		struct kvm_clock_data clock;

		memcpy(&clock, p, sizeof(clock));
		clock.flags = 0;	/* just the value; no realtime/host TSC pairing */
		memset(clock.pad, 0, sizeof(clock.pad));
		if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
			return err_errno(e, errno, "KVM_SET_CLOCK");
	}
	return 0;
}
