/* VM configuration as given on the command line, plus the parsers for it
 * (pure functions, unit tested). */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdint.h>

#include "lib/err.h"

#define VM_MAX_CPUS	64
#define VM_MIN_MEM	(4ULL << 20)

struct vm_config {
	const char *name;
	const char *kernel;
	const char *initrd;	/* NULL: none */
	const char *cmdline;	/* never NULL after config_defaults */
	const char *serial;	/* "stdio" or a file path */
	uint64_t mem_size;	/* bytes, multiple of 4 KiB */
	int ncpus;
};

void config_defaults(struct vm_config *c);
/* "64M", "2G", "512K", "1T", "65536B"; a bare number means MiB (like QEMU). */
int config_parse_size(const char *s, uint64_t *out, struct err *e);
/* Positive decimal integer in [min, max]. */
int config_parse_int(const char *s, int min, int max, int *out, struct err *e);
/* Cross-field checks after parsing (sizes, required options). */
int config_check(const struct vm_config *c, struct err *e);

#endif
