#include "vmm/boot.h"

int bzimage_probe(const uint8_t *img, size_t len)
{
	(void)img; (void)len;
	return 0;
}

int bzimage_load(struct vm *vm, const uint8_t *img, size_t len, struct err *e)
{
	(void)vm; (void)img; (void)len;
	return err_set(e, "bzImage: not yet");
}
