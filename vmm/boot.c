#include "vmm/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vm.h"

#define BOOT_MAX_FILE (1ULL << 31)

int boot_read_file(const char *path, uint8_t **buf, size_t *len, struct err *e)
{
	struct stat st;
	uint8_t *p;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "%s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > BOOT_MAX_FILE) {
		close(fd);
		return err_set(e, "%s: not a regular file of at most 2 GiB", path);
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p) {
		close(fd);
		return err_set(e, "%s: out of memory", path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err_errno(e, r < 0 ? errno : EIO, "%s: read", path);
			free(p);
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	*buf = p;
	*len = got;
	return 0;
}

int boot_load(struct vm *vm, struct err *e)
{
	uint8_t *img;
	size_t len;
	int r;

	if (boot_read_file(vm->cfg.kernel, &img, &len, e) < 0)
		return err_prefix(e, "kernel");
	/* bzImage first: a Linux image may also carry a multiboot header. */
	if (bzimage_probe(img, len))
		r = bzimage_load(vm, img, len, e);
	else if (multiboot_probe(img, len))
		r = multiboot_load(vm, img, len, e);
	else
		r = err_set(e, "%s: neither a Linux bzImage nor a Multiboot kernel", vm->cfg.kernel);
	free(img);
	return r;
}
