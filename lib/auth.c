#include "lib/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "lib/fdio.h"

#define AUTH_HELLO_MAGIC "KVMAUTH2"
#define AUTH_HELLO_V1	"KVMAUTH1"	/* HMAC-SHA256 frame tags: refused */
#define AUTH_HELLO_LEN	(8 + AUTH_NONCE_LEN)
#define AUTH_FAIL_MSG	"auth: peer failed authentication (wrong cluster secret?)"

/* ---- secret ---- */

int auth_secret_set(struct auth_secret *s, const void *buf, size_t len, struct err *err)
{
	memset(s, 0, sizeof(*s));
	if (len == 0)
		return err_set(err, "auth: secret is empty");
	if (len > AUTH_SECRET_MAX)
		return err_set(err, "auth: secret longer than %d bytes", AUTH_SECRET_MAX);
	s->buf = malloc(len);
	if (!s->buf)
		return err_errno(err, ENOMEM, "auth: secret");
	memcpy(s->buf, buf, len);
	s->len = len;
	return 0;
}

void auth_secret_free(struct auth_secret *s)
{
	if (s->buf) {
		OPENSSL_cleanse(s->buf, s->len);
		free(s->buf);
	}
	memset(s, 0, sizeof(*s));
}

int auth_secret_load(const char *path, struct auth_secret *s, struct err *err)
{
	uint8_t buf[AUTH_SECRET_MAX + 1];
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd, ret = -1;

	memset(s, 0, sizeof(*s));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, errno, "auth: cannot read secret file %s", path);
	if (fstat(fd, &st) < 0) {
		err_errno(err, errno, "auth: secret file %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, "auth: secret file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		err_set(err, "auth: secret file %s is accessible by all users (mode %04o); chmod 600 it",
			path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	while (got < sizeof(buf)) {
		r = read(fd, buf + got, sizeof(buf) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_errno(err, errno, "auth: cannot read secret file %s", path);
			goto out;
		}
		if (r == 0)
			break;
		got += r;
	}
	if (got > AUTH_SECRET_MAX) {
		err_set(err, "auth: secret file %s is larger than %d bytes", path, AUTH_SECRET_MAX);
		goto out;
	}
	if (got && buf[got - 1] == '\n')
		got--;
	if (got && buf[got - 1] == '\r')
		got--;
	if (got == 0) {
		err_set(err, "auth: secret file %s is empty", path);
		goto out;
	}
	ret = auth_secret_set(s, buf, got, err);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return ret;
}

/* ---- HMAC ---- */

int auth_mac_init(struct auth_mac *m, const void *key, size_t keylen, struct err *err)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;

	m->ctx = NULL;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		return err_set(err, "auth: HMAC not available in libcrypto");
	ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);	/* ctx holds its own reference */
	if (!ctx)
		return err_set(err, "auth: EVP_MAC_CTX_new failed");
	if (!EVP_MAC_init(ctx, key, keylen, params)) {
		EVP_MAC_CTX_free(ctx);
		return err_set(err, "auth: HMAC key setup failed");
	}
	m->ctx = ctx;
	return 0;
}

int auth_mac_compute(struct auth_mac *m, const struct iovec *iov, int cnt,
		     uint8_t out[AUTH_MAC_LEN], struct err *err)
{
	size_t outl = 0;

	/* NULL key: HMAC re-initialises with the key set in auth_mac_init. */
	if (!EVP_MAC_init(m->ctx, NULL, 0, NULL))
		return err_set(err, "auth: HMAC init failed");
	for (int i = 0; i < cnt; i++)
		if (iov[i].iov_len && !EVP_MAC_update(m->ctx, iov[i].iov_base, iov[i].iov_len))
			return err_set(err, "auth: HMAC update failed");
	if (!EVP_MAC_final(m->ctx, out, &outl, AUTH_MAC_LEN) || outl != AUTH_MAC_LEN)
		return err_set(err, "auth: HMAC final failed");
	return 0;
}

void auth_mac_free(struct auth_mac *m)
{
	EVP_MAC_CTX_free(m->ctx);
	m->ctx = NULL;
}

/* ---- frame tags (ChaCha20-Poly1305, AAD only) ---- */

int auth_tagger_init(struct auth_tagger *t, const uint8_t key[AUTH_KEY_LEN], struct err *err)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	t->ctx = NULL;
	if (!ctx)
		return err_set(err, "auth: EVP_CIPHER_CTX_new failed");
	if (!EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL)) {
		EVP_CIPHER_CTX_free(ctx);
		return err_set(err, "auth: ChaCha20-Poly1305 not available in libcrypto");
	}
	t->ctx = ctx;
	return 0;
}

int auth_tagger_compute(struct auth_tagger *t, uint64_t nonce, const struct iovec *iov,
			int cnt, uint8_t out[AUTH_TAG_LEN], struct err *err)
{
	uint8_t iv[12] = { 0 }, none[16];
	int outl;

	for (int i = 0; i < 8; i++)
		iv[4 + i] = (uint8_t)(nonce >> (8 * i));
	/* Same key, new nonce: a fresh Poly1305 one-time key per frame. */
	if (!EVP_EncryptInit_ex(t->ctx, NULL, NULL, NULL, iv))
		return err_set(err, "auth: tag init failed");
	for (int i = 0; i < cnt; i++)
		if (iov[i].iov_len &&
		    !EVP_EncryptUpdate(t->ctx, NULL, &outl, iov[i].iov_base, (int)iov[i].iov_len))
			return err_set(err, "auth: tag update failed");
	if (!EVP_EncryptFinal_ex(t->ctx, none, &outl) ||
	    !EVP_CIPHER_CTX_ctrl(t->ctx, EVP_CTRL_AEAD_GET_TAG, AUTH_TAG_LEN, out))
		return err_set(err, "auth: tag final failed");
	return 0;
}

void auth_tagger_free(struct auth_tagger *t)
{
	EVP_CIPHER_CTX_free(t->ctx);
	t->ctx = NULL;
}

int auth_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* One-shot HMAC(secret, label | a | b). */
static int auth__hmac3(const struct auth_secret *s, const void *label, size_t llen,
		       const uint8_t *a, const uint8_t *b, uint8_t out[AUTH_MAC_LEN],
		       struct err *err)
{
	struct auth_mac m;
	struct iovec iov[3] = {
		{ (void *)label, llen },
		{ (void *)a, AUTH_NONCE_LEN },
		{ (void *)b, AUTH_NONCE_LEN },
	};
	int ret;

	if (auth_mac_init(&m, s->buf, s->len, err) < 0)
		return -1;
	ret = auth_mac_compute(&m, iov, 3, out, err);
	auth_mac_free(&m);
	return ret;
}

int auth_init(struct err *err)
{
	uint8_t key[AUTH_KEY_LEN] = { 0 }, tag[AUTH_MAC_LEN], b;
	struct auth_tagger t;
	struct auth_mac m;
	struct iovec iov = { key, sizeof(key) };
	int r;

	if (!OPENSSL_init_crypto(0, NULL))
		return err_set(err, "auth: libcrypto initialisation failed");
	if (RAND_bytes(&b, 1) != 1)
		return err_set(err, "auth: RAND_bytes failed");
	if (auth_mac_init(&m, key, sizeof(key), err) < 0)
		return -1;
	r = auth_mac_compute(&m, &iov, 1, tag, err);
	auth_mac_free(&m);
	if (r < 0 || auth_tagger_init(&t, key, err) < 0)
		return -1;
	r = auth_tagger_compute(&t, 0, &iov, 1, tag, err);
	auth_tagger_free(&t);
	return r;
}

/* ---- handshake ---- */

static int auth__read(int fd, void *buf, size_t n, int timeout_ms, const char *what,
		      struct err *err)
{
	size_t got;
	int r = fdio_read_full(fd, buf, n, timeout_ms, &got, err);

	if (r == 0)
		return 0;
	if (r == -2)
		return err_set(err, "auth: peer closed connection during handshake (got %zu of %zu %s bytes)",
			       got, n, what);
	return err_prefix(err, "auth: reading %s", what);
}

int auth_handshake(int fd, const struct auth_secret *s, enum auth_role role,
		   int timeout_ms, struct auth_session *sess, struct err *err)
{
	uint8_t hello[AUTH_HELLO_LEN], peer[AUTH_HELLO_LEN];
	uint8_t *own_nonce = hello + 8, *peer_nonce = peer + 8;
	uint8_t proof[AUTH_MAC_LEN], peer_proof[AUTH_MAC_LEN], want[AUTH_MAC_LEN];
	uint8_t lbl_own[5] = "auth", lbl_peer[5] = "auth";
	const uint8_t *cn, *sn;
	int ret = -1;

	memset(sess, 0, sizeof(*sess));
	if (role != AUTH_CLIENT && role != AUTH_SERVER)
		return err_set(err, "auth: bad role %d", role);
	if (!s->buf || !s->len)
		return err_set(err, "auth: no secret");
	memcpy(hello, AUTH_HELLO_MAGIC, 8);
	if (RAND_bytes(own_nonce, AUTH_NONCE_LEN) != 1)
		return err_set(err, "auth: RAND_bytes failed");
	if (fdio_write_full(fd, hello, sizeof(hello), err) < 0)
		return err_prefix(err, "auth: sending hello");
	if (auth__read(fd, peer, sizeof(peer), timeout_ms, "hello", err) < 0)
		return -1;
	if (!memcmp(peer, AUTH_HELLO_V1, 8))
		return err_set(err, "auth: peer speaks auth version 1 (HMAC-SHA256 frame tags), "
			       "this side version 2 (ChaCha20-Poly1305): upgrade the peer");
	if (memcmp(peer, AUTH_HELLO_MAGIC, 8))
		return err_set(err, "auth: peer is not speaking the auth protocol (bad hello)");
	if (!memcmp(peer_nonce, own_nonce, AUTH_NONCE_LEN))
		return err_set(err, "auth: peer echoed our nonce (reflection?)");

	/* Role byte in the label separates client and server proofs. */
	lbl_own[4] = role;
	lbl_peer[4] = role == AUTH_CLIENT ? AUTH_SERVER : AUTH_CLIENT;
	if (auth__hmac3(s, lbl_own, 5, own_nonce, peer_nonce, proof, err) < 0 ||
	    auth__hmac3(s, lbl_peer, 5, peer_nonce, own_nonce, want, err) < 0)
		goto out;
	if (fdio_write_full(fd, proof, sizeof(proof), err) < 0) {
		err_prefix(err, "auth: sending proof");
		goto out;
	}
	if (auth__read(fd, peer_proof, sizeof(peer_proof), timeout_ms, "proof", err) < 0)
		goto out;
	if (!auth_equal(peer_proof, want, AUTH_MAC_LEN)) {
		err_set(err, AUTH_FAIL_MSG);
		goto out;
	}

	cn = role == AUTH_CLIENT ? own_nonce : peer_nonce;
	sn = role == AUTH_CLIENT ? peer_nonce : own_nonce;
	if (auth__hmac3(s, "c2s", 3, cn, sn,
			role == AUTH_CLIENT ? sess->send_key : sess->recv_key, err) < 0 ||
	    auth__hmac3(s, "s2c", 3, cn, sn,
			role == AUTH_CLIENT ? sess->recv_key : sess->send_key, err) < 0) {
		auth_session_wipe(sess);
		goto out;
	}
	ret = 0;
out:
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(proof, sizeof(proof));
	return ret;
}

void auth_session_wipe(struct auth_session *sess)
{
	OPENSSL_cleanse(sess, sizeof(*sess));
}
