/* VM configuration as given on the command line, plus the parsers for it
 * (pure functions, unit tested). */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define VM_MAX_CPUS	64
#define VM_MIN_MEM	(4ULL << 20)
#define VM_MAX_DISKS	8
#define VM_MAX_NICS	4

/* --disk PATH[,ro] and --net tap=IFNAME[,mac=MAC] (vmm/config_dev.c). */
struct vm_disk_cfg {
	const char *path;
	bool readonly;
};

struct vm_net_cfg {
	char ifname[16];	/* IFNAMSIZ */
	uint8_t mac[6];
	bool has_mac;		/* false: a default derived from the NIC index */
};

struct vm_config {
	const char *name;
	const char *kernel;
	const char *initrd;	/* NULL: none */
	const char *cmdline;	/* never NULL after config_defaults */
	const char *serial;	/* "stdio" or a file path */
	const char *console;	/* Unix socket feeding the UART's input, or NULL */
	uint64_t mem_size;	/* bytes, multiple of 4 KiB */
	int ncpus;
	int ndisks, nnets;
	struct vm_disk_cfg disks[VM_MAX_DISKS];
	struct vm_net_cfg nets[VM_MAX_NICS];
	bool rng;		/* --rng: virtio-rng */
	bool balloon;		/* virtio-balloon free page reporting; on unless --no-balloon */
};

void config_defaults(struct vm_config *c);
/* "64M", "2G", "512K", "1T", "65536B"; a bare number means MiB (like QEMU). */
int config_parse_size(const char *s, uint64_t *out, struct err *e);
/* Positive decimal integer in [min, max]. */
int config_parse_int(const char *s, int min, int max, int *out, struct err *e);
/* Cross-field checks after parsing (sizes, required options). */
int config_check(const struct vm_config *c, struct err *e);
/* "PATH" or "PATH,ro" (the file itself is checked when the VM is built). */
int config_parse_disk(const char *s, struct vm_disk_cfg *d, struct err *e);
/* "tap=IFNAME[,mac=MAC]". */
int config_parse_net(const char *s, struct vm_net_cfg *n, struct err *e);
/* "52:54:00:12:34:56": six hex pairs, unicast. */
int config_parse_mac(const char *s, uint8_t mac[6], struct err *e);

#endif
