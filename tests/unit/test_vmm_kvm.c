/* KVM-backed checks (skipped without a usable /dev/kvm): vCPU state
 * save -> modify -> load round trip, and dirty logging of a guest write
 * made by a tiny real-mode program. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/dirty_log.h"
#include "vmm/kvm.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

struct fixture {
	struct vm vm;
	int steps;	/* how far setup got, for teardown */
};

static int setup(void **st)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct err e;
	int fd = open("/dev/kvm", O_RDWR);

	if (fd < 0) {
		free(f);
		*st = NULL;
		return 0;
	}
	close(fd);
	config_defaults(&f->vm.cfg);
	f->vm.cfg.mem_size = 16ULL << 20;
	f->vm.cfg.name = "unit";
	f->vm.ncpus = 1;
	f->vm.kvm_fd = f->vm.vm_fd = -1;
	if (kvm_open_vm(&f->vm, &e) < 0)
		goto fail;
	f->steps = 1;
	if (kvm_setup_x86(&f->vm, &e) < 0 ||
	    mem_init(&f->vm.mem, f->vm.vm_fd, f->vm.cfg.mem_size, "unit", &e) < 0)
		goto fail;
	f->steps = 2;
	if (vcpus_create(&f->vm, &e) < 0)
		goto fail;
	f->steps = 3;
	*st = f;
	return 0;
fail:
	print_message("KVM setup failed: %s\n", e.msg);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	struct fixture *f = *st;

	if (!f)
		return 0;
	if (f->steps >= 3)
		vcpus_destroy(&f->vm);
	if (f->steps >= 2)
		mem_exit(&f->vm.mem);
	if (f->steps >= 1)
		kvm_close_vm(&f->vm);
	free(f);
	return 0;
}

#define NEED_KVM(f) do { if (!(f) || (f)->steps < 3) { skip(); } } while (0)

static void test_state_roundtrip(void **st)
{
	struct fixture *f = *st;
	struct vcpu_state *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct vcpu *v;
	struct err e;

	NEED_KVM(f);
	v = &f->vm.vcpus[0];
	assert_int_equal(vcpu_state_save(v, a, &e), 0);
	assert_true(a->nmsrs > 0);
	a->regs.rax = 0x1234567890abcdefULL;
	a->regs.rip = 0x4000;
	a->sregs.cr0 |= 1;	/* PE: protected mode */
	assert_int_equal(vcpu_state_load(v, a, &e), 0);
	assert_int_equal(vcpu_state_save(v, b, &e), 0);
	assert_true(b->regs.rax == a->regs.rax && b->regs.rip == 0x4000);
	assert_true(b->sregs.cr0 & 1);
	assert_int_equal(b->nmsrs, a->nmsrs);
	assert_int_equal(b->mp_state.mp_state, a->mp_state.mp_state);
	free(a);
	free(b);
}

static void test_dirty_log(void **st)
{
	struct fixture *f = *st;
	/* mov byte [0x8000], 0x5a ; out 0xf4, al ; hlt */
	static const uint8_t code[] = { 0xc6, 0x06, 0x00, 0x80, 0x5a, 0xe6, 0xf4, 0xf4 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct bitmap dirty;
	struct vcpu *v;
	struct err e;

	NEED_KVM(f);
	v = &f->vm.vcpus[0];
	memcpy(f->vm.mem.ram + 0x1000, code, sizeof(code));
	assert_int_equal(dirty_log_start(&f->vm, &e), 0);
	assert_int_equal(bitmap_init(&dirty, dirty_log_npages(&f->vm), &e), 0);
	/* First sync drains the initial state (all-set with INITIALLY_SET). */
	assert_int_equal(dirty_log_sync(&f->vm, &dirty, &e), 0);
	bitmap_clear_all(&dirty);

	assert_int_equal(ioctl(v->fd, KVM_GET_SREGS, &sregs), 0);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	sregs.cr0 &= ~1ULL;
	assert_int_equal(ioctl(v->fd, KVM_SET_SREGS, &sregs), 0);
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0x1000;
	regs.rflags = 2;
	assert_int_equal(ioctl(v->fd, KVM_SET_REGS, &regs), 0);
	assert_int_equal(ioctl(v->fd, KVM_RUN, 0), 0);
	assert_int_equal(v->run->exit_reason, KVM_EXIT_IO);
	assert_int_equal(v->run->io.port, 0xf4);
	assert_int_equal(f->vm.mem.ram[0x8000], 0x5a);

	assert_int_equal(dirty_log_sync(&f->vm, &dirty, &e), 0);
	assert_true(bitmap_test(&dirty, 8));	/* page 0x8000 */
	/* Cleared in KVM: a second sync without guest writes adds nothing new
	 * for that page. */
	bitmap_clear_all(&dirty);
	assert_int_equal(dirty_log_sync(&f->vm, &dirty, &e), 0);
	assert_false(bitmap_test(&dirty, 8));
	assert_int_equal(dirty_log_stop(&f->vm, &e), 0);
	bitmap_free(&dirty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_dirty_log),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
