#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/frame.h"
#include "vmm/control/client.h"

int control_connect(const char *path, struct err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(err, "control socket path %s too long (max %zu bytes)", path,
			       sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(err, errno, "socket");
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		e = errno;
		close(fd);
		err_errno(err, e, "connect %s", path);
		if (e == ENOENT || e == ECONNREFUSED) {
			size_t n = strlen(err->msg);

			snprintf(err->msg + n, sizeof(err->msg) - n, " (is the vmm running?)");
		}
		return -1;
	}
	return fd;
}

int control_call(int fd, Vmm__Request *req, Vmm__Response **resp, struct err *err)
{
	static uint64_t next_id;
	Vmm__Response *r;
	int rc;

	*resp = NULL;
	if (req->api_version == 0)
		req->api_version = VMM_API_VERSION;
	if (req->id == 0)
		req->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	if (pmsg_send(fd, &req->base, err) < 0)
		return err_prefix(err, "send request");
	rc = pmsg_recv_response(fd, &r, err);
	if (rc == -2)
		return err_set(err, "vmm closed the connection without answering");
	if (rc < 0)
		return err_prefix(err, "read response");
	/* Id 0 is the server's answer to a request it could not decode. */
	if (r->id != req->id && !(r->id == 0 && !r->ok)) {
		err_set(err, "response id %llu does not match request id %llu",
			(unsigned long long)r->id, (unsigned long long)req->id);
		vmm__response__free_unpacked(r, NULL);
		return -1;
	}
	*resp = r;
	return 0;
}
