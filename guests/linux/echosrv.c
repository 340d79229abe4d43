/*
 * echosrv: TCP echo server plus a tiny HTTP responder, one poll(2) loop.
 *
 *   echosrv [--echo-port P (7)] [--http-port P (80)] [--max-clients N (1000)]
 *
 * Echo: every byte received is sent back on the same connection (a client
 * that does not read its echoes is throttled: we stop reading it until its
 * pending output drains).
 * HTTP: any request (read up to the blank line) gets
 *   HTTP/1.0 200 OK, Content-Type: text/plain, body "echosrv ok n=<N>\n"
 * where N counts HTTP requests answered since start (1, 2, ...); then close.
 * Prints "ECHOSRV LISTEN echo=<p> http=<p>" once both sockets listen.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ 16384

enum kind { ECHO_LISTEN, HTTP_LISTEN, ECHO_CONN, HTTP_CONN };

struct conn {
	enum kind kind;
	size_t len, off;      /* echo: pending output buf[off..len); http: request bytes */
	int responding;       /* http: response in buf[off..len) */
	char buf[BUFSZ];
};

static struct pollfd *pfd;
static struct conn **cs;
static int n, maxn;
static unsigned long http_count;

static int listen_on(int port)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, zero = 0;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 512)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int add(int fd, enum kind k)
{
	if (n == maxn) {
		close(fd);
		return -1;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -1;
	}
	c->kind = k;
	cs[n] = c;
	pfd[n] = (struct pollfd){ .fd = fd, .events = POLLIN };
	return n++;
}

static void drop(int i)
{
	close(pfd[i].fd);
	free(cs[i]);
	n--;
	cs[i] = cs[n];
	pfd[i] = pfd[n];
}

/* Flush pending output of connection i. Returns -1 on error. */
static int flush(int i)
{
	struct conn *c = cs[i];
	while (c->off < c->len) {
		ssize_t w = send(pfd[i].fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w <= 0)
			return -1;
		c->off += w;
	}
	c->off = c->len = 0;
	return 0;
}

/* Handle events on connection i; returns 1 if it was dropped. */
static int serve(int i)
{
	struct conn *c = cs[i];
	if (c->kind == ECHO_CONN) {
		if (c->len == 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t r = recv(pfd[i].fd, c->buf, BUFSZ, 0);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				drop(i);
				return 1;
			}
			if (r > 0)
				c->len = r, c->off = 0;
		}
		if (c->len && flush(i)) {
			drop(i);
			return 1;
		}
		pfd[i].events = c->len ? POLLOUT : POLLIN;
		return 0;
	}
	/* HTTP */
	if (!c->responding) {
		ssize_t r = recv(pfd[i].fd, c->buf + c->len, BUFSZ - 1 - c->len, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			drop(i);
			return 1;
		}
		if (r > 0)
			c->len += r;
		c->buf[c->len] = 0;
		if (!strstr(c->buf, "\r\n\r\n") && !strstr(c->buf, "\n\n") && c->len < BUFSZ - 1)
			return 0;
		char body[64];
		int bl = snprintf(body, sizeof(body), "echosrv ok n=%lu\n", ++http_count);
		c->len = snprintf(c->buf, BUFSZ,
				  "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
				  "Connection: close\r\n\r\n%s", bl, body);
		c->off = 0;
		c->responding = 1;
	}
	if (flush(i) || c->len == 0) {
		drop(i);
		return 1;
	}
	pfd[i].events = POLLOUT;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "echo-port", required_argument, 0, 'e' },
		{ "http-port", required_argument, 0, 'h' },
		{ "max-clients", required_argument, 0, 'm' },
		{ 0, 0, 0, 0 },
	};
	int echo_port = 7, http_port = 80, c;
	maxn = 1000;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': echo_port = atoi(optarg); break;
		case 'h': http_port = atoi(optarg); break;
		case 'm': maxn = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: echosrv [--echo-port P] [--http-port P] [--max-clients N]\n");
			return 2;
		}
	}
	if (maxn < 1 || echo_port <= 0 || echo_port > 65535 || http_port <= 0 || http_port > 65535) {
		fprintf(stderr, "echosrv: bad arguments\n");
		return 2;
	}
	maxn += 2;
	signal(SIGPIPE, SIG_IGN);
	pfd = calloc(maxn, sizeof(*pfd));
	cs = calloc(maxn, sizeof(*cs));
	int ef = listen_on(echo_port), hf = listen_on(http_port);
	if (!pfd || !cs || ef < 0 || hf < 0) {
		printf("ECHOSRV ERROR cannot listen on %d/%d: %s\n", echo_port, http_port, strerror(errno));
		return 1;
	}
	add(ef, ECHO_LISTEN);
	add(hf, HTTP_LISTEN);
	printf("ECHOSRV LISTEN echo=%d http=%d\n", echo_port, http_port);
	fflush(stdout);
	for (;;) {
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("echosrv: poll");
			return 1;
		}
		for (int i = n - 1; i >= 0; i--) {
			if (!pfd[i].revents)
				continue;
			if (cs[i]->kind == ECHO_LISTEN || cs[i]->kind == HTTP_LISTEN) {
				enum kind k = cs[i]->kind == ECHO_LISTEN ? ECHO_CONN : HTTP_CONN;
				for (int a = 0; a < 64; a++) {
					int fd = accept4(pfd[i].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					int one = 1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					add(fd, k);   /* over the limit: closed at once */
				}
				continue;
			}
			serve(i);   /* may move the last entry into slot i; it was already visited */
		}
	}
}
