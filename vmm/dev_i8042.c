/* Minimal i8042 keyboard controller: enough for the reset line.
 * Command 0xfe on port 0x64 pulses CPU reset (Linux reboot=k, the default
 * fallback after ACPI). Status reads 0: input buffer empty (so reset loops
 * that wait for it proceed), no output data (so probes find no device). */
#include "vmm/device.h"
#include "vmm/ioport.h"
#include "vmm/vm.h"

#define I8042_DATA	0x60
#define I8042_CMD	0x64
#define I8042_CMD_RESET	0xfe

static void i8042_pio(struct device *dev, uint16_t port, bool is_write, uint32_t *data, int size)
{
	(void)size;
	if (!is_write) {
		*data = 0;
		return;
	}
	if (port == I8042_CMD && (uint8_t)*data == I8042_CMD_RESET)
		vm_request_stop(dev->vm, VM_STOP_REBOOT, 0, "i8042 reset");
}

static int i8042_realize(struct device *dev, struct err *e)
{
	if (ioport_register(&dev->vm->pio, I8042_DATA, 1, dev, e) < 0)
		return -1;
	return ioport_register(&dev->vm->pio, I8042_CMD, 1, dev, e);
}

const struct device_ops i8042_ops = {
	.name = "i8042",
	.realize = i8042_realize,
	.pio = i8042_pio,
};
