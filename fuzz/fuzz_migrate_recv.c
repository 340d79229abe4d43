/* Fuzz the migration receiver state machine (migrate/rx.c) with a
 * post-authentication frame stream, as mig_recv would feed it.
 *
 * Input: u8 flags | frames, each u8 type | u16 len (LE) | payload (clamped
 * to what is left). flags bit 0: feed a valid HELLO first (to get past
 * WAIT_HELLO); bit 1: patch every 24-byte COMMIT with the true state length
 * and CRC (to reach load_state, LOADED and GO).
 * Invariants: RAM writes stay inside the two regions (guard bytes around
 * them must survive), a failure is sticky, the state only moves forward. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "migrate/recv.h"

#define RPAGES	8
#define GUARD	4096

static uint8_t arena[GUARD + 2 * RPAGES * 4096 + GUARD];

static int f_regions(void *vm, struct mig_ram *r, int *n, struct err *e)
{
	(void)vm; (void)e;
	r[0] = (struct mig_ram){ .host = arena + GUARD, .gpa = 0, .size = RPAGES * 4096,
				 .memfd = -1 };
	r[1] = (struct mig_ram){ .host = arena + GUARD + RPAGES * 4096, .gpa = 1ull << 32,
				 .size = RPAGES * 4096, .memfd = -1 };
	*n = 2;
	return 0;
}

static int f_load(void *vm, const uint8_t *buf, size_t len, struct err *e)
{
	struct vmstate_reader r;

	(void)vm;
	if (len == 1 && buf[0] == '!')
		return 0;	/* shortcut so the fuzzer reaches LOADED and GO */
	if (vmstate_parse(buf, len, &r, e) < 0)
		return -1;
	vmstate_reader_free(&r);
	return 0;
}

static int f_check(void *vm, const uint8_t *buf, size_t len, struct err *e)
{
	(void)vm;
	if (len && buf[0] == 'X')
		return err_set(e, "incompatible");
	return 0;
}

static const struct mig_vm_ops ops = {
	.ram_regions = f_regions,
	.load_state = f_load,
	.compat_check = f_check,
};

static void valid_hello(struct mig_rx *rx, struct err *e)
{
	uint8_t b[MIG_RX_REPLY_MAX], reply[MIG_RX_REPLY_MAX];
	uint16_t rt;
	size_t rl;
	int n = mig_hello_encode(&rx->mine, b, sizeof(b), e);

	if (n < 0 || mig_rx_frame(rx, MIG_F_HELLO, b, n, &rt, reply, &rl, e) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t payload[65536 + 64];
	uint8_t reply[MIG_RX_REPLY_MAX];
	struct mig_rx rx;
	struct err e;
	size_t pos = 1;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	memset(arena, 0xA5, sizeof(arena));
	if (mig_rx_init(&rx, NULL, &ops, NULL, &e) < 0)
		abort();
	if (flags & 1)
		valid_hello(&rx, &e);
	while (size - pos >= 3) {
		uint16_t type = data[pos], rt;
		size_t len = le_get16(data + pos + 1), rl;
		enum mig_rx_state was = rx.state;
		int r;

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		memcpy(payload, data + pos, len);
		pos += len;
		if ((flags & 2) && type == MIG_F_COMMIT && len == 24 && rx.sbuf) {
			le_put64(payload, rx.state_len);
			le_put32(payload + 8, crc32c(rx.sbuf, rx.state_got));
		}
		r = mig_rx_frame(&rx, type, payload, len, &rt, reply, &rl, &e);
		if (r < 0 && (rx.state != MIG_RX_FAILED || rt != 0))
			abort();
		if (r == 0 && (rx.state < was || rl > MIG_RX_REPLY_MAX))
			abort();
		if (was == MIG_RX_FAILED && r == 0)
			abort();
		if (rx.state == MIG_RX_RUNNING && was != MIG_RX_LOADED && was != MIG_RX_RUNNING)
			abort();
		if (getenv("FUZZ_MIG_TRACE") && r == 0 && rx.state != was)
			fprintf(stderr, "state %s\n", mig_rx_state_name(rx.state));
	}
	for (size_t i = 0; i < GUARD; i++)
		if (arena[i] != 0xA5 || arena[sizeof(arena) - 1 - i] != 0xA5)
			abort();
	mig_rx_fini(&rx);
	return 0;
}
