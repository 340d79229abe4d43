/* Builds a 12-byte virtio_net_hdr_mrg_rxbuf as a guest's driver would, for
 * the virtio-net unit tests. Header-only. num_buffers is set to garbage:
 * on TX the device must ignore what the sender put there. */
#ifndef TEST_VNET_HDR_H
#define TEST_VNET_HDR_H

#include <stdint.h>

#include "lib/le.h"

static inline void vnet_hdr_put(uint8_t *h, uint8_t flags, uint8_t gso, uint16_t hdr_len,
				uint16_t gso_size, uint16_t cstart, uint16_t coff)
{
	h[0] = flags;
	h[1] = gso;
	le_put16(h + 2, hdr_len);
	le_put16(h + 4, gso_size);
	le_put16(h + 6, cstart);
	le_put16(h + 8, coff);
	le_put16(h + 10, 0xbeef);	/* num_buffers */
}

#endif
