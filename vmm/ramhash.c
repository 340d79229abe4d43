/* Guest RAM hash for migration tests: see ramhash.h. */
#include "vmm/ramhash.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vm.h"

static int ramhash_on;
static const char *ramhash_dir;

void ramhash_enable(const char *dir)
{
	ramhash_on = 1;
	ramhash_dir = dir;
}

/* DIR/ram.WHEN.PID with one hash per page; errors are reported, not fatal
 * (a debug aid must not change how the migration ends). */
static void ramhash__pages(struct vm *vm, const char *when, char *path, size_t cap)
{
	char tag[64];
	FILE *f;

	snprintf(tag, sizeof(tag), "%s", when);
	for (char *c = tag; *c; c++)
		if (*c == ' ')
			*c = '-';
	snprintf(path, cap, "%s/ram.%s.%d", ramhash_dir, tag, (int)getpid());
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "vmm: %s: ram hash: %s: %s\n", vm->cfg.name, path, strerror(errno));
		path[0] = 0;
		return;
	}
	for (uint64_t off = 0; off < vm->mem.size; off += 4096) {
		uint64_t h = ramhash_compute(vm->mem.ram + off, 4096);

		fwrite(&h, sizeof(h), 1, f);
	}
	if (fclose(f)) {
		fprintf(stderr, "vmm: %s: ram hash: %s: %s\n", vm->cfg.name, path, strerror(errno));
		path[0] = 0;
	}
}

/* FNV-1a style over 64-bit words, with the word index mixed in so that
 * swapped pages change the hash; then a final avalanche (splitmix64). */
uint64_t ramhash_compute(const uint8_t *p, uint64_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint64_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ (w + i)) * 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

void ramhash_log(struct vm *vm, const char *when)
{
	char path[4096] = "";

	if (!ramhash_on)
		return;
	if (ramhash_dir)
		ramhash__pages(vm, when, path, sizeof(path));
	/* The whole memfd mapping: every region, in memfd order. */
	fprintf(stderr, "vmm: %s: ram hash %s: %016llx (%llu bytes)%s%s\n", vm->cfg.name, when,
		(unsigned long long)ramhash_compute(vm->mem.ram, vm->mem.size),
		(unsigned long long)vm->mem.size, path[0] ? " pages in " : "", path);
}
