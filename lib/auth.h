/* Peer authentication with a shared cluster secret (HMAC-SHA256).
 *
 * Handshake over a connected stream fd, both sides at once:
 *   1. each sends  "KVMAUTH2" | nonce(32)                  (fresh RAND_bytes)
 *   2. each sends  HMAC(secret, "auth" | role | own_nonce | peer_nonce)
 *   3. each checks the peer's proof (computed with the peer's role) in
 *      constant time.
 * Roles (client/server) must differ, which stops a peer reflecting our own
 * proof back; a peer echoing our nonce is refused. The session then uses one
 * key per direction:
 *   key_c2s = HMAC(secret, "c2s" | client_nonce | server_nonce), key_s2c alike.
 * Version 2 ("KVMAUTH2") keys the frame tags below (ChaCha20-Poly1305);
 * version 1 peers (HMAC-SHA256 frame tags) are refused by name.
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

/* Load and seed libcrypto now (providers, DRBG, the HMAC and
 * ChaCha20-Poly1305 implementations): done lazily on the first handshake
 * it costs seconds under an emulated CPU, inside a migration's setup. */
int auth_init(struct err *err);

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

/* Frame tags, keyed per session and direction: the 16-byte Poly1305 tag of
 * ChaCha20-Poly1305 (RFC 8439) over an empty plaintext with the frame as
 * the associated data and nonce = 4 zero bytes | le64 seq. Much cheaper per
 * byte than HMAC-SHA256 on CPUs without SHA extensions (Poly1305 is a few
 * multiply-adds per 16 bytes), and as strong an integrity check: a forgery
 * or a tag moved to another seq fails. SAFETY: a (key, nonce) pair must
 * never tag two different frames (it would reveal the one-time Poly1305
 * key); keys are fresh per session and direction and seq only counts up. */
#define AUTH_TAG_LEN	16

struct auth_tagger {
	void *ctx;	/* EVP_CIPHER_CTX, key set once */
};

int auth_tagger_init(struct auth_tagger *t, const uint8_t key[AUTH_KEY_LEN], struct err *err);
int auth_tagger_compute(struct auth_tagger *t, uint64_t nonce, const struct iovec *iov,
			int cnt, uint8_t out[AUTH_TAG_LEN], struct err *err);
void auth_tagger_free(struct auth_tagger *t);

/* Constant-time equality (CRYPTO_memcmp); 1 if equal. */
int auth_equal(const void *a, const void *b, size_t len);

#endif
