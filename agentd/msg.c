/* Agent message helpers: request decode/check, vmm control calls, peer
 * link client. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agentd/agent.h"
#include "lib/frame.h"
#include "proto/api.h"
#include "proto/frame.h"

Agent__Request *agent_request_decode(const uint8_t *buf, size_t len, struct err *err)
{
	Agent__Request *r = agent__request__unpack(NULL, len, buf);

	if (!r)
		err_set(err, "malformed request: protobuf-c unpack failed (%zu bytes)", len);
	return r;
}

const char *agent_cmd_name(Agent__Request__CmdCase c)
{
	switch (c) {
	case AGENT__REQUEST__CMD__NOT_SET:		return "none";
	case AGENT__REQUEST__CMD_RUN:			return "run";
	case AGENT__REQUEST__CMD_LIST:			return "list";
	case AGENT__REQUEST__CMD_SHOW:			return "show";
	case AGENT__REQUEST__CMD_STOP:			return "stop";
	case AGENT__REQUEST__CMD_PAUSE:			return "pause";
	case AGENT__REQUEST__CMD_RESUME:		return "resume";
	case AGENT__REQUEST__CMD_LOG:			return "log";
	case AGENT__REQUEST__CMD_MIGRATE:		return "migrate";
	case AGENT__REQUEST__CMD_MIGRATE_CANCEL:	return "migrate-cancel";
	case AGENT__REQUEST__CMD_EVACUATE:		return "evacuate";
	case AGENT__REQUEST__CMD_VERSION:		return "version";
	case AGENT__REQUEST__CMD_CONSOLE:		return "console";
	case AGENT__REQUEST__CMD_PREPARE_INCOMING:	return "prepare-incoming";
	case AGENT__REQUEST__CMD_COMMIT:		return "commit";
	case AGENT__REQUEST__CMD_WHO_RUNS:		return "who-runs";
	case AGENT__REQUEST__CMD_ABORT_INCOMING:	return "abort-incoming";
	default:					return "unknown";
	}
}

const char *agent_error_code_name(Agent__ErrorCode c)
{
	static const char *const n[] = { "none", "failed", "unsupported", "bad_version",
		"malformed", "invalid_argument", "not_found", "exists", "no_space", "busy",
		"unauthenticated", "peer" };
	return (unsigned)c < sizeof(n) / sizeof(n[0]) ? n[c] : "unknown";
}

static int need_name(const char *name, struct err *err)
{
	if (!name || !name[0])
		return err_set(err, "missing VM name");
	return agent_name_valid(name, err);
}

int agent_request_check(const Agent__Request *req, int peer, Agent__ErrorCode *code,
			struct err *err)
{
	*code = AGENT__ERROR_CODE__ERROR_INVALID_ARGUMENT;
	if (req->cmd_case == AGENT__REQUEST__CMD_VERSION)
		return 0;
	if (req->api_version < AGENT_API_VERSION_MIN || req->api_version > AGENT_API_VERSION) {
		*code = AGENT__ERROR_CODE__ERROR_BAD_VERSION;
		return err_set(err, "api_version %u not supported (server speaks %u..%u)",
			       req->api_version, AGENT_API_VERSION_MIN, AGENT_API_VERSION);
	}
	int is_peer_cmd = req->cmd_case >= AGENT__REQUEST__CMD_PREPARE_INCOMING &&
			  req->cmd_case <= AGENT__REQUEST__CMD_ABORT_INCOMING;
	if (req->cmd_case != AGENT__REQUEST__CMD__NOT_SET && peer && !is_peer_cmd &&
	    req->cmd_case <= AGENT__REQUEST__CMD_ABORT_INCOMING) {
		*code = AGENT__ERROR_CODE__ERROR_UNSUPPORTED;
		return err_set(err, "%s is not a peer command", agent_cmd_name(req->cmd_case));
	}
	if (!peer && is_peer_cmd) {
		*code = AGENT__ERROR_CODE__ERROR_UNSUPPORTED;
		return err_set(err, "%s is only accepted from authenticated peers",
			       agent_cmd_name(req->cmd_case));
	}
	switch (req->cmd_case) {
	case AGENT__REQUEST__CMD_RUN:
		if (!req->run->def)
			return err_set(err, "run: missing VM definition");
		return need_name(req->run->def->name, err);
	case AGENT__REQUEST__CMD_LIST:
		break;
	case AGENT__REQUEST__CMD_SHOW:	return need_name(req->show->name, err);
	case AGENT__REQUEST__CMD_STOP:	return need_name(req->stop->name, err);
	case AGENT__REQUEST__CMD_PAUSE:	return need_name(req->pause->name, err);
	case AGENT__REQUEST__CMD_RESUME: return need_name(req->resume->name, err);
	case AGENT__REQUEST__CMD_LOG:	return need_name(req->log->name, err);
	case AGENT__REQUEST__CMD_CONSOLE:
		if (req->console->input.len > 65536)
			return err_set(err, "console: at most 64 KiB of input per request");
		return need_name(req->console->name, err);
	case AGENT__REQUEST__CMD_MIGRATE:
		if (need_name(req->migrate->name, err) < 0)
			return -1;
		if (!req->migrate->to || !req->migrate->to[0])
			return err_set(err, "migrate: missing destination (--to HOST[:PORT])");
		break;
	case AGENT__REQUEST__CMD_MIGRATE_CANCEL:
		return need_name(req->migrate_cancel->name, err);
	case AGENT__REQUEST__CMD_EVACUATE:
		if (req->evacuate->n_targets == 0)
			return err_set(err, "evacuate: no targets (--to HOST[,HOST...])");
		break;
	case AGENT__REQUEST__CMD_PREPARE_INCOMING:
		if (!req->prepare_incoming->def)
			return err_set(err, "prepare-incoming: missing VM definition");
		if (need_name(req->prepare_incoming->def->name, err) < 0)
			return -1;
		break;
	case AGENT__REQUEST__CMD_COMMIT:	if (need_name(req->commit->name, err) < 0) return -1; break;
	case AGENT__REQUEST__CMD_WHO_RUNS:	if (need_name(req->who_runs->name, err) < 0) return -1; break;
	case AGENT__REQUEST__CMD_ABORT_INCOMING: if (need_name(req->abort_incoming->name, err) < 0) return -1; break;
	case AGENT__REQUEST__CMD__NOT_SET:
		return err_set(err, "request without a command");
	default:
		*code = AGENT__ERROR_CODE__ERROR_UNSUPPORTED;
		return err_set(err, "unknown command %d", (int)req->cmd_case);
	}
	return 0;
}

static void set_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int vmm_call(const char *sock, Vmm__Request *req, int timeout_ms, Vmm__Response **resp,
	     struct err *err)
{
	static uint64_t next_id = 1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return err_set(err, "control socket path too long: %s", sock);
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(err, errno, "socket");
	/* Before connect: SO_SNDTIMEO also bounds a Unix connect, which
	 * blocks while the listener's backlog is full (a wedged vmm that
	 * accepts nothing, after enough earlier calls timed out). */
	set_timeouts(fd, timeout_ms);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return err_errno(err, e == EAGAIN ? ETIMEDOUT : e, "connect %s", sock);
	}
	if (!req->api_version)
		req->api_version = VMM_API_VERSION;
	if (!req->id)
		req->id = next_id++;
	rc = pmsg_send(fd, &req->base, err);
	if (rc == 0)
		rc = pmsg_recv_response(fd, resp, err);
	close(fd);
	if (rc < 0)
		return err_prefix(err, "vmm control %s", sock);
	if ((*resp)->id != req->id) {
		vmm__response__free_unpacked(*resp, NULL);
		*resp = NULL;
		return err_set(err, "vmm control %s: response id mismatch", sock);
	}
	return 0;
}

int vmm_call_ok(const char *sock, Vmm__Request *req, int timeout_ms, Vmm__Response **resp,
		struct err *err)
{
	Vmm__Response *r = NULL;

	if (vmm_call(sock, req, timeout_ms, &r, err) < 0)
		return -1;
	if (!r->ok) {
		err_set(err, "%s", r->error && r->error[0] ? r->error : vmm_error_code_name(r->code));
		vmm__response__free_unpacked(r, NULL);
		return -1;
	}
	if (resp)
		*resp = r;
	else
		vmm__response__free_unpacked(r, NULL);
	return 0;
}

int agent_split_hostport(const char *s, char *host, size_t hostlen, int *port, struct err *err)
{
	const char *colon;
	size_t hl;

	*port = AGENT_DEFAULT_PORT;
	if (!s || !*s)
		return err_set(err, "empty host");
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb)
			return err_set(err, "bad address '%s'", s);
		hl = (size_t)(rb - s - 1);
		if (hl >= hostlen)
			return err_set(err, "host too long in '%s'", s);
		memcpy(host, s + 1, hl);
		host[hl] = 0;
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb[1])
			return err_set(err, "bad address '%s'", s);
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			return err_set(err, "bad address '%s' (IPv6 needs [ADDR]:PORT)", s);
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl == 0 || hl >= hostlen)
			return err_set(err, "bad host in '%s'", s);
		memcpy(host, s, hl);
		host[hl] = 0;
	}
	if (colon) {
		char *e;
		long p = strtol(colon + 1, &e, 10);
		if (!colon[1] || *e || p < 1 || p > 65535)
			return err_set(err, "bad port in '%s' (1..65535)", s);
		*port = (int)p;
	}
	return 0;
}

/* getaddrinfo bounded in time: a numeric address never asks a resolver; a
 * name is resolved with getaddrinfo_a and abandoned after timeout_ms
 * (EAI_AGAIN), so a dead DNS server cannot stall agentd's event loop. The
 * request lives on the heap: one that cannot be cancelled still writes
 * into it later, so it is then deliberately leaked (a few hundred bytes
 * per abandoned lookup). */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char host[256], port[16];
};

static int resolve_bounded(const char *host, const char *port, const struct addrinfo *hints,
			   int timeout_ms, struct addrinfo **res)
{
	struct addrinfo h = *hints;
	h.ai_flags |= AI_NUMERICHOST;
	if (getaddrinfo(host, port, &h, res) == 0)
		return 0;
	struct lookup *l = calloc(1, sizeof(*l));
	if (!l)
		return EAI_MEMORY;
	snprintf(l->host, sizeof(l->host), "%s", host);
	snprintf(l->port, sizeof(l->port), "%s", port);
	l->hints = *hints;
	l->cb.ar_name = l->host;
	l->cb.ar_service = l->port;
	l->cb.ar_request = &l->hints;
	struct gaicb *list[1] = { &l->cb };
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000 };
	int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc) {
		free(l);
		return rc;
	}
	do
		rc = gai_suspend((const struct gaicb *const *)list, 1, &ts);
	while (rc == EAI_INTR);
	if (rc == EAI_AGAIN) {
		if (gai_cancel(&l->cb) == EAI_CANCELED)
			free(l);
		return EAI_AGAIN;
	}
	rc = gai_error(&l->cb);
	if (rc == 0)
		*res = l->cb.ar_result;
	free(l);
	return rc;
}

int tcp_connect(const char *host, int port, int timeout_ms, struct err *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char ps[16];
	int fd = -1, rc, e = 0;

	snprintf(ps, sizeof(ps), "%d", port);
	rc = resolve_bounded(host, ps, &hints, timeout_ms, &res);
	if (rc)
		return err_set(err, "resolve %s: %s", host, rc == EAI_AGAIN ?
			       "no answer from the resolver in time" : gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			e = errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd p = { fd, POLLOUT, 0 };
		rc = poll(&p, 1, timeout_ms);
		socklen_t sl = sizeof(e);
		if (rc <= 0) {
			e = rc == 0 ? ETIMEDOUT : errno;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == 0 && e == 0) {
			int fl = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &fl, sizeof(fl));
			/* back to blocking */
			int flags = fcntl(fd, F_GETFL);
			fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_errno(err, e ? e : ECONNREFUSED, "connect %s:%d", host, port);
	return fd;
}

int peer_call(const char *hostport, const struct auth_secret *secret, Agent__Request *req,
	      Agent__Response **resp, struct err *err)
{
	static uint64_t next_id = 1;
	struct frame_conn c;
	char host[256];
	int port, fd;
	uint8_t *buf = NULL;
	size_t len, cap = PMSG_MAX_SIZE;
	uint16_t type;

	if (!secret || !secret->buf)
		return err_set(err, "peer %s: no cluster secret configured (--secret-file)", hostport);
	if (agent_split_hostport(hostport, host, sizeof(host), &port, err) < 0)
		return -1;
	fd = tcp_connect(host, port, AGENT_PEER_TIMEOUT_MS, err);
	if (fd < 0)
		return err_prefix(err, "peer %s", hostport);
	if (frame_conn_open(&c, fd, secret, AUTH_CLIENT, AGENT_PEER_TIMEOUT_MS, err) < 0) {
		close(fd);
		return err_prefix(err, "peer %s: authentication", hostport);
	}
	if (!req->api_version)
		req->api_version = AGENT_API_VERSION;
	if (!req->id)
		req->id = next_id++;
	len = agent__request__get_packed_size(req);
	buf = malloc(len > cap ? len : cap);
	if (!buf) {
		frame_conn_close(&c);
		close(fd);
		return err_set(err, "out of memory");
	}
	agent__request__pack(req, buf);
	if (frame_send(&c, AGENT_FRAME_REQUEST, buf, (uint32_t)len, err) < 0 ||
	    frame_recv(&c, &type, buf, cap, &len, err) < 0) {
		free(buf);
		frame_conn_close(&c);
		close(fd);
		return err_prefix(err, "peer %s", hostport);
	}
	frame_conn_close(&c);
	close(fd);
	if (type != AGENT_FRAME_RESPONSE) {
		free(buf);
		return err_set(err, "peer %s: unexpected frame type %u", hostport, type);
	}
	*resp = agent__response__unpack(NULL, len, buf);
	free(buf);
	if (!*resp)
		return err_set(err, "peer %s: malformed response", hostport);
	return 0;
}
