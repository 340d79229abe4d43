/* Run state, pause/resume, control ops and the --control/--restore glue.
 *
 * Pause stops every vCPU thread the same way a VM stop does (immediate_exit
 * + kick signal, then join: each thread is out of KVM_RUN when joined), then
 * re-enters KVM_RUN once per vCPU with immediate_exit set: KVM completes an
 * I/O or MMIO exit (e.g. stores the data of an IN into RAX) only on the next
 * KVM_RUN, and returns EINTR at once without running the guest. Only then is
 * the vCPU state complete for a snapshot. Resume starts fresh threads. */
#include "vmm/session.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm/control/server.h"
#include "vmm/migration.h"
#include "vmm/ramhash.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void session_init(struct vmm_session *s, struct vm *vm)
{
	memset(s, 0, sizeof(*s));
	s->vm = vm;
	pthread_mutex_init(&s->lock, NULL);
	s->state = VMM__VM_STATE__VM_STATE_CREATED;
}

void session_destroy(struct vmm_session *s)
{
	pthread_mutex_destroy(&s->lock);
}

static bool stop_requested(struct vm *vm)
{
	bool r;

	pthread_mutex_lock(&vm->stop_lock);
	r = vm->stop_reason != VM_RUNNING;
	pthread_mutex_unlock(&vm->stop_lock);
	return r;
}

/* Called with s->lock held. */
static int start_locked(struct vmm_session *s, struct err *e)
{
	if (vcpus_start(s->vm, e) < 0)
		return -1;
	s->state = VMM__VM_STATE__VM_STATE_RUNNING;
	s->run_since_ns = now_ns();
	return 0;
}

/* Called with s->lock held. */
static int stop_locked(struct vmm_session *s, struct err *e)
{
	struct vm *vm = s->vm;
	int ret = 0;

	vcpus_stop(vm);
	if (s->state == VMM__VM_STATE__VM_STATE_RUNNING)
		s->run_ns += now_ns() - s->run_since_ns;
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		/* Normally each vCPU thread completed its last exit itself
		 * (vcpu.c); only an exit it did not return from needs it. */
		if (!v->io_pending)
			continue;
		v->io_pending = false;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
		if (ioctl(v->fd, KVM_RUN, 0) == 0 || errno != EINTR) {
			if (!ret)
				err_errno(e, errno, "vcpu %d: completing pending I/O", i);
			ret = -1;
		}
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
	}
	return ret;
}

void session_run(struct vmm_session *s)
{
	struct vm *vm = s->vm;
	struct err e = { { 0 } };

	pthread_mutex_lock(&s->lock);
	s->t_start_ns = now_ns();
	/* An incoming migration has already resumed the guest. */
	if (s->state != VMM__VM_STATE__VM_STATE_RUNNING && start_locked(s, &e) < 0) {
		pthread_mutex_unlock(&s->lock);
		vm_request_stop(vm, VM_STOP_ERROR, 0, e.msg);
		return;
	}
	pthread_mutex_unlock(&s->lock);

	pthread_mutex_lock(&vm->stop_lock);
	while (vm->stop_reason == VM_RUNNING)
		pthread_cond_wait(&vm->stop_cond, &vm->stop_lock);
	pthread_mutex_unlock(&vm->stop_lock);

	pthread_mutex_lock(&s->lock);
	vcpus_stop(vm);
	if (s->state == VMM__VM_STATE__VM_STATE_RUNNING)
		s->run_ns += now_ns() - s->run_since_ns;
	s->state = VMM__VM_STATE__VM_STATE_SHUTDOWN;
	pthread_mutex_unlock(&s->lock);
}

int session_pause(struct vmm_session *s, struct err *e)
{
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->state != VMM__VM_STATE__VM_STATE_RUNNING) {
		r = err_set(e, "VM is %s, not running", vmm_state_name(s->state));
	} else {
		r = stop_locked(s, e);
		s->state = VMM__VM_STATE__VM_STATE_PAUSED;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int session_resume(struct vmm_session *s, struct err *e)
{
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->state != VMM__VM_STATE__VM_STATE_PAUSED)
		r = err_set(e, "VM is %s, not paused", vmm_state_name(s->state));
	else if (stop_requested(s->vm))
		r = err_set(e, "VM is stopping");
	else
		r = start_locked(s, e);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int session_snapshot(struct vmm_session *s, const char *dir, struct err *e)
{
	uint64_t t0 = now_ns(), t1, t2;
	bool was_running;
	int r;

	pthread_mutex_lock(&s->lock);
	was_running = s->state == VMM__VM_STATE__VM_STATE_RUNNING;
	if (!was_running && s->state != VMM__VM_STATE__VM_STATE_PAUSED) {
		r = err_set(e, "VM is %s", vmm_state_name(s->state));
		goto out;
	}
	if (was_running && stop_locked(s, e) < 0) {
		r = -1;
		s->state = VMM__VM_STATE__VM_STATE_PAUSED;
		goto out;
	}
	s->state = VMM__VM_STATE__VM_STATE_PAUSED;
	t1 = now_ns();
	r = snap_save(s->vm, dir, e);
	t2 = now_ns();
	if (was_running && !stop_requested(s->vm)) {
		struct err e2 = { { 0 } };

		if (start_locked(s, &e2) < 0 && r == 0)
			r = err_set(e, "snapshot written, but resuming failed: %s", e2.msg);
	}
	if (r == 0)
		fprintf(stderr, "vmm: %s: snapshot to %s: %llu ms (pause %llu ms, write %llu ms)\n",
			s->vm->cfg.name, dir, (unsigned long long)((now_ns() - t0) / 1000000),
			(unsigned long long)((t1 - t0) / 1000000),
			(unsigned long long)((t2 - t1) / 1000000));
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- control ops ---- */

static int op_status(void *opaque, Vmm__VmStatus *out, struct err *e)
{
	struct vmm_session *s = opaque;
	uint64_t now = now_ns();

	(void)e;
	pthread_mutex_lock(&s->lock);
	out->name = (char *)s->vm->cfg.name;
	out->state = s->state;
	out->cpus = (uint32_t)s->vm->ncpus;
	out->mem_bytes = s->vm->mem.size;
	out->uptime_ms = s->t_start_ns ? (now - s->t_start_ns) / 1000000 : 0;
	out->guest_time_ms = (s->run_ns + (s->state == VMM__VM_STATE__VM_STATE_RUNNING ?
					    now - s->run_since_ns : 0)) / 1000000;
	pthread_mutex_unlock(&s->lock);
	migration_status_state(&out->state);
	if (out->state == VMM__VM_STATE__VM_STATE_PAUSED_AMBIGUOUS)
		out->state_reason = (char *)"migration outcome AMBIGUOUS: the destination may be "
			"running; resume here only if it is not";
	return 0;
}

static int op_pause(void *opaque, struct err *e)
{
	if (migration_check_idle("pause", e) < 0)
		return -1;
	return session_pause(opaque, e);
}

static int op_resume(void *opaque, struct err *e)
{
	if (migration_check_idle("resume", e) < 0 || session_resume(opaque, e) < 0)
		return -1;
	migration_resumed_by_operator();
	return 0;
}

static int op_quit(void *opaque, struct err *e)
{
	struct vmm_session *s = opaque;

	(void)e;
	/* Only signal the main thread; it stops the vCPUs and the server.
	 * After a successful migration Quit just ends the linger: the exit
	 * is the migration's success, not a guest poweroff. */
	if (migration_migrated())
		vm_request_stop(s->vm, VM_STOP_SUCCESS, 0, "migrated");
	else
		vm_request_stop(s->vm, VM_STOP_POWEROFF, 0, "quit requested on the control socket");
	return 0;
}

static int op_snapshot(void *opaque, const char *dir, struct err *e)
{
	if (migration_check_idle("snapshot", e) < 0)
		return -1;
	return session_snapshot(opaque, dir, e);
}

static const struct control_ops session_ops = {
	.status = op_status,
	.pause = op_pause,
	.resume = op_resume,
	.quit = op_quit,
	.snapshot = op_snapshot,
	.migrate = migration_op_start,
	.migrate_status = migration_op_status,
	.migrate_cancel = migration_op_cancel,
};

int vmm_session_main(struct vm *vm, struct vm_config *cfg, const char *restore_dir,
		     const char *control_path, const char *incoming, const char *secret_file)
{
	static struct snap_state snap;
	static struct vmm_session sess;
	struct control_server *srv = NULL;
	struct err e = { { 0 } };
	uint64_t t0 = now_ns();

	if (restore_dir) {
		if (snap_open(restore_dir, &snap, &e) < 0) {
			fprintf(stderr, "vmm: restore %s: %s\n", restore_dir, e.msg);
			return VMM_EXIT_USAGE;
		}
		snap_apply_config(&snap, cfg);
	}
	if (vm_create(vm, cfg, &e) < 0) {
		fprintf(stderr, "vmm: %s: %s\n", cfg->name, e.msg);
		return VMM_EXIT_ERROR;
	}
	if (restore_dir) {
		if (snap_restore(vm, restore_dir, &snap, &e) < 0) {
			fprintf(stderr, "vmm: %s: restore %s: %s\n", cfg->name, restore_dir, e.msg);
			vm_destroy(vm);
			return VMM_EXIT_ERROR;
		}
		fprintf(stderr, "vmm: %s: restored from %s in %llu ms\n", cfg->name, restore_dir,
			(unsigned long long)((now_ns() - t0) / 1000000));
	}
	session_init(&sess, vm);
	migration_setup(&sess, secret_file);
	if (incoming)
		sess.state = VMM__VM_STATE__VM_STATE_INCOMING;
	if (control_path && control_server_start(control_path, &session_ops, &sess, &srv, &e) < 0) {
		fprintf(stderr, "vmm: %s: --control %s: %s\n", cfg->name, control_path, e.msg);
		vm_destroy(vm);
		return VMM_EXIT_ERROR;
	}
	if (incoming) {
		if (migration_incoming(vm, incoming, secret_file, &e) < 0) {
			fprintf(stderr, "vmm: incoming: %s (guest discarded; the source keeps it)\n",
				e.msg);
			control_server_stop(srv);
			vm_destroy(vm);
			return VMM_EXIT_ERROR;
		}
		pthread_mutex_lock(&sess.lock);
		sess.state = VMM__VM_STATE__VM_STATE_PAUSED;
		pthread_mutex_unlock(&sess.lock);
		ramhash_log(vm, "before resume");
		if (session_resume(&sess, &e) < 0) {
			fprintf(stderr, "vmm: incoming: resume: %s\n", e.msg);
			control_server_stop(srv);
			vm_destroy(vm);
			return VMM_EXIT_ERROR;
		}
		migration_incoming_done(vm);
	}
	session_run(&sess);
	migration_shutdown();
	control_server_stop(srv);
	return 0;
}
