#include "vmm/virtio/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int tap_open(const char *ifname, char *name_out, struct err *e)
{
	struct ifreq ifr;
	int fd, hdr = VIRTIO_NET_HDR_LEN;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "tap: open /dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ifname && *ifname) {
		if (strlen(ifname) >= IFNAMSIZ) {
			close(fd);
			return err_set(e, "tap: name '%s' too long", ifname);
		}
		memcpy(ifr.ifr_name, ifname, strlen(ifname));
	} else {
		memcpy(ifr.ifr_name, "vmmtap%d", 9);
	}
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err_errno(e, errno, "tap: TUNSETIFF %s", ifr.ifr_name);
		goto fail;
	}
	/* virtio 1.x headers are always 12 bytes (num_buffers included). */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		err_errno(e, errno, "tap: TUNSETVNETHDRSZ");
		goto fail;
	}
	/* No offloads until the guest accepts them (virtio-net sets them). */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		err_errno(e, errno, "tap: TUNSETOFFLOAD");
		goto fail;
	}
	if (name_out)
		memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
	return fd;
fail:
	close(fd);
	return -1;
}
