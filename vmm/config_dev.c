/* Parsers for the device options: --disk, --net (pure, unit tested). */
#include "vmm/config.h"

#include <ctype.h>
#include <string.h>

int config_parse_disk(const char *s, struct vm_disk_cfg *d, struct err *e)
{
	const char *comma;

	memset(d, 0, sizeof(*d));
	if (!s || !*s)
		return err_set(e, "empty disk path");
	comma = strrchr(s, ',');
	if (comma && !strcmp(comma, ",ro")) {
		d->readonly = true;
		if (comma == s)
			return err_set(e, "empty disk path");
		d->path = strndup(s, (size_t)(comma - s));
		if (!d->path)
			return err_set(e, "out of memory");
		return 0;
	}
	d->path = s;	/* anything else is part of the path */
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int config_parse_mac(const char *s, uint8_t mac[6], struct err *e)
{
	if (!s || strlen(s) != 17)
		return err_set(e, "invalid MAC '%s' (want xx:xx:xx:xx:xx:xx)", s ? s : "");
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return err_set(e, "invalid MAC '%s' (want xx:xx:xx:xx:xx:xx)", s);
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mac[0] & 1)
		return err_set(e, "invalid MAC '%s': multicast bit set", s);
	return 0;
}

int config_parse_net(const char *s, struct vm_net_cfg *n, struct err *e)
{
	char buf[128], *tok, *save = NULL;

	memset(n, 0, sizeof(*n));
	if (!s || strlen(s) >= sizeof(buf))
		return err_set(e, "invalid net spec");
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "tap=", 4)) {
			size_t len = strlen(tok + 4);

			if (!len || len >= sizeof(n->ifname))
				return err_set(e, "invalid tap name '%s' (1..15 characters)", tok + 4);
			memcpy(n->ifname, tok + 4, len + 1);
		} else if (!strncmp(tok, "mac=", 4)) {
			if (config_parse_mac(tok + 4, n->mac, e) < 0)
				return -1;
			n->has_mac = true;
		} else {
			return err_set(e, "unknown net option '%s' (want tap=IFNAME[,mac=MAC])", tok);
		}
	}
	if (!n->ifname[0])
		return err_set(e, "'%s': tap=IFNAME is required", s);
	return 0;
}
