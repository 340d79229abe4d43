/* Migration compatibility check, done at HELLO before any page moves
 * (migrate/vmif.h compat_info / compat_check).
 *
 * The blob is text, one "key=value" line each: format version, vCPU count,
 * RAM size, the device list in realize order (names), each disk's size and
 * mode, each NIC's MAC, the CPU vendor and the guest-visible CPUID feature
 * words. The destination refuses a source whose vCPU count, RAM size,
 * devices, disks, MACs or vendor differ, or whose guest saw a CPUID feature
 * bit this host cannot offer (a subset is fine), with one line naming the
 * first difference and the option to fix. */
#ifndef VMM_MIG_COMPAT_H
#define VMM_MIG_COMPAT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct vm;

/* Source: write the blob for vm (void * for struct mig_vm_ops). */
int mig_compat_info(void *vm, uint8_t *buf, size_t cap, size_t *len, struct err *e);
/* Destination: 0 if a guest described by the source's blob can run here. */
int mig_compat_check(void *vm, const uint8_t *buf, size_t len, struct err *e);

#endif
