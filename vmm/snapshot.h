/* VM snapshots: DIR/state (a lib/vmstate container) + DIR/memory (raw RAM,
 * sparse: all-zero pages are holes).
 *
 * State file sections (container format version is lib/vmstate's; each
 * section has its own version):
 *   "machine" v1 REQUIRED   what is needed to rebuild the VM: name, mem size,
 *                           cpus, kernel/initrd/cmdline (informational: a
 *                           restore never reloads the kernel), RAM layout,
 *                           memory file size
 *   "cpu.N"   v1 REQUIRED   struct vcpu_state of vCPU N as named fields
 *   "irqchip" v1 REQUIRED   KVM_GET_IRQCHIP: PIC master, PIC slave, IOAPIC
 *   "pit"     v1 REQUIRED   KVM_GET_PIT2
 *   "clock"   v1 REQUIRED   KVM_GET_CLOCK
 *   "dev.NAME[.K]" REQUIRED one per device with a save op (K-th instance of
 *                           a repeated name), payload from the device
 *
 * Atomicity: a snapshot first removes DIR/state, then writes
 * DIR/.memory.tmp and DIR/.state.tmp, fsyncs them, renames memory then
 * state, and fsyncs DIR. DIR/state is the commit record: a crash at any
 * point leaves either no state file (refused: "no state file") or a
 * complete pair. */
#ifndef VMM_SNAPSHOT_H
#define VMM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/vmstate.h"
#include "vmm/memory.h"
#include "vmm/vcpu_state.h"

struct vm;
struct vm_config;

#define SNAP_MACHINE_VERSION	1
#define SNAP_CPU_VERSION	1
#define SNAP_IRQCHIP_VERSION	1
#define SNAP_PIT_VERSION	1
#define SNAP_CLOCK_VERSION	1
#define SNAP_STR_MAX		4096
#define SNAP_MAX_MEM		(1ULL << 40)
#define SNAP_STATE_MAX		(64u << 20)	/* state files are small */

/* Exit status of `vmm run --restore` when the snapshot is unusable
 * (missing, malformed, inconsistent): VMM_EXIT_USAGE. KVM refusing the
 * state: VMM_EXIT_ERROR. */

struct snap_machine {
	char name[256];
	char kernel[SNAP_STR_MAX];
	char initrd[SNAP_STR_MAX];
	char cmdline[SNAP_STR_MAX];
	uint64_t mem_size;
	uint32_t ncpus;
	uint32_t nregions;
	struct { uint64_t gpa, size, memfd_off; } regions[MEM_MAX_REGIONS];
	uint64_t memory_file_size;
};

/* A parsed state file. Payload pointers point into buf. */
struct snap_state {
	void *buf;
	size_t len;
	struct vmstate_reader r;
	struct snap_machine m;
};

/* ---- pure encode/decode (no KVM; fuzzed by fuzz/fuzz_snapshot.c) ---- */
int snap_encode_machine(struct vmstate_writer *w, const struct snap_machine *m, struct err *e);
int snap_decode_machine(const void *p, size_t len, uint16_t version, struct snap_machine *m,
			struct err *e);
int snap_encode_vcpu(struct vmstate_writer *w, int id, const struct vcpu_state *s,
		     struct err *e);
int snap_decode_vcpu(const void *p, size_t len, uint16_t version, struct vcpu_state *s,
		     struct err *e);
/* Parse and validate a whole state file held in buf (which s takes over on
 * success only if own_buf): container, known required sections, machine
 * section, one decodable cpu.N per vCPU, irqchip/pit/clock sizes. */
int snap_state_parse(const void *buf, size_t len, struct snap_state *s, struct err *e);
void snap_state_free(struct snap_state *s);

/* ---- with a VM ---- */

/* Read and validate DIR/state and check DIR/memory's size. Fills s. */
int snap_open(const char *dir, struct snap_state *s, struct err *e);
/* Config for rebuilding the VM from s (strings point into s). */
void snap_apply_config(const struct snap_state *s, struct vm_config *cfg);
/* Write a snapshot of a VM whose vCPUs are all stopped. */
int snap_save(struct vm *vm, const char *dir, struct err *e);
/* Load everything (RAM from dir/memory, vCPUs, irqchip, PIT, devices,
 * clock) into a VM freshly built from snap_apply_config, vCPUs not started. */
int snap_restore(struct vm *vm, const char *dir, const struct snap_state *s, struct err *e);
/* The state part alone (no RAM), for live migration (vmm/migration.c):
 * save = every section of the state file, with all vCPUs stopped and every
 * device lock held by the caller; restore = steps 2-7 of the restore order
 * (vCPUs, irqchip, PIT, devices, clock) into a VM whose RAM is in place. */
int snap_save_state(struct vm *vm, struct vmstate_writer *w, struct err *e);
int snap_restore_state(struct vm *vm, const struct snap_state *s, struct err *e);

#endif
