/* Migration compatibility blob: see mig_compat.h. */
#include "vmm/mig_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cpuid.h"
#include "vmm/vm.h"

#define COMPAT_VERSION	"1"
#define COMPAT_MAX_KEYS	96
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)

/* The guest-visible CPUID words whose feature bits a guest may rely on. */
static const struct {
	uint32_t fn, idx;
	const char *regs;	/* subset of "abcd" (eax..edx) */
} feature_words[] = {
	{ 1, 0, "cd" },
	{ 7, 0, "bcd" },
	{ 0xd, 0, "a" },	/* XSAVE components (XCR0 bits) */
	{ 0xd, 1, "a" },	/* XSAVEOPT, XSAVEC, XSAVES */
	{ 0x80000001, 0, "cd" },
	{ 0x80000007, 0, "d" },	/* invariant TSC */
	{ 0x80000008, 0, "b" },
};

struct kv {
	char *key, *val;
};

struct blob {
	char *text;
	struct kv kv[COMPAT_MAX_KEYS];
	int n;
};

static int put(char *buf, size_t cap, size_t *len, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int put(char *buf, size_t cap, size_t *len, struct err *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return err_set(e, "compat blob does not fit in %zu bytes", cap);
	*len += (size_t)n;
	return 0;
}

static uint32_t reg_of(const struct kvm_cpuid_entry2 *ent, char r)
{
	switch (r) {
	case 'a': return ent->eax;
	case 'b': return ent->ebx;
	case 'c': return ent->ecx;
	default: return ent->edx;
	}
}

/* The CPUID table a vCPU of this VM sees (as cpuid_setup_vcpu builds it,
 * for vCPU 0: the feature words are the same on every vCPU). */
static struct kvm_cpuid2 *guest_cpuid(struct vm *vm, struct err *e)
{
	const struct kvm_cpuid2 *sup = vm->supported_cpuid;
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);

	if (!c) {
		err_set(e, "out of memory");
		return NULL;
	}
	memcpy(c, sup, sz);
	cpuid_filter(c, 0, vm->ncpus);
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1 && vm->caps.tsc_deadline)
			c->entries[i].ecx |= CPUID_1_ECX_TSC_DEADLINE;
	return c;
}

static int disk_size(const char *path, unsigned long long *size, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;

	if (fd < 0)
		return err_errno(e, errno, "disk %s", path);
	end = lseek(fd, 0, SEEK_END);	/* works for block devices too */
	close(fd);
	if (end < 0)
		return err_errno(e, errno, "disk %s: size", path);
	*size = (unsigned long long)end;
	return 0;
}

int mig_compat_info(void *opaque, uint8_t *out, size_t cap, size_t *len, struct err *e)
{
	struct vm *vm = opaque;
	char *buf = (char *)out;
	struct kvm_cpuid2 *c = NULL;
	char vendor[13] = "";
	int r = -1;

	*len = 0;
	if (put(buf, cap, len, e, "v=%s\ncpus=%d\nmem=%llu\ndevs=", COMPAT_VERSION, vm->ncpus,
		(unsigned long long)vm->mem.size) < 0)
		goto out;
	for (int i = 0; i < vm->ndevs; i++)
		if (put(buf, cap, len, e, "%s%s", i ? "," : "", vm->devs[i].ops->name) < 0)
			goto out;
	if (put(buf, cap, len, e, "\n") < 0)
		goto out;
	for (int i = 0; i < vm->cfg.ndisks; i++) {
		unsigned long long size = 0;

		if (disk_size(vm->cfg.disks[i].path, &size, e) < 0 ||
		    put(buf, cap, len, e, "disk.%d=%llu bytes %s\n", i, size,
			vm->cfg.disks[i].readonly ? "ro" : "rw") < 0)
			goto out;
	}
	for (int i = 0; i < vm->cfg.nnets; i++) {
		const uint8_t *m = vm->cfg.nets[i].mac;

		/* Without mac= the NIC index decides the MAC on both sides. */
		if (!vm->cfg.nets[i].has_mac)
			continue;
		if (put(buf, cap, len, e, "nic.%d=%02x:%02x:%02x:%02x:%02x:%02x\n", i, m[0], m[1],
			m[2], m[3], m[4], m[5]) < 0)
			goto out;
	}
	c = guest_cpuid(vm, e);
	if (!c)
		goto out;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0) {
			memcpy(vendor, &c->entries[i].ebx, 4);
			memcpy(vendor + 4, &c->entries[i].edx, 4);
			memcpy(vendor + 8, &c->entries[i].ecx, 4);
		}
	for (char *p = vendor; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			*p = '?';
	if (put(buf, cap, len, e, "cpu.vendor=%s\n", vendor) < 0)
		goto out;
	for (size_t w = 0; w < sizeof(feature_words) / sizeof(feature_words[0]); w++)
		for (uint32_t i = 0; i < c->nent; i++) {
			const struct kvm_cpuid_entry2 *ent = &c->entries[i];

			if (ent->function != feature_words[w].fn || ent->index != feature_words[w].idx)
				continue;
			for (const char *rg = feature_words[w].regs; *rg; rg++)
				if (put(buf, cap, len, e, "cpuid.%x.%x.e%cx=%08x\n", ent->function,
					ent->index, *rg, reg_of(ent, *rg)) < 0)
					goto out;
		}
	r = 0;
out:
	free(c);
	return r;
}

/* Split a blob into key=value lines (copied; printable ASCII only). */
static int blob_parse(const uint8_t *p, size_t len, struct blob *b, const char *who,
		      struct err *e)
{
	char *s, *line, *save = NULL;

	b->n = 0;
	b->text = malloc(len + 1);
	if (!b->text)
		return err_set(e, "out of memory");
	if (len)
		memcpy(b->text, p, len);
	b->text[len] = 0;
	for (size_t i = 0; i < len; i++)
		if (b->text[i] != '\n' && (b->text[i] < 0x20 || b->text[i] > 0x7e))
			return err_set(e, "%s's compat blob: byte 0x%02x at %zu", who,
				       (uint8_t)b->text[i], i);
	for (s = b->text; (line = strtok_r(s, "\n", &save)); s = NULL) {
		char *eq = strchr(line, '=');

		if (!eq || eq == line)
			return err_set(e, "%s's compat blob: line '%.40s' is not key=value", who, line);
		if (b->n == COMPAT_MAX_KEYS)
			return err_set(e, "%s's compat blob: more than %d lines", who, COMPAT_MAX_KEYS);
		*eq = 0;
		b->kv[b->n].key = line;
		b->kv[b->n].val = eq + 1;
		b->n++;
	}
	return 0;
}

static const char *blob_get(const struct blob *b, const char *key)
{
	for (int i = 0; i < b->n; i++)
		if (!strcmp(b->kv[i].key, key))
			return b->kv[i].val;
	return NULL;
}

/* Both blobs must have the same value for key (absent = "none"). */
static int same(const struct blob *src, const struct blob *here, const char *key,
		const char *what, const char *fix, struct err *e)
{
	const char *a = blob_get(src, key), *b = blob_get(here, key);

	if (!a)
		a = "none";
	if (!b)
		b = "none";
	if (strcmp(a, b))
		return err_set(e, "%s: source %s, this VM %s%s%s", what, a, b, fix ? " " : "",
			       fix ? fix : "");
	return 0;
}

static int check_blobs(const struct blob *src, const struct blob *here, struct err *e)
{
	char key[32], what[32];
	const char *v = blob_get(src, "v");

	if (!v || strcmp(v, COMPAT_VERSION))
		return err_set(e, "compat blob version %s, this vmm speaks %s", v ? v : "none",
			       COMPAT_VERSION);
	if (same(src, here, "cpus", "vCPU count", "(give the destination the source's --cpus)",
		 e) < 0 ||
	    same(src, here, "mem", "RAM bytes", "(give the destination the source's --mem)", e) < 0 ||
	    same(src, here, "devs", "devices",
		 "(give the destination the source's --disk/--net/--rng/--balloon)", e) < 0)
		return -1;
	for (int i = 0; i < VM_MAX_DISKS; i++) {
		snprintf(key, sizeof(key), "disk.%d", i);
		snprintf(what, sizeof(what), "disk %d", i);
		if (same(src, here, key, what, "(shared storage: the same image on both hosts)", e) < 0)
			return -1;
	}
	for (int i = 0; i < VM_MAX_NICS; i++) {
		snprintf(key, sizeof(key), "nic.%d", i);
		snprintf(what, sizeof(what), "NIC %d MAC", i);
		if (same(src, here, key, what, NULL, e) < 0)
			return -1;
	}
	if (same(src, here, "cpu.vendor", "CPU vendor", NULL, e) < 0)
		return -1;
	for (int i = 0; i < src->n; i++) {
		const char *k = src->kv[i].key, *mine;
		unsigned long a, b = 0;
		char *end;

		if (!strcmp(k, "v") || !strcmp(k, "cpus") || !strcmp(k, "mem") ||
		    !strcmp(k, "devs") || !strncmp(k, "disk.", 5) || !strncmp(k, "nic.", 4) ||
		    !strcmp(k, "cpu.vendor"))
			continue;
		if (strncmp(k, "cpuid.", 6))
			return err_set(e, "unknown compat key '%.40s' from the source", k);
		errno = 0;
		a = strtoul(src->kv[i].val, &end, 16);
		if (errno || *end || end == src->kv[i].val || a > 0xffffffffUL)
			return err_set(e, "compat key %.40s: bad value '%.20s'", k, src->kv[i].val);
		mine = blob_get(here, k);
		if (mine)
			b = strtoul(mine, NULL, 16);
		/* The guest may use every bit it saw: this host must offer them all. */
		if (a & ~b)
			return err_set(e, "CPU: the source's guest sees %s=%08lx, this host offers "
				       "%08lx (missing bits %08lx)", k, a, b, a & ~b);
	}
	return 0;
}

int mig_compat_check(void *vm, const uint8_t *buf, size_t len, struct err *e)
{
	struct blob src = { 0 }, here = { 0 };
	uint8_t *mine = malloc(4096);
	size_t mlen;
	int r = -1;

	if (!mine)
		return err_set(e, "out of memory");
	if (mig_compat_info(vm, mine, 4096, &mlen, e) < 0 ||
	    blob_parse(buf, len, &src, "source", e) < 0 ||
	    blob_parse(mine, mlen, &here, "destination", e) < 0)
		goto out;
	r = check_blobs(&src, &here, e);
out:
	free(src.text);
	free(here.text);
	free(mine);
	return r;
}
