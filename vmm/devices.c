/* The device list. Order matters only for realize (and reverse for exit). */
#include "vmm/device.h"

#include <stdlib.h>

#include "vmm/dev_virtio.h"
#include "vmm/ioport.h"
#include "vmm/vm.h"

const struct device_ops *const device_table[] = {
	&serial_ops,
	&debug_exit_ops,
	&i8042_ops,
	&rtc_ops,
	&acpi_pm_ops,
	&pci_host_ops,		/* before the virtio devices that plug into it */
};
const int device_table_len = (int)(sizeof(device_table) / sizeof(device_table[0]));

int devices_realize(struct vm *vm, struct err *e)
{
	int i, n = device_table_len + dev_virtio_count(&vm->cfg);

	vm->devs = calloc((size_t)n, sizeof(*vm->devs));
	if (!vm->devs)
		return err_set(e, "out of memory");
	vm->ndevs = n;
	for (i = 0; i < n; i++) {
		struct device *d = &vm->devs[i];

		d->ops = i < device_table_len ? device_table[i]
					      : dev_virtio_ops(&vm->cfg, i - device_table_len);
		d->vm = vm;
		pthread_mutex_init(&d->lock, NULL);
		if (d->ops->realize && d->ops->realize(d, e) < 0) {
			err_prefix(e, "%s", d->ops->name);
			ioport_unregister_dev(&vm->pio, d);
			devices_exit(vm);
			return -1;
		}
		d->realized = true;
		if (d->ops->reset)
			d->ops->reset(d);
	}
	return 0;
}

void devices_reset(struct vm *vm)
{
	for (int i = 0; i < vm->ndevs; i++)
		if (vm->devs[i].realized && vm->devs[i].ops->reset)
			vm->devs[i].ops->reset(&vm->devs[i]);
}

void devices_exit(struct vm *vm)
{
	if (!vm->devs)
		return;
	for (int i = vm->ndevs - 1; i >= 0; i--) {
		struct device *d = &vm->devs[i];

		if (!d->ops)
			continue;
		if (d->realized) {
			ioport_unregister_dev(&vm->pio, d);
			if (d->ops->exit)
				d->ops->exit(d);
		}
		pthread_mutex_destroy(&d->lock);
	}
	free(vm->devs);
	vm->devs = NULL;
	vm->ndevs = 0;
}
