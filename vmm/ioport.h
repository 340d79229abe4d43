/* Port I/O dispatch: ranges of ports owned by devices. Registration happens
 * only while devices are realized (before vCPUs run), so lookups need no lock.
 * Unclaimed ports read as all-ones and ignore writes, like an empty ISA bus. */
#ifndef VMM_IOPORT_H
#define VMM_IOPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct device;

#define IOPORT_MAX_RANGES 32

struct io_range {
	uint16_t base, len;
	struct device *dev;
};

struct io_bus {
	int n;
	struct io_range r[IOPORT_MAX_RANGES];
};

int ioport_register(struct io_bus *bus, uint16_t base, uint16_t len, struct device *dev,
		    struct err *e);
void ioport_unregister_dev(struct io_bus *bus, struct device *dev);
/* Returns false if no device claims the port (the access is then emulated
 * as open bus). */
bool ioport_dispatch(struct io_bus *bus, uint16_t port, bool is_write, void *data, int size);

#endif
