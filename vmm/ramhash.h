/* Debug/test aid (vmm run --debug-ram-hash): log a hash of all guest RAM at
 * the two moments a live migration must agree on - the source right after
 * its final dirty sync (paused, saving state) and the destination just
 * before it resumes the guest. tests/vmm_hosts.sh ram_hashes compares them.
 * Off by default: hashing costs a pass over RAM inside the downtime.
 * With a directory (--debug-ram-hash=DIR), each log also writes
 * DIR/ram.WHEN.PID: one 64-bit hash per 4 KiB page (memfd order), so a test
 * can name the pages that differ. */
#ifndef VMM_RAMHASH_H
#define VMM_RAMHASH_H

#include <stdint.h>

struct vm;

void ramhash_enable(const char *dir);	/* dir may be NULL */
/* If enabled: one stderr line "vmm: NAME: ram hash WHEN: HEX (N bytes)". */
void ramhash_log(struct vm *vm, const char *when);
/* Pure: 64-bit hash of len bytes (len a multiple of 8). */
uint64_t ramhash_compute(const uint8_t *p, uint64_t len);

#endif
