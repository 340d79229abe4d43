/* vmm/mig_compat: the blob a source sends at HELLO and the destination's
 * verdict, on hand-built struct vm (no KVM needed). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <cmocka.h>

#include "vmm/device.h"
#include "vmm/mig_compat.h"
#include "vmm/vm.h"

static const struct device_ops ops_serial = { .name = "serial" };
static const struct device_ops ops_blk = { .name = "virtio-blk" };
static const struct device_ops ops_net = { .name = "virtio-net" };

struct fake {
	struct vm vm;
	struct device devs[4];
	char disk[64];
};

/* A VM with ncpus vCPUs, 64 MiB, serial + virtio-blk on a 1 MiB image (+
 * virtio-net if net), CPUID leaf 1 ECX = ecx1 and vendor AuthenticAMD. */
static void fake_init(struct fake *f, int ncpus, int net, uint32_t ecx1)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 2 * sizeof(c->entries[0]));
	FILE *img;

	memset(f, 0, sizeof(*f));
	snprintf(f->disk, sizeof(f->disk), "/tmp/test_mig_compat.%d.img", (int)getpid());
	img = fopen(f->disk, "w");
	assert_non_null(img);
	assert_int_equal(fseek(img, (1 << 20) - 1, SEEK_SET), 0);
	fputc(0, img);
	fclose(img);
	f->vm.cfg.name = "t";
	f->vm.cfg.ndisks = 1;
	f->vm.cfg.disks[0].path = f->disk;
	f->vm.ncpus = ncpus;
	f->vm.mem.size = 64 << 20;
	f->devs[0].ops = &ops_serial;
	f->devs[1].ops = &ops_blk;
	f->devs[2].ops = &ops_net;
	f->vm.ndevs = net ? 3 : 2;
	f->vm.devs = f->devs;
	assert_non_null(c);
	c->nent = 2;
	c->entries[0].function = 0;
	memcpy(&c->entries[0].ebx, "Auth", 4);
	memcpy(&c->entries[0].edx, "enti", 4);
	memcpy(&c->entries[0].ecx, "cAMD", 4);
	c->entries[1].function = 1;
	c->entries[1].ecx = ecx1;
	f->vm.supported_cpuid = c;
}

static void fake_fini(struct fake *f)
{
	free(f->vm.supported_cpuid);
	unlink(f->disk);
}

/* 0 if dst accepts src, else -1 with the message in e. */
static int verdict(struct fake *src, struct fake *dst, struct err *e)
{
	uint8_t blob[4096];
	size_t len;

	assert_int_equal(mig_compat_info(&src->vm, blob, sizeof(blob), &len, e), 0);
	return mig_compat_check(&dst->vm, blob, len, e);
}

static void test_same_accepted(void **st)
{
	struct fake a, b;
	struct err e = { { 0 } };

	(void)st;
	fake_init(&a, 2, 1, 0x1234);
	fake_init(&b, 2, 1, 0x1234);
	assert_int_equal(verdict(&a, &b, &e), 0);
	fake_fini(&a);
	fake_fini(&b);
}

static void test_cpus_refused(void **st)
{
	struct fake a, b;
	struct err e = { { 0 } };

	(void)st;
	fake_init(&a, 2, 1, 0);
	fake_init(&b, 1, 1, 0);
	assert_int_equal(verdict(&a, &b, &e), -1);
	assert_non_null(strstr(e.msg, "vCPU count: source 2, this VM 1"));
	fake_fini(&a);
	fake_fini(&b);
}

static void test_devices_refused(void **st)
{
	struct fake a, b;
	struct err e = { { 0 } };

	(void)st;
	fake_init(&a, 2, 1, 0);
	fake_init(&b, 2, 0, 0);
	assert_int_equal(verdict(&a, &b, &e), -1);
	assert_non_null(strstr(e.msg, "devices: source serial,virtio-blk,virtio-net, this VM "
				      "serial,virtio-blk"));
	fake_fini(&a);
	fake_fini(&b);
}

static void test_cpuid_subset(void **st)
{
	struct fake a, b;
	struct err e = { { 0 } };

	(void)st;
	/* The destination offers more than the source's guest saw: fine. */
	fake_init(&a, 1, 1, 0x0101);
	fake_init(&b, 1, 1, 0x0111);
	assert_int_equal(verdict(&a, &b, &e), 0);
	/* The other way round: bit 4 of leaf 1 ECX is missing here. */
	assert_int_equal(verdict(&b, &a, &e), -1);
	assert_non_null(strstr(e.msg, "missing bits 00000010"));
	fake_fini(&a);
	fake_fini(&b);
}

static void test_garbage_refused(void **st)
{
	struct fake a;
	struct err e = { { 0 } };
	static const uint8_t junk[] = "v=1\ncpus";
	static const uint8_t bin[] = { 'v', '=', 1, '\n' };

	(void)st;
	fake_init(&a, 1, 1, 0);
	assert_int_equal(mig_compat_check(&a.vm, junk, sizeof(junk) - 1, &e), -1);
	assert_non_null(strstr(e.msg, "not key=value"));
	assert_int_equal(mig_compat_check(&a.vm, bin, sizeof(bin), &e), -1);
	assert_int_equal(mig_compat_check(&a.vm, NULL, 0, &e), -1);	/* empty blob */
	assert_non_null(strstr(e.msg, "version none"));
	fake_fini(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_accepted),
		cmocka_unit_test(test_cpus_refused),
		cmocka_unit_test(test_devices_refused),
		cmocka_unit_test(test_cpuid_subset),
		cmocka_unit_test(test_garbage_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
