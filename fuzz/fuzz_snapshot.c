/* Fuzz the snapshot state-file decoder (vmm/snapshot_format.c): the whole
 * file through snap_state_parse (as is, and with the CRC fixed up so the
 * input reaches the section decoders), and the raw bytes straight into the
 * machine and vCPU section decoders. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "vmm/snapshot.h"

static void whole(const uint8_t *data, size_t len, int fix_crc)
{
	struct snap_state s;
	struct err e;
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return;
	memcpy(buf, data, len);
	if (fix_crc && len >= VMSTATE_HDR_SIZE + VMSTATE_TRAILER_SIZE)
		le_put32(buf + len - 4, crc32c(buf, len - 4));
	memset(&s, 0, sizeof(s));
	if (snap_state_parse(buf, len, &s, &e) == 0)
		snap_state_free(&s);	/* frees buf */
	else
		free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct vcpu_state vs;
	static struct snap_machine m;
	struct err e;

	whole(data, len, 0);
	whole(data, len, 1);
	(void)snap_decode_machine(data, len, SNAP_MACHINE_VERSION, &m, &e);
	(void)snap_decode_vcpu(data, len, SNAP_CPU_VERSION, &vs, &e);
	return 0;
}
