/* --disk / --net parsing and the DSDT PCI root bridge AML. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/acpi_pci.h"
#include "vmm/config.h"

static void test_disk(void **st)
{
	struct vm_disk_cfg d;
	struct err e;

	(void)st;
	assert_int_equal(config_parse_disk("/a/b.img", &d, &e), 0);
	assert_string_equal(d.path, "/a/b.img");
	assert_false(d.readonly);
	assert_int_equal(config_parse_disk("/a/b.img,ro", &d, &e), 0);
	assert_string_equal(d.path, "/a/b.img");
	assert_true(d.readonly);
	assert_int_equal(config_parse_disk("x,y", &d, &e), 0);	/* commas in paths */
	assert_string_equal(d.path, "x,y");
	assert_int_equal(config_parse_disk("", &d, &e), -1);
	assert_int_equal(config_parse_disk(",ro", &d, &e), -1);
}

static void test_net(void **st)
{
	struct vm_net_cfg n;
	struct err e;
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

	(void)st;
	assert_int_equal(config_parse_net("tap=tap0", &n, &e), 0);
	assert_string_equal(n.ifname, "tap0");
	assert_false(n.has_mac);
	assert_int_equal(config_parse_net("tap=t1,mac=52:54:00:AB:cd:ef", &n, &e), 0);
	assert_string_equal(n.ifname, "t1");
	assert_true(n.has_mac);
	assert_memory_equal(n.mac, mac, 6);
	assert_int_equal(config_parse_net("mac=52:54:00:ab:cd:ef", &n, &e), -1);
	assert_non_null(strstr(e.msg, "tap=IFNAME is required"));
	assert_int_equal(config_parse_net("tap=t0,mac=52:54:00:ab:cd", &n, &e), -1);
	assert_non_null(strstr(e.msg, "invalid MAC"));
	assert_int_equal(config_parse_net("tap=t0,mac=01:00:5e:00:00:01", &n, &e), -1);
	assert_non_null(strstr(e.msg, "multicast"));
	assert_int_equal(config_parse_net("tap=t0,mac=52-54-00-ab-cd-ef", &n, &e), -1);
	assert_int_equal(config_parse_net("tap=0123456789abcdef", &n, &e), -1);
	assert_int_equal(config_parse_net("tap=t0,queues=2", &n, &e), -1);
	assert_non_null(strstr(e.msg, "unknown net option"));
}

static void test_pci_aml(void **st)
{
	uint8_t buf[4096], small[16];
	size_t n;

	(void)st;
	n = acpi_pci_aml(buf, sizeof(buf));
	assert_true(n > 100);
	assert_int_equal(buf[0], 0x10);				/* Scope */
	assert_non_null(memmem(buf, n, "\\_SB_", 5));
	assert_non_null(memmem(buf, n, "PCI0", 4));
	assert_non_null(memmem(buf, n, "\x0c\x41\xd0\x0a\x03", 5));	/* PNP0A03 */
	assert_non_null(memmem(buf, n, "_PRT", 4));
	assert_non_null(memmem(buf, n, "\x79\x00", 2));		/* _CRS end tag */
	assert_int_equal(acpi_pci_aml(small, sizeof(small)), 0);
	assert_int_equal(acpi_pci_intx_gsi(1, 0), 17);
	assert_int_equal(acpi_pci_intx_gsi(7, 1), 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_net),
		cmocka_unit_test(test_pci_aml),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
