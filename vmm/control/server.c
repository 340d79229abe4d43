/* Control socket server: socket setup, the poll() thread, per-client
 * incremental decoding. Request semantics live in dispatch.c. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/frame.h"
#include "vmm/control/server.h"

struct client {
	int fd;				/* -1: free slot */
	struct pmsg_reader rd;
};

struct control_server {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	int wake[2];			/* pipe: stop() writes, the thread polls */
	dev_t dev;			/* identity of the socket file we created, */
	ino_t ino;			/* so stop() never unlinks a successor's */
	pthread_t thread;
	const struct control_ops *ops;
	void *opaque;
	struct client clients[CONTROL_MAX_CLIENTS];
	uint8_t rbuf[65536];		/* read buffer, used only by the thread */
};

static int sun_for(const char *path, struct sockaddr_un *sa, struct err *err)
{
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0)
		return err_set(err, "empty socket path");
	if (n >= sizeof(sa->sun_path))
		return err_set(err, "socket path %s too long (%zu bytes, max %zu)", path, n,
			       sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, n);
	return 0;
}

/* An existing file is in the way of bind(). Returns 0 if it was a stale
 * socket that we removed (retry bind), -1 with err if it must stay. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, struct err *err)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_errno(err, errno, "stat %s", path);
	if (!S_ISSOCK(st.st_mode))
		return err_set(err, "%s exists and is not a socket; refusing to replace it", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(err, errno, "socket");
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (rc == 0) {
		close(fd);
		return err_set(err, "%s is in use by another process (is another vmm running "
			       "with this control socket?)", path);
	}
	rc = errno;
	close(fd);
	/* ECONNREFUSED: a socket file nobody listens on, left by a dead
	 * process. ENOENT: it vanished meanwhile. Anything else (EACCES,
	 * EAGAIN = listening but backlog full) leaves it alone. */
	if (rc == ENOENT)
		return 0;
	if (rc != ECONNREFUSED)
		return err_errno(err, rc, "%s exists and probing it failed", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return err_errno(err, errno, "remove stale socket %s", path);
	return 0;
}

static int listen_on(struct control_server *s, const char *path, struct err *err)
{
	struct sockaddr_un sa;
	struct stat st;
	int attempt;

	if (sun_for(path, &sa, err) < 0)
		return -1;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return err_errno(err, errno, "socket");
	for (attempt = 0;; attempt++) {
		if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno != EADDRINUSE || attempt == 2)
			return err_errno(err, errno, "bind %s", path);
		if (clear_stale(path, &sa, err) < 0)
			return -1;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	/* chmod before listen: until listen, connects are refused, so no
	 * client ever reaches the socket while it has the umask's mode. */
	if (chmod(path, 0600) < 0 || stat(path, &st) < 0) {
		err_errno(err, errno, "chmod %s", path);
		goto fail_unlink;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if (listen(s->lfd, CONTROL_MAX_CLIENTS) < 0) {
		err_errno(err, errno, "listen %s", path);
		goto fail_unlink;
	}
	return 0;
fail_unlink:
	unlink(path);
	s->path[0] = '\0';
	return -1;
}

static void client_close(struct client *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	pmsg_reader_free(&c->rd);
}

static void client_add(struct control_server *s)
{
	struct timeval tv = { .tv_sec = CONTROL_SEND_TIMEOUT_MS / 1000,
			      .tv_usec = (CONTROL_SEND_TIMEOUT_MS % 1000) * 1000 };
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		/* Out of fds: the listen socket stays readable, so back off
		 * instead of spinning; other errors are transient. */
		if (errno == EMFILE || errno == ENFILE)
			usleep(100 * 1000);
		return;
	}
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (s->clients[i].fd < 0) {
			/* Replies are written blocking; the timeout bounds how
			 * long a client that stops reading can stall the thread. */
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			s->clients[i].fd = fd;
			pmsg_reader_init(&s->clients[i].rd, PMSG_MAX_SIZE);
			return;
		}
	}
	close(fd);	/* unreachable: we only poll lfd when a slot is free */
}

/* Send reply; returns -1 if the client must be dropped. */
static int send_reply(struct client *c, struct control_reply *r)
{
	struct err err;

	return pmsg_send(c->fd, &r->resp.base, &err);
}

/* Unreadable input: tell the peer why, then hang up (the stream position is
 * lost, so nothing after it can be trusted). */
static void client_reject(struct client *c, const char *why)
{
	struct control_reply *r = malloc(sizeof(*r));
	char msg[sizeof(r->err.msg)];

	if (r) {
		snprintf(msg, sizeof(msg), "read request: %s", why);
		control_reply_error(r, 0, VMM__ERROR_CODE__ERROR_MALFORMED, msg);
		send_reply(c, r);
		free(r);
	}
	client_close(c);
}

/* Data (or EOF) is waiting on c. One read per poll wakeup keeps clients fair. */
static void client_readable(struct control_server *s, struct client *c)
{
	uint8_t *buf = s->rbuf;
	struct control_reply *r;
	Vmm__Request *req;
	struct err err;
	ssize_t n, off, k;

	n = read(c->fd, buf, sizeof(s->rbuf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF or reset; a partial message is simply dropped. */
		client_close(c);
		return;
	}
	for (off = 0; off < n && c->fd >= 0; off += k) {
		k = pmsg_reader_feed(&c->rd, buf + off, n - off, &err);
		if (k < 0) {
			client_reject(c, err.msg);
			return;
		}
		if (!pmsg_reader_ready(&c->rd))
			continue;
		if (pmsg_reader_take(&c->rd, &vmm__request__descriptor,
				     (ProtobufCMessage **)&req, &err) < 0) {
			client_reject(c, err.msg);
			return;
		}
		r = malloc(sizeof(*r));
		if (!r) {
			vmm__request__free_unpacked(req, NULL);
			client_close(c);
			return;
		}
		control_handle(s->ops, s->opaque, req, r);
		if (send_reply(c, r) < 0)
			client_close(c);
		free(r);
		vmm__request__free_unpacked(req, NULL);
	}
}

static void *server_thread(void *arg)
{
	struct control_server *s = arg;
	struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
	int map[2 + CONTROL_MAX_CLIENTS];

	for (;;) {
		int n = 0, nclients = 0;

		pfd[n++] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
		for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
			if (s->clients[i].fd < 0)
				continue;
			map[n] = i;
			pfd[n++] = (struct pollfd){ .fd = s->clients[i].fd, .events = POLLIN };
			nclients++;
		}
		/* When full, leave new connections in the listen backlog. */
		if (nclients < CONTROL_MAX_CLIENTS) {
			map[n] = -1;
			pfd[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;		/* EFAULT/EINVAL/ENOMEM: cannot serve */
		}
		if (pfd[0].revents)
			break;
		for (int j = 1; j < n; j++) {
			if (!pfd[j].revents)
				continue;
			if (map[j] < 0)
				client_add(s);
			else
				client_readable(s, &s->clients[map[j]]);
		}
	}
	return NULL;
}

int control_server_start(const char *path, const struct control_ops *ops, void *opaque,
			 struct control_server **out, struct err *err)
{
	struct control_server *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return err_set(err, "control: out of memory");
	s->lfd = -1;
	s->wake[0] = s->wake[1] = -1;
	s->ops = ops;
	s->opaque = opaque;
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	if (listen_on(s, path, err) < 0) {
		err_prefix(err, "control socket");
		goto fail;
	}
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		err_errno(err, errno, "control: pipe");
		goto fail;
	}
	rc = pthread_create(&s->thread, NULL, server_thread, s);
	if (rc != 0) {
		err_errno(err, rc, "control: start thread");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->path[0])
		unlink(s->path);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	free(s);
	return -1;
}

void control_server_stop(struct control_server *s)
{
	struct stat st;
	ssize_t w;

	if (!s)
		return;
	do
		w = write(s->wake[1], "x", 1);
	while (w < 0 && errno == EINTR);
	pthread_join(s->thread, NULL);
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		client_close(&s->clients[i]);
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s);
}
