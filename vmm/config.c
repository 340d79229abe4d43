#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->name = "vm";
	c->cmdline = "";
	c->serial = "stdio";
	c->mem_size = 256ULL << 20;
	c->ncpus = 1;
	c->balloon = false;	/* opt-in: see vmm/virtio/README.md "virtio-balloon" (restore bug) */
}

int config_parse_size(const char *s, uint64_t *out, struct err *e)
{
	unsigned long long v;
	char *end;
	int shift = 20;

	if (!s || !isdigit((unsigned char)s[0]))
		return err_set(e, "invalid size '%s'", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return err_set(e, "invalid size '%s'", s);
	switch (toupper((unsigned char)*end)) {
	case '\0': shift = 20; break;
	case 'B': shift = 0; end++; break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default:
		return err_set(e, "invalid size '%s'", s);
	}
	/* Accept "64M", "64MB", "64MiB". */
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib")))
		end += strlen(end);
	if (*end)
		return err_set(e, "invalid size '%s'", s);
	if (shift && v > (~0ULL >> shift))
		return err_set(e, "size '%s' too large", s);
	*out = (uint64_t)v << shift;
	return 0;
}

int config_parse_int(const char *s, int min, int max, int *out, struct err *e)
{
	long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return err_set(e, "invalid number '%s'", s ? s : "");
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end)
		return err_set(e, "invalid number '%s'", s);
	if (v < min || v > max)
		return err_set(e, "%ld out of range [%d, %d]", v, min, max);
	*out = (int)v;
	return 0;
}

int config_check(const struct vm_config *c, struct err *e)
{
	if (!c->kernel)
		return err_set(e, "--kernel is required");
	if (c->mem_size < VM_MIN_MEM)
		return err_set(e, "--mem: %llu bytes is too small (minimum 4M)",
			       (unsigned long long)c->mem_size);
	if (c->mem_size & 0xfff)
		return err_set(e, "--mem: %llu bytes is not a multiple of 4 KiB",
			       (unsigned long long)c->mem_size);
	if (c->ncpus < 1 || c->ncpus > VM_MAX_CPUS)
		return err_set(e, "--cpus: %d out of range [1, %d]", c->ncpus, VM_MAX_CPUS);
	if (strlen(c->cmdline) >= 4096)
		return err_set(e, "--cmdline: longer than 4095 bytes");
	return 0;
}
