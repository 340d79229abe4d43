#include "lib/fdio.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fdio_read_full(int fd, void *buf, size_t n, int timeout_ms, size_t *got, struct err *err)
{
	uint8_t *p = buf;
	size_t done = 0;

	*got = 0;
	while (done < n) {
		ssize_t r;

		if (timeout_ms >= 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int pr = poll(&pfd, 1, timeout_ms);

			if (pr < 0) {
				if (errno == EINTR)
					continue;
				return err_errno(err, errno, "poll");
			}
			if (pr == 0)
				return err_set(err, "timed out after %d ms (got %zu of %zu bytes)",
					       timeout_ms, done, n);
		}
		r = read(fd, p + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(err, errno, "read");
		}
		if (r == 0) {
			err_set(err, "EOF");
			return -2;
		}
		done += r;
		*got = done;
	}
	return 0;
}

int fdio_writev_timeout(int fd, struct iovec *iov, int cnt, int timeout_ms, struct err *err)
{
	int use_send = 1;

	while (cnt > 0) {
		ssize_t w;

		if (iov->iov_len == 0) {
			iov++;
			cnt--;
			continue;
		}
		if (use_send) {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = cnt };

			/* With a timeout never block inside sendmsg: a blocking
			 * send (even with SO_SNDTIMEO) that copied a little
			 * returns after its timeout as a success, and the next
			 * call waits again, so a dead peer would cost n times
			 * the timeout. poll() below bounds each wait instead. */
			w = sendmsg(fd, &mh, MSG_NOSIGNAL | (timeout_ms >= 0 ? MSG_DONTWAIT : 0));
			if (w < 0 && errno == ENOTSOCK) {
				use_send = 0;
				continue;
			}
		} else {
			w = writev(fd, iov, cnt);
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) && timeout_ms >= 0) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				int pr = poll(&pfd, 1, timeout_ms);

				if (pr < 0 && errno != EINTR)
					return err_errno(err, errno, "poll");
				if (pr == 0) {
					err_set(err, "write: no progress for %d ms (the peer stopped reading)",
						timeout_ms);
					errno = ETIMEDOUT;
					return -1;
				}
				continue;	/* writable, or an error the next send reports */
			}
			return err_errno(err, errno, "write");
		}
		/* Consume w bytes from the front of the iov array. */
		while (w > 0) {
			size_t take = (size_t)w < iov->iov_len ? (size_t)w : iov->iov_len;

			iov->iov_base = (uint8_t *)iov->iov_base + take;
			iov->iov_len -= take;
			w -= take;
			if (iov->iov_len == 0) {
				iov++;
				cnt--;
			}
		}
	}
	return 0;
}

int fdio_writev_full(int fd, struct iovec *iov, int cnt, struct err *err)
{
	return fdio_writev_timeout(fd, iov, cnt, -1, err);
}

int fdio_write_full(int fd, const void *buf, size_t n, struct err *err)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };

	return fdio_writev_full(fd, &iov, 1, err);
}
