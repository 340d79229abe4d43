/* Peer authentication with a shared cluster secret (HMAC-SHA256).
 *
 * Handshake over a connected stream fd, both sides at once:
 *   1. each sends  "KVMAUTH1" | nonce(32)                  (fresh RAND_bytes)
 *   2. each sends  HMAC(secret, "auth" | role | own_nonce | peer_nonce)
 *   3. each checks the peer's proof (computed with the peer's role) in
 *      constant time.
 * Roles (client/server) must differ, which stops a peer reflecting our own
 * proof back; a peer echoing our nonce is refused. The session then uses one
 * key per direction:
 *   key_c2s = HMAC(secret, "c2s" | client_nonce | server_nonce), key_s2c alike.
 */
#ifndef LIB_AUTH_H
#define LIB_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/err.h"

#define AUTH_NONCE_LEN	32
#define AUTH_KEY_LEN	32
#define AUTH_MAC_LEN	32
#define AUTH_SECRET_MAX	4096

enum auth_role {
	AUTH_CLIENT = 'C',	/* the side that connected */
	AUTH_SERVER = 'S',	/* the side that accepted */
};

struct auth_secret {
	uint8_t *buf;
	size_t len;
};

/* Read the secret from path. Refuses unreadable, non-regular, empty or
 * world-readable/writable files. One trailing newline (or CRLF) is stripped
 * so `echo s > f` and `printf s > f` give the same secret. */
int auth_secret_load(const char *path, struct auth_secret *s, struct err *err);
/* From memory (tests, or secrets from elsewhere). */
int auth_secret_set(struct auth_secret *s, const void *buf, size_t len, struct err *err);
/* Wipes and frees. */
void auth_secret_free(struct auth_secret *s);

struct auth_session {
	uint8_t send_key[AUTH_KEY_LEN];
	uint8_t recv_key[AUTH_KEY_LEN];
};

/* Run the handshake. timeout_ms (< 0 = forever) bounds each wait for the
 * peer. On success fills *sess; wipe it with auth_session_wipe when done. */
int auth_handshake(int fd, const struct auth_secret *s, enum auth_role role,
		   int timeout_ms, struct auth_session *sess, struct err *err);
void auth_session_wipe(struct auth_session *sess);

/* Reusable HMAC-SHA256 context: the key is set once, each auth_mac_compute
 * re-initialises with it (no per-call key schedule or allocation). */
struct auth_mac {
	void *ctx;	/* EVP_MAC_CTX */
};

int auth_mac_init(struct auth_mac *m, const void *key, size_t keylen, struct err *err);
int auth_mac_compute(struct auth_mac *m, const struct iovec *iov, int cnt,
		     uint8_t out[AUTH_MAC_LEN], struct err *err);
void auth_mac_free(struct auth_mac *m);

/* Constant-time equality (CRYPTO_memcmp); 1 if equal. */
int auth_equal(const void *a, const void *b, size_t len);

#endif
