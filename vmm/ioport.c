#include "vmm/ioport.h"

#include <string.h>

#include "vmm/device.h"

int ioport_register(struct io_bus *bus, uint16_t base, uint16_t len, struct device *dev,
		    struct err *e)
{
	uint32_t end = (uint32_t)base + len;

	if (!len || end > 0x10000)
		return err_set(e, "bad port range 0x%x+%u", base, len);
	for (int i = 0; i < bus->n; i++) {
		const struct io_range *o = &bus->r[i];

		if (base < (uint32_t)o->base + o->len && o->base < end)
			return err_set(e, "ports 0x%x-0x%x overlap %s", base, end - 1,
				       o->dev->ops->name);
	}
	if (bus->n == IOPORT_MAX_RANGES)
		return err_set(e, "too many port ranges");
	bus->r[bus->n++] = (struct io_range){ base, len, dev };
	return 0;
}

void ioport_unregister_dev(struct io_bus *bus, struct device *dev)
{
	int j = 0;

	for (int i = 0; i < bus->n; i++)
		if (bus->r[i].dev != dev)
			bus->r[j++] = bus->r[i];
	bus->n = j;
}

bool ioport_dispatch(struct io_bus *bus, uint16_t port, bool is_write, void *data, int size)
{
	for (int i = 0; i < bus->n; i++) {
		struct io_range *r = &bus->r[i];
		uint32_t v = 0;

		if (port < r->base || port >= (uint32_t)r->base + r->len)
			continue;
		if (is_write)
			memcpy(&v, data, (size_t)size);
		pthread_mutex_lock(&r->dev->lock);
		r->dev->ops->pio(r->dev, port, is_write, &v, size);
		pthread_mutex_unlock(&r->dev->lock);
		if (!is_write)
			memcpy(data, &v, (size_t)size);
		return true;
	}
	if (!is_write)
		memset(data, 0xff, (size_t)size);
	return false;
}
