/* MC146818 CMOS RTC (ports 0x70/0x71), read-only clock from host time.
 * Guests spin while "update in progress" (register A bit 7) is set, so an
 * absent RTC (reads of 0xff) could hang them; UIP always reads 0 here.
 * CMOS NVRAM bytes are kept so guests can store and read them back. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/vmstate.h"
#include "vmm/device.h"
#include "vmm/ioport.h"
#include "vmm/vm.h"

#define RTC_INDEX	0x70
#define RTC_DATA	0x71
#define RTC_REG_A	0x0a
#define RTC_REG_B	0x0b
#define RTC_REG_C	0x0c
#define RTC_REG_D	0x0d
#define RTC_B_24H	0x02
#define RTC_B_BINARY	0x04
#define RTC_D_VRT	0x80	/* valid RAM and time */

struct rtc {
	uint8_t index;
	uint8_t cmos[128];
};

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_read(struct rtc *r)
{
	time_t now = time(NULL);
	struct tm tm;
	bool bin = r->cmos[RTC_REG_B] & RTC_B_BINARY;
	int v;

	gmtime_r(&now, &tm);
	switch (r->index) {
	case 0x00: v = tm.tm_sec; break;
	case 0x02: v = tm.tm_min; break;
	case 0x04: v = tm.tm_hour; break;
	case 0x06: v = tm.tm_wday + 1; break;
	case 0x07: v = tm.tm_mday; break;
	case 0x08: v = tm.tm_mon + 1; break;
	case 0x09: v = tm.tm_year % 100; break;
	case 0x32: v = (tm.tm_year + 1900) / 100; break;	/* century */
	case RTC_REG_A: return r->cmos[RTC_REG_A] & 0x7f;	/* UIP = 0 */
	case RTC_REG_C: return 0;
	case RTC_REG_D: return RTC_D_VRT;
	default: return r->cmos[r->index];
	}
	return bin ? (uint8_t)v : bcd(v);
}

static void rtc_pio(struct device *dev, uint16_t port, bool is_write, uint32_t *data, int size)
{
	struct rtc *r = dev->priv;

	(void)size;
	if (port == RTC_INDEX) {
		if (is_write)
			r->index = (uint8_t)*data & 0x7f;	/* bit 7: NMI mask */
		else
			*data = 0xff;
		return;
	}
	if (is_write) {
		/* Time registers are read-only; everything else is NVRAM. */
		if (r->index > 0x09 && r->index != RTC_REG_C && r->index != RTC_REG_D)
			r->cmos[r->index] = (uint8_t)*data;
	} else {
		*data = rtc_read(r);
	}
}

static int rtc_realize(struct device *dev, struct err *e)
{
	struct rtc *r = calloc(1, sizeof(*r));

	if (!r)
		return err_set(e, "out of memory");
	dev->priv = r;
	if (ioport_register(&dev->vm->pio, RTC_INDEX, 2, dev, e) < 0) {
		free(r);
		dev->priv = NULL;
		return -1;
	}
	return 0;
}

static void rtc_reset(struct device *dev)
{
	struct rtc *r = dev->priv;

	r->index = 0;
	r->cmos[RTC_REG_A] = 0x26;	/* 32.768 kHz divider, 1024 Hz rate */
	r->cmos[RTC_REG_B] = RTC_B_24H;
}

/* State payload v1: u8 index | cmos[128]. */
static int rtc_save(struct device *dev, struct vmstate_writer *w, struct err *e)
{
	struct rtc *r = dev->priv;

	if (vmstate_put_u8(w, r->index, e) < 0)
		return -1;
	return vmstate_put(w, r->cmos, sizeof(r->cmos), e);
}

static int rtc_load(struct device *dev, const void *payload, size_t len, uint16_t version,
		    struct err *e)
{
	struct rtc *r = dev->priv;
	const uint8_t *b = payload;

	if (version != 1 || len != 1 + sizeof(r->cmos))
		return err_set(e, "bad state (version %u, %zu bytes)", version, len);
	r->index = b[0] & 0x7f;
	memcpy(r->cmos, b + 1, sizeof(r->cmos));
	return 0;
}

static void rtc_exit(struct device *dev)
{
	free(dev->priv);
	dev->priv = NULL;
}

const struct device_ops rtc_ops = {
	.name = "rtc",
	.realize = rtc_realize,
	.reset = rtc_reset,
	.pio = rtc_pio,
	.save = rtc_save,
	.load = rtc_load,
	.exit = rtc_exit,
};
