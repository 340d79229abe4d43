/* ACPI fixed-hardware PM1 registers and the FADT reset register (ports in
 * vmm/acpi.h). Writing SLP_TYP=5 with SLP_EN to PM1a_CNT powers off; writing
 * RESET_VALUE to the reset port reboots. PM1 control always reads SCI_EN so
 * the OS sees ACPI mode; status reads zero (no events ever fire), enable is
 * plain storage. */
#include <stdlib.h>

#include "vmm/acpi.h"
#include "lib/le.h"
#include "lib/vmstate.h"
#include "vmm/device.h"
#include "vmm/ioport.h"
#include "vmm/vm.h"

struct acpi_pm {
	uint16_t cnt;
	uint16_t en;	/* PM1 enable: stored, since the OS reads it back */
};

static struct acpi_pm *pm_of(struct device *dev)
{
	return dev->priv;
}

static void acpi_pm_pio(struct device *dev, uint16_t port, bool is_write, uint32_t *data, int size)
{
	struct acpi_pm *pm = pm_of(dev);

	(void)size;
	if (port == ACPI_RESET_PORT) {
		if (is_write && (uint8_t)*data == ACPI_RESET_VALUE)
			vm_request_stop(dev->vm, VM_STOP_REBOOT, 0, "ACPI reset");
		else if (!is_write)
			*data = 0;
		return;
	}
	if (port >= ACPI_PM1A_CNT && port < ACPI_PM1A_CNT + 2) {
		if (!is_write) {
			*data = (pm->cnt | PM1_CNT_SCI_EN) >> (8 * (port - ACPI_PM1A_CNT));
			return;
		}
		if (port == ACPI_PM1A_CNT && size >= 2)
			pm->cnt = (uint16_t)*data;
		else if (port == ACPI_PM1A_CNT)
			pm->cnt = (uint16_t)((pm->cnt & 0xff00) | (uint8_t)*data);
		else
			pm->cnt = (uint16_t)((pm->cnt & 0x00ff) | (uint8_t)*data << 8);
		if ((pm->cnt & PM1_CNT_SLP_EN) && PM1_CNT_SLP_TYP(pm->cnt) == ACPI_S5_TYP)
			vm_request_stop(dev->vm, VM_STOP_POWEROFF, 0, "ACPI S5");
		pm->cnt &= (uint16_t)~PM1_CNT_SLP_EN;	/* write-only bit */
		return;
	}
	if (port >= ACPI_PM1A_EVT + 2) {	/* PM1 enable, bytes 2-3 */
		int sh = 8 * (port - ACPI_PM1A_EVT - 2);
		uint32_t mask = (size >= 2 ? 0xffffu : 0xffu) << sh;

		if (is_write)
			pm->en = (uint16_t)((pm->en & ~mask) | ((*data << sh) & mask));
		else
			*data = pm->en >> sh;
		return;
	}
	if (!is_write)		/* PM1 status: no events ever latch */
		*data = 0;
}

static int acpi_pm_realize(struct device *dev, struct err *e)
{
	dev->priv = calloc(1, sizeof(struct acpi_pm));
	if (!dev->priv)
		return err_set(e, "out of memory");
	if (ioport_register(&dev->vm->pio, ACPI_PM1A_EVT, 6, dev, e) < 0 ||
	    ioport_register(&dev->vm->pio, ACPI_RESET_PORT, 1, dev, e) < 0) {
		ioport_unregister_dev(&dev->vm->pio, dev);
		free(dev->priv);
		dev->priv = NULL;
		return -1;
	}
	return 0;
}

static void acpi_pm_reset(struct device *dev)
{
	pm_of(dev)->cnt = 0;
	pm_of(dev)->en = 0;
}

/* State payload v1: u16 cnt | u16 en. */
static int acpi_pm_save(struct device *dev, struct vmstate_writer *w, struct err *e)
{
	if (vmstate_put_u16(w, pm_of(dev)->cnt, e) < 0)
		return -1;
	return vmstate_put_u16(w, pm_of(dev)->en, e);
}

static int acpi_pm_load(struct device *dev, const void *payload, size_t len, uint16_t version,
			struct err *e)
{
	if (version != 1 || len != 4)
		return err_set(e, "bad state (version %u, %zu bytes)", version, len);
	pm_of(dev)->cnt = le_get16(payload);
	pm_of(dev)->en = le_get16((const uint8_t *)payload + 2);
	return 0;
}

static void acpi_pm_exit(struct device *dev)
{
	free(dev->priv);
	dev->priv = NULL;
}

const struct device_ops acpi_pm_ops = {
	.name = "acpi-pm",
	.realize = acpi_pm_realize,
	.reset = acpi_pm_reset,
	.pio = acpi_pm_pio,
	.save = acpi_pm_save,
	.load = acpi_pm_load,
	.exit = acpi_pm_exit,
};
