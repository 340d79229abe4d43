/* QEMU isa-debug-exit compatible port 0xf4: the guest writes a byte, the VM
 * stops; 0 means success, anything else a guest-reported failure. (QEMU turns
 * value v into process status (v << 1) | 1; we report it directly instead,
 * see the exit codes in main.c.) */
#include <stdio.h>

#include "vmm/device.h"
#include "vmm/ioport.h"
#include "vmm/vm.h"

#define DEBUG_EXIT_PORT 0xf4

static void debug_exit_pio(struct device *dev, uint16_t port, bool is_write, uint32_t *data,
			   int size)
{
	char msg[64];
	uint8_t v = (uint8_t)*data;

	(void)port;
	(void)size;
	if (!is_write) {
		*data = 0;
		return;
	}
	snprintf(msg, sizeof(msg), "guest exit code %u", v);
	vm_request_stop(dev->vm, v ? VM_STOP_GUEST_FAIL : VM_STOP_SUCCESS, v, msg);
}

static int debug_exit_realize(struct device *dev, struct err *e)
{
	return ioport_register(&dev->vm->pio, DEBUG_EXIT_PORT, 4, dev, e);
}

const struct device_ops debug_exit_ops = {
	.name = "debug-exit",
	.realize = debug_exit_realize,
	.pio = debug_exit_pio,
};
