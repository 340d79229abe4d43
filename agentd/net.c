/* --net bridge=BR[,mac=MAC]: agentd creates a persistent tap for the VM,
 * attaches it to bridge BR and brings it up, then hands the vmm
 * `--net tap=NAME[,mac=MAC]`. The tap is named from the VM name and the NIC
 * index (a hash: interface names have at most 15 bytes), so a migration
 * destination creates the same name on its own host. It is persistent
 * because the vmm, not agentd, holds it open: it outlives an agentd restart
 * with the VM and is deleted (net_release) once the vmm has ended. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentd/agent.h"

void net_tap_name(const char *vm, unsigned idx, char *out, size_t cap)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	for (const char *p = vm; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, cap, "kvt%08x.%u", h, idx);	/* 14 bytes max (idx < 10) */
}

/* TUNSETIFF on a new /dev/net/tun fd with the vmm's flags (they must match
 * for the vmm to attach to the persistent device later). */
static int tap_open(const char *name, struct err *err)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, errno, "open /dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return err_errno(err, e, "tap %s: TUNSETIFF", name);
	}
	return fd;
}

int net_prepare(const char *vm, unsigned idx, const char *spec, char *out, size_t cap,
		struct err *err)
{
	char br[IFNAMSIZ], tap[IFNAMSIZ];
	const char *rest;
	struct ifreq ifr;
	int fd, s = -1;

	if (strncmp(spec, "bridge=", 7)) {	/* tap=IF: the operator's own tap */
		snprintf(out, cap, "%s", spec);
		return 0;
	}
	rest = strchr(spec + 7, ',');
	size_t blen = rest ? (size_t)(rest - spec - 7) : strlen(spec + 7);
	if (blen == 0 || blen >= IFNAMSIZ)
		return err_set(err, "net '%s': bridge name must have 1-%d bytes", spec, IFNAMSIZ - 1);
	memcpy(br, spec + 7, blen);
	br[blen] = 0;
	net_tap_name(vm, idx, tap, sizeof(tap));
	if (if_nametoindex(br) == 0)
		return err_set(err, "net '%s': no bridge %s on this host", spec, br);

	fd = tap_open(tap, err);
	if (fd < 0)
		return -1;
	if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
		err_errno(err, errno, "tap %s: TUNSETPERSIST", tap);
		goto fail;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		err_errno(err, errno, "socket");
		goto fail;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", br);
	ifr.ifr_ifindex = (int)if_nametoindex(tap);
	/* EBUSY: already a port of a bridge (a re-run after a crash): fine if
	 * it is this one; the kernel refuses other bridges the same way. */
	if (ioctl(s, SIOCBRADDIF, &ifr) < 0 && errno != EBUSY) {
		err_errno(err, errno, "tap %s: attach to bridge %s", tap, br);
		goto fail;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		err_errno(err, errno, "tap %s: get flags", tap);
		goto fail;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		err_errno(err, errno, "tap %s: up", tap);
		goto fail;
	}
	close(s);
	close(fd);
	snprintf(out, cap, "tap=%s%s", tap, rest ? rest : "");
	return 0;
fail:
	ioctl(fd, TUNSETPERSIST, 0);
	close(fd);
	if (s >= 0)
		close(s);
	return err_prefix(err, "net '%s'", spec);
}

void net_release(const char *vm, unsigned idx, const char *spec)
{
	char tap[IFNAMSIZ];
	struct err e;

	if (strncmp(spec, "bridge=", 7))
		return;
	net_tap_name(vm, idx, tap, sizeof(tap));
	if (if_nametoindex(tap) == 0)
		return;
	/* Attaching fails with EBUSY while a vmm still holds it: then leave it. */
	int fd = tap_open(tap, &e);
	if (fd < 0)
		return;
	ioctl(fd, TUNSETPERSIST, 0);	/* deleted when fd closes */
	close(fd);
}
