/* Device model interface.
 *
 * A device is one ops table in its own file; vmm/devices.c lists them all in
 * realize order. Adding a device = one new file + one line there.
 *
 * Lifecycle: realize (allocate state, claim ports) -> reset -> [io...] ->
 * exit. save/load serialize guest-visible state into a vmstate section named
 * after the device; both may be NULL for stateless devices. I/O handlers run
 * on vCPU threads with dev->lock held, so device state needs no other lock
 * unless a device also touches it from another thread. */
#ifndef VMM_DEVICE_H
#define VMM_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

struct vm;
struct device;
struct vmstate_writer;

struct device_ops {
	const char *name;
	/* Set up state and register I/O ranges. On failure undo everything. */
	int (*realize)(struct device *dev, struct err *e);
	/* Back to power-on state (also used on guest reboot). */
	void (*reset)(struct device *dev);
	/* Port I/O: size is 1, 2 or 4; reads fill *data. */
	void (*pio)(struct device *dev, uint16_t port, bool is_write, uint32_t *data, int size);
	/* MMIO: size 1..8. */
	void (*mmio)(struct device *dev, uint64_t addr, bool is_write, uint8_t *data, int size);
	int (*save)(struct device *dev, struct vmstate_writer *w, struct err *e);
	int (*load)(struct device *dev, const void *payload, size_t len, uint16_t version,
		    struct err *e);
	/* Version of the section save writes ("dev.NAME", opened by the core,
	 * vmm/snapshot.c); 0 means 1. A device with priv state must have save
	 * and load, or snapshots refuse it. */
	uint16_t state_version;
	/* Free state. Must be safe after a failed or skipped realize. */
	void (*exit)(struct device *dev);
};

struct device {
	const struct device_ops *ops;
	struct vm *vm;
	void *priv;			/* the device's own state */
	pthread_mutex_t lock;		/* serializes handlers across vCPUs */
	bool realized;
};

/* The ordered list of devices every VM gets (vmm/devices.c). */
extern const struct device_ops *const device_table[];
extern const int device_table_len;

/* Realize every device in table order; on failure exit those already
 * realized (reverse order) and return -1. */
int devices_realize(struct vm *vm, struct err *e);
void devices_reset(struct vm *vm);
void devices_exit(struct vm *vm);

/* Device ops referenced by the table. */
extern const struct device_ops serial_ops;
extern const struct device_ops debug_exit_ops;
extern const struct device_ops i8042_ops;
extern const struct device_ops rtc_ops;
extern const struct device_ops acpi_pm_ops;

#endif
