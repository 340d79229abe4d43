/* Full reads and writes on (possibly non-socket) fds, with an optional
 * timeout and without SIGPIPE. */
#ifndef LIB_FDIO_H
#define LIB_FDIO_H

#include <stddef.h>
#include <sys/uio.h>

#include "lib/err.h"

/* Read exactly n bytes. timeout_ms < 0 waits forever; the timeout applies to
 * each wait for data, not to the whole call. *got is set to the bytes read
 * even on failure. Returns 0; -1 with err set on error or timeout; -2 (err
 * "EOF") if the peer closed before n bytes arrived. */
int fdio_read_full(int fd, void *buf, size_t n, int timeout_ms, size_t *got, struct err *err);

/* Write all of iov[0..cnt) (the iov array is modified). Uses sendmsg with
 * MSG_NOSIGNAL on sockets, writev otherwise. */
int fdio_writev_full(int fd, struct iovec *iov, int cnt, struct err *err);

/* The same, on a socket bounded by timeout_ms (< 0: as fdio_writev_full)
 * per wait for buffer space: it fails with errno ETIMEDOUT once the peer
 * has taken nothing for timeout_ms ("no progress"), however the bytes were
 * split across calls. Not a socket: writev, unbounded. */
int fdio_writev_timeout(int fd, struct iovec *iov, int cnt, int timeout_ms, struct err *err);

int fdio_write_full(int fd, const void *buf, size_t n, struct err *err);

#endif
