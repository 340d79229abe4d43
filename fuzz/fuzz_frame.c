/* Fuzz the frame receive path.
 * Mode 0 (first byte even): the rest is raw stream bytes for frame_recv.
 * Mode 1: the rest is a script of frames (u8 type, u8 len, payload) that a
 * real sender encodes, then the last 3 bytes give an (offset, xor) mutation
 * applied to the encoded stream. Unmutated frames must come back intact;
 * a mutated stream must fail at or before the mutated frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/frame.h"

static void keys(struct auth_session *a, struct auth_session *b)
{
	memset(a->send_key, 0x11, AUTH_KEY_LEN);
	memset(a->recv_key, 0x22, AUTH_KEY_LEN);
	memcpy(b->send_key, a->recv_key, AUTH_KEY_LEN);
	memcpy(b->recv_key, a->send_key, AUTH_KEY_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t raw[65536], buf[300];
	struct auth_session sa, sb;
	struct frame_conn a, b;
	struct err err;
	int tx[2], rx[2];
	size_t rawlen = 0, nframes = 0;
	uint16_t type;
	size_t len;

	if (size < 1 || size > 8192)
		return 0;
	keys(&sa, &sb);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, tx) || socketpair(AF_UNIX, SOCK_STREAM, 0, rx))
		abort();
	if (frame_conn_init(&a, tx[0], &sa, &err) || frame_conn_init(&b, rx[1], &sb, &err))
		abort();
	b.max_len = 256;

	if (!(data[0] & 1)) {
		memcpy(raw, data + 1, size - 1);
		rawlen = size - 1;
	} else {
		const uint8_t *p = data + 1, *end = data + size;
		size_t mut_off = 0;
		uint8_t mut_xor = 0;

		if (size >= 4) {
			end -= 3;
			mut_off = end[0] | end[1] << 8;
			mut_xor = end[2];
		}
		/* raw[] bound; 64K also fits the socket buffer, so the
		 * single write below cannot block */
		while (end - p >= 2 && (size_t)(end - p - 2) >= p[1] &&
		       rawlen + FRAME_HDR_SIZE + 255 + FRAME_TAG_SIZE <= sizeof(raw)) {
			uint8_t t = p[0] ? p[0] : 1, l = p[1];
			ssize_t r;

			if (frame_send(&a, t, p + 2, l, &err))
				abort();
			r = read(tx[1], raw + rawlen, FRAME_HDR_SIZE + l + FRAME_TAG_SIZE);
			if (r != FRAME_HDR_SIZE + l + FRAME_TAG_SIZE)
				abort();
			rawlen += r;
			p += 2 + l;
			nframes++;
		}
		if (rawlen && mut_xor)
			raw[mut_off % rawlen] ^= mut_xor;
		else
			mut_xor = 0;
		/* verify after injecting below */
		if (write(rx[0], raw, rawlen) != (ssize_t)rawlen)
			abort();
		shutdown(rx[0], SHUT_WR);
		p = data + 1;
		for (size_t i = 0; i < nframes; i++) {
			int r = frame_recv(&b, &type, buf, sizeof(buf), &len, &err);

			if (!mut_xor && (r || len != p[1] || memcmp(buf, p + 2, len) ||
					 type != (p[0] ? p[0] : 1)))
				abort();
			if (r)
				break;
			p += 2 + p[1];
		}
		/* after all frames, a clean EOF, unless the mutation let through
		 * nothing (must not happen: every byte is covered) */
		if (!mut_xor && (frame_recv(&b, &type, buf, sizeof(buf), &len, &err) != -1 || !b.eof))
			abort();
		if (mut_xor && b.recv_seq == nframes)
			abort();	/* a mutated stream was fully accepted */
		goto out;
	}
	if (write(rx[0], raw, rawlen) != (ssize_t)rawlen)
		abort();
	shutdown(rx[0], SHUT_WR);
	while (frame_recv(&b, &type, buf, sizeof(buf), &len, &err) == 0)
		;
out:
	frame_conn_close(&a);
	frame_conn_close(&b);
	close(tx[0]); close(tx[1]); close(rx[0]); close(rx[1]);
	return 0;
}
