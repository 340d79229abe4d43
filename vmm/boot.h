/* Kernel loading: detect the image format and hand off to its loader.
 * Loaders fill guest memory and set the boot vCPU's registers. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct vm;

/* Read the whole file (kernel/initrd). Caller frees *buf. */
int boot_read_file(const char *path, uint8_t **buf, size_t *len, struct err *e);
int boot_load(struct vm *vm, struct err *e);

/* Format loaders (vmm/multiboot.c, vmm/bzimage.c). *_probe is pure. */
int multiboot_probe(const uint8_t *img, size_t len);
int multiboot_load(struct vm *vm, const uint8_t *img, size_t len, struct err *e);
int bzimage_probe(const uint8_t *img, size_t len);
/* Validate a bzImage header; *setup_size = offset of the 64-bit kernel. */
int bzimage_check(const uint8_t *img, size_t len, size_t *setup_size, struct err *e);
int bzimage_load(struct vm *vm, const uint8_t *img, size_t len, struct err *e);

#endif
