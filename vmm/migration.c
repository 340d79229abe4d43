/* Live migration glue: migrate/ engine <-> struct vm (see migration.h).
 *
 * The ops and THE ORDERING CONTRACT of migrate/vmif.h:
 *  - dirty_start: KVM_MEM_LOG_DIRTY_PAGES on every slot (manual protect /
 *    INITIALLY_SET when KVM has them: vmm/dirty_log.c), then the VMM's own
 *    DMA-dirty bitmap is emptied (round 0 sends everything anyway).
 *  - dirty_sync: KVM_GET_DIRTY_LOG (+ KVM_CLEAR_DIRTY_LOG) for every slot,
 *    each cleared before we return, then the DMA bitmap harvested with
 *    atomic exchanges (a device bit set concurrently lands here or next
 *    time, never lost). Devices mark a page after writing it.
 *  - pause: the session's pause (every vCPU out of KVM_RUN with pending
 *    I/O completed), then every device lock is taken and held until resume
 *    (or until the source is done): the I/O thread (tap RX, ioeventfds)
 *    cannot write RAM or change device state after the final sync, and
 *    save_state (snap_save_state) needs exactly those locks held.
 *  - save_state / load_state: the snapshot state file (vmm/snapshot.h)
 *    without RAM; load validates with snap_state_parse and applies restore
 *    steps 2-7 (vCPUs, irqchip, PIT, devices, clock).
 *  - set_throttle: vm->throttle_pct; a throttle thread kicks every vCPU out
 *    of KVM_RUN every 10 ms and each sleeps pct% of the period (vcpu.c).
 *  - announce: per NIC a RARP for its MAC sent out of the tap by the VMM
 *    (like QEMU's self-announce), then virtio_net_announce (asks the guest
 *    to announce; no-op unless it negotiated VIRTIO_NET_F_GUEST_ANNOUNCE). */
#include "vmm/migration.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/auth.h"
#include "lib/cpuacct.h"
#include "migrate/recv.h"
#include "migrate/send.h"
#include "vmm/dev_virtio.h"
#include "vmm/dirty_log.h"
#include "vmm/mig_compat.h"
#include "vmm/ramhash.h"
#include "vmm/session.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define CONNECT_TIMEOUT_MS	5000
/* Receive buffer of the destination's socket (the kernel doubles it). What
 * it holds when the source pauses is processed during the downtime, so it
 * is bounded instead of autotuned to megabytes; 1 MiB in flight still
 * covers the bandwidth-delay product of a LAN at 10 Gb/s. */
#define INCOMING_RCVBUF		(512 << 10)
#define THROTTLE_PERIOD_NS	10000000L
/* After a successful migration the source keeps answering migrate-status
 * (final stats, outcome SUCCEEDED) until Quit or this long, so a poller
 * (agentd) reads the final figures before the process goes away. */
#define MIGRATION_LINGER_MS	5000

struct migctx {
	struct vmm_session *sess;
	const char *default_secret;
	pthread_mutex_t lock;		/* the fields below up to 'stats' */
	int active;			/* migration thread running */
	int joinable;
	int ambiguous;			/* last outcome AMBIGUOUS, not resumed since */
	int succeeded;
	int ran;
	char to[300];
	struct err error;
	struct mig_stats stats;
	volatile int cancel;
	pthread_t thread;
	int fd;
	struct auth_secret secret;
	struct mig_params params;
	/* ops state (migration thread only) */
	int paused_by_us, devs_locked;
	uint64_t pause_vcpus_us, pause_devs_us;	/* last pause: vCPUs stopped, device locks */
	pthread_t thr;
	int thr_on;
	volatile int thr_stop;
	/* destination */
	struct mig_recv_stats rst;
	uint64_t load_us;		/* load_state duration */
	uint64_t t_go_ns;		/* mig_recv returned (GO received) */
	char cpu_line[160];		/* CPU spent receiving (cpuacct) */
};

static struct migctx mc = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- mig_vm_ops ---- */

static int op_ram_regions(void *opaque, struct mig_ram *r, int *n, struct err *e)
{
	struct vm *vm = opaque;

	if (vm->mem.nregions > *n)
		return err_set(e, "%d RAM regions, room for %d", vm->mem.nregions, *n);
	for (int i = 0; i < vm->mem.nregions; i++) {
		r[i].host = vm->mem.regions[i].host;
		r[i].gpa = vm->mem.regions[i].gpa;
		r[i].size = vm->mem.regions[i].size;
		r[i].memfd = vm->mem.memfd;
		r[i].memfd_off = vm->mem.regions[i].memfd_off;
	}
	*n = vm->mem.nregions;
	return 0;
}

static int op_dirty_start(void *opaque, struct err *e)
{
	struct vm *vm = opaque;

	if (dirty_log_start(vm, e) < 0)
		return -1;
	bitmap_clear_all(&vm->dma_dirty);
	return 0;
}

static int op_dirty_sync(void *opaque, struct bitmap *out, struct err *e)
{
	struct vm *vm = opaque;

	/* KVM first (fetched and re-protected before we return), then the
	 * VMM's DMA bits: both are complete for everything written before
	 * this call, and anything later shows up in the next sync. */
	if (dirty_log_sync(vm, out, e) < 0)
		return -1;
	if (bitmap_harvest(out, &vm->dma_dirty, e) < 0)
		return err_prefix(e, "DMA dirty bitmap");
	return 0;
}

static int op_dirty_stop(void *opaque, struct err *e)
{
	return dirty_log_stop(opaque, e);
}

static void lock_devs(struct vm *vm)
{
	for (int i = 0; i < vm->ndevs; i++)
		pthread_mutex_lock(&vm->devs[i].lock);
}

static void unlock_devs(struct vm *vm)
{
	for (int i = vm->ndevs - 1; i >= 0; i--)
		pthread_mutex_unlock(&vm->devs[i].lock);
}

static int op_pause(void *opaque, struct err *e)
{
	struct vm *vm = opaque;
	struct vmm_session *s = mc.sess;
	uint64_t t0, t1;
	int running, r = 0;

	if (mc.devs_locked)
		return 0;
	pthread_mutex_lock(&s->lock);
	running = s->state == VMM__VM_STATE__VM_STATE_RUNNING;
	pthread_mutex_unlock(&s->lock);
	t0 = now_ns();
	if (running) {
		mc.paused_by_us = 1;	/* even a failed pause leaves it PAUSED */
		r = session_pause(s, e);
	}
	t1 = now_ns();
	lock_devs(vm);
	mc.devs_locked = 1;
	mc.pause_vcpus_us = (t1 - t0) / 1000;
	mc.pause_devs_us = (now_ns() - t1) / 1000;
	return r;
}

static int op_resume(void *opaque, struct err *e)
{
	struct vm *vm = opaque;

	if (mc.devs_locked) {
		unlock_devs(vm);
		mc.devs_locked = 0;
	}
	if (mc.paused_by_us) {
		mc.paused_by_us = 0;
		return session_resume(mc.sess, e);
	}
	return 0;
}

static int op_save_state(void *opaque, struct vmstate_writer *w, struct err *e)
{
	if (!mc.devs_locked)
		return err_set(e, "save_state while not paused");
	ramhash_log(opaque, "at pause");	/* after the final dirty sync */
	return snap_save_state(opaque, w, e);
}

static int op_load_state(void *opaque, const uint8_t *buf, size_t len, struct err *e)
{
	struct vm *vm = opaque;
	struct snap_state st;
	uint64_t t0;
	void *copy;
	int r;

	if (len > SNAP_STATE_MAX)
		return err_set(e, "device state of %zu bytes is larger than any state", len);
	ramhash_log(vm, "as received");	/* every page is in, nothing loaded yet */
	copy = malloc(len ? len : 1);
	if (!copy)
		return err_set(e, "out of memory");
	memcpy(copy, buf, len);
	memset(&st, 0, sizeof(st));
	t0 = now_ns();
	if (snap_state_parse(copy, len, &st, e) < 0) {
		free(copy);
		return -1;
	}
	/* HELLO already matched the RAM layout; the machine section must too. */
	if (st.m.nregions != (uint32_t)vm->mem.nregions)
		r = err_set(e, "source has %u RAM regions, this VM %d", st.m.nregions,
			    vm->mem.nregions);
	else
		r = snap_restore_state(vm, &st, e);
	snap_state_free(&st);	/* frees copy */
	mc.load_us = (now_ns() - t0) / 1000;
	return r;
}

static void *throttle_thread(void *arg)
{
	struct vm *vm = arg;
	struct timespec ts = { 0, THROTTLE_PERIOD_NS };

	pthread_setname_np(pthread_self(), "vmm-throttle");
	while (!mc.thr_stop) {
		nanosleep(&ts, NULL);
		/* Under the session lock: vCPU threads are not being joined
		 * or started while we signal them. */
		pthread_mutex_lock(&mc.sess->lock);
		vcpus_kick(vm);
		pthread_mutex_unlock(&mc.sess->lock);
	}
	return NULL;
}

static int op_set_throttle(void *opaque, int pct, struct err *e)
{
	struct vm *vm = opaque;

	if (pct < 0 || pct > 99)
		return err_set(e, "throttle %d%% out of range", pct);
	__atomic_store_n(&vm->throttle_pct, pct, __ATOMIC_RELAXED);
	if (pct && !mc.thr_on) {
		mc.thr_stop = 0;
		int r = pthread_create(&mc.thr, NULL, throttle_thread, vm);

		if (r) {
			__atomic_store_n(&vm->throttle_pct, 0, __ATOMIC_RELAXED);
			return err_errno(e, r, "throttle thread");
		}
		mc.thr_on = 1;
	} else if (!pct && mc.thr_on) {
		mc.thr_stop = 1;
		pthread_join(mc.thr, NULL);
		mc.thr_on = 0;
	}
	return 0;
}

static int op_announce(void *opaque)
{
	struct vm *vm = opaque;

	for (int i = 0; i < vm->ndevs; i++) {
		struct device *d = &vm->devs[i];

		if (d->ops != &virtio_net_dev_ops || !d->realized || !d->priv)
			continue;
		pthread_mutex_lock(&d->lock);
		dev_virtio_announce(d);
		pthread_mutex_unlock(&d->lock);
	}
	return 0;
}

const struct mig_vm_ops vmm_mig_ops = {
	.ram_regions = op_ram_regions,
	.dirty_start = op_dirty_start,
	.dirty_sync = op_dirty_sync,
	.dirty_stop = op_dirty_stop,
	.pause = op_pause,
	.resume = op_resume,
	.save_state = op_save_state,
	.load_state = op_load_state,
	.set_throttle = op_set_throttle,
	.announce = op_announce,
	.compat_info = mig_compat_info,
	.compat_check = mig_compat_check,
};

/* ---- source ---- */

void migration_setup(struct vmm_session *s, const char *secret_file)
{
	struct err e;

	mc.sess = s;
	mc.default_secret = secret_file;
	/* A peer that vanishes mid-stream must give EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	mig_stats_init(&mc.stats);
	/* Pay libcrypto's lazy setup now, not in a migration's setup phase
	 * (a failure here shows again, with context, when migrating). */
	if (auth_init(&e) < 0)
		fprintf(stderr, "vmm: %s\n", e.msg);
}

static int split_hostport(const char *hp, char *host, size_t hcap, char *port, size_t pcap,
			  struct err *e)
{
	const char *colon = strrchr(hp, ':');
	const char *h = hp;
	size_t hl;

	if (!colon || colon == hp || !colon[1])
		return err_set(e, "'%s' is not HOST:PORT", hp);
	hl = (size_t)(colon - hp);
	if (hp[0] == '[' && colon[-1] == ']') {	/* [v6]:port */
		h++;
		hl -= 2;
	}
	if (hl >= hcap || strlen(colon + 1) >= pcap)
		return err_set(e, "'%s': too long", hp);
	memcpy(host, h, hl);
	host[hl] = 0;
	snprintf(port, pcap, "%s", colon + 1);
	return 0;
}

static int connect_timeout(const char *hp, int timeout_ms, struct err *e)
{
	char host[256], port[16];
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc, saved = 0;

	if (split_hostport(hp, host, sizeof(host), port, sizeof(port), e) < 0)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		return err_set(e, "%s: %s", hp, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(saved);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			saved = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = poll(&pfd, 1, timeout_ms);
		if (rc == 0) {
			saved = ETIMEDOUT;
			goto next;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &sl) < 0)
			saved = errno;
		if (!saved)
			break;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_errno(e, saved ? saved : ECONNREFUSED, "connect %s", hp);
	/* Back to blocking: the engine sets its own timeouts. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	rc = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &rc, sizeof(rc));
	return fd;
}

/* Wait until something stops the VM (Quit: see migration_migrated) or
 * MIGRATION_LINGER_MS pass. The vCPUs stay stopped; only the control
 * server is still answering. */
static void linger(struct vm *vm)
{
	struct timespec ts = { 0, 50000000L };

	for (int waited = 0; waited < MIGRATION_LINGER_MS; waited += 50) {
		int stopping;

		pthread_mutex_lock(&vm->stop_lock);
		stopping = vm->stop_reason != VM_RUNNING;
		pthread_mutex_unlock(&vm->stop_lock);
		if (stopping)
			return;
		nanosleep(&ts, NULL);
	}
}

int migration_migrated(void)
{
	int r;

	pthread_mutex_lock(&mc.lock);
	r = mc.succeeded;
	pthread_mutex_unlock(&mc.lock);
	return r;
}

static void *migration_thread(void *arg)
{
	struct vm *vm = arg;
	struct err e = { { 0 } };
	struct mig_status st;
	struct cpuacct cpu0;
	char tbuf[512], cbuf[160];
	int r;

	pthread_setname_np(pthread_self(), "vmm-migrate");
	cpuacct_mark(&cpu0);
	r = mig_send(vm, &vmm_mig_ops, mc.fd, &mc.secret, &mc.params, &mc.stats, &mc.cancel, &e);
	cpuacct_format(&cpu0, "vmm-migrate thread", cbuf, sizeof(cbuf));
	close(mc.fd);
	mc.fd = -1;
	auth_secret_free(&mc.secret);
	mig_stats_get(&mc.stats, &st);
	fprintf(stderr, "vmm: %s: migration phases (ms): %s (pause: vCPUs %.1f, device locks %.1f; "
		"state %llu bytes; pages %llu: %llu raw, %llu lz4, %llu zero of which %llu holes)\n",
		vm->cfg.name, mig_times_format(&st.t, tbuf, sizeof(tbuf)),
		mc.pause_vcpus_us / 1000.0, mc.pause_devs_us / 1000.0,
		(unsigned long long)st.state_bytes, (unsigned long long)st.pages_sent,
		(unsigned long long)st.raw_pages, (unsigned long long)st.lz4_pages,
		(unsigned long long)st.zero_pages, (unsigned long long)st.hole_pages);
	/* process = vCPUs and devices too; the guest keeps running until the pause */
	fprintf(stderr, "vmm: %s: migration %s\n", vm->cfg.name, cbuf);
	if (r == MIG_RET_OK) {
		/* The destination runs the guest: this copy is dead. Let the
		 * I/O thread go (vm_destroy joins it), never run a vCPU again. */
		if (mc.devs_locked) {
			unlock_devs(vm);
			mc.devs_locked = 0;
		}
		fprintf(stderr, "vmm: %s: migrated to %s: total %llu ms, downtime %llu ms, "
			"%u rounds, %llu bytes sent (%llu pages, %llu zero)\n", vm->cfg.name, mc.to,
			(unsigned long long)st.total_ms, (unsigned long long)st.downtime_ms,
			st.round + 1, (unsigned long long)st.bytes_sent,
			(unsigned long long)st.pages_sent, (unsigned long long)st.zero_pages);
		pthread_mutex_lock(&mc.lock);
		mc.succeeded = 1;
		mc.active = 0;
		pthread_mutex_unlock(&mc.lock);
		linger(vm);
		vm_request_stop(vm, VM_STOP_SUCCESS, 0, "migrated");
		return NULL;
	}
	if (r == MIG_RET_AMBIGUOUS && mc.devs_locked) {
		/* Stay paused (vCPUs stopped), but release the devices so a
		 * quit can tear down the I/O thread. */
		unlock_devs(vm);
		mc.devs_locked = 0;
		mc.paused_by_us = 0;
	}
	fprintf(stderr, "vmm: %s: %s\n", vm->cfg.name, e.msg);
	pthread_mutex_lock(&mc.lock);
	mc.error = e;
	mc.ambiguous = r == MIG_RET_AMBIGUOUS;
	mc.active = 0;
	pthread_mutex_unlock(&mc.lock);
	return NULL;
}

int migration_op_start(void *opaque, const Vmm__Migrate *args, struct err *e)
{
	struct vmm_session *s = opaque;
	const char *secret = args->secret_file && args->secret_file[0] ? args->secret_file
								       : mc.default_secret;
	Vmm__VmState state;
	int fd, r;

	pthread_mutex_lock(&mc.lock);
	if (mc.active || mc.succeeded) {
		pthread_mutex_unlock(&mc.lock);
		return err_set(e, mc.active ? "a migration is already running"
					    : "the VM was already migrated away");
	}
	if (mc.ambiguous) {
		pthread_mutex_unlock(&mc.lock);
		return err_set(e, "the last migration's outcome is AMBIGUOUS: decide which side "
			       "lives first (resume here, or quit)");
	}
	pthread_mutex_unlock(&mc.lock);
	pthread_mutex_lock(&s->lock);
	state = s->state;
	pthread_mutex_unlock(&s->lock);
	if (state != VMM__VM_STATE__VM_STATE_RUNNING && state != VMM__VM_STATE__VM_STATE_PAUSED)
		return err_set(e, "VM is %s", vmm_state_name(state));
	if (!secret)
		return err_set(e, "no secret: give --secret-file to migrate or to vmm run");
	if (args->downtime_ms > 600000)
		return err_set(e, "downtime %u ms is out of range (max 600000)", args->downtime_ms);
	if (auth_secret_load(secret, &mc.secret, e) < 0)
		return err_prefix(e, "secret");
	fd = connect_timeout(args->to, CONNECT_TIMEOUT_MS, e);
	if (fd < 0) {
		auth_secret_free(&mc.secret);
		return -1;
	}
	if (mc.joinable) {
		pthread_join(mc.thread, NULL);
		mc.joinable = 0;
	}
	mig_params_default(&mc.params);
	if (args->downtime_ms)
		mc.params.downtime_ms = args->downtime_ms;
	/* Megabits/s on the API, MB/s in the engine. */
	if (args->bandwidth_mbps)
		mc.params.bandwidth_mbs = args->bandwidth_mbps / 8 ? args->bandwidth_mbps / 8 : 1;
	mc.params.state_size_est = 64 << 10;
	pthread_mutex_lock(&mc.lock);
	mc.fd = fd;
	mc.cancel = 0;
	mc.ran = 1;
	mc.active = 1;
	err_clear(&mc.error);
	snprintf(mc.to, sizeof(mc.to), "%s", args->to);
	memset(&mc.stats.s, 0, sizeof(mc.stats.s));
	pthread_mutex_unlock(&mc.lock);
	r = pthread_create(&mc.thread, NULL, migration_thread, s->vm);
	if (r) {
		pthread_mutex_lock(&mc.lock);
		mc.active = 0;
		pthread_mutex_unlock(&mc.lock);
		close(fd);
		auth_secret_free(&mc.secret);
		return err_errno(e, r, "migration thread");
	}
	mc.joinable = 1;
	fprintf(stderr, "vmm: %s: migrating to %s\n", s->vm->cfg.name, args->to);
	return 0;
}

static Vmm__MigrationPhase map_phase(enum mig_phase p)
{
	switch (p) {
	case MIG_PHASE_SETUP: return VMM__MIGRATION_PHASE__MIGRATION_PHASE_SETUP;
	case MIG_PHASE_PRECOPY: return VMM__MIGRATION_PHASE__MIGRATION_PHASE_PRECOPY;
	case MIG_PHASE_SWITCHOVER: return VMM__MIGRATION_PHASE__MIGRATION_PHASE_STOP_COPY;
	default: return VMM__MIGRATION_PHASE__MIGRATION_PHASE_DONE;
	}
}

static Vmm__MigrationOutcome map_outcome(enum mig_outcome o)
{
	switch (o) {
	case MIG_OUTCOME_SUCCESS: return VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_SUCCEEDED;
	case MIG_OUTCOME_FAILED:
	case MIG_OUTCOME_NOT_CONVERGED: return VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_FAILED;
	case MIG_OUTCOME_CANCELLED: return VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_CANCELLED;
	case MIG_OUTCOME_AMBIGUOUS: return VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_AMBIGUOUS;
	default: return VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_NONE;
	}
}

int migration_op_status(void *opaque, Vmm__MigrationStats *out, struct err *e)
{
	static struct err err_copy;
	static char to_copy[300];
	struct vmm_session *s = opaque;
	struct mig_status st;

	(void)e;
	pthread_mutex_lock(&mc.lock);
	if (!mc.ran) {
		pthread_mutex_unlock(&mc.lock);
		out->phase = VMM__MIGRATION_PHASE__MIGRATION_PHASE_NONE;
		out->ram_bytes = s->vm->mem.size;
		return 0;
	}
	err_copy = mc.error;
	memcpy(to_copy, mc.to, sizeof(to_copy));
	pthread_mutex_unlock(&mc.lock);
	mig_stats_get(&mc.stats, &st);
	out->phase = map_phase(st.phase);
	out->outcome = map_outcome(st.outcome);
	out->round = st.round + 1;
	out->bytes_sent = st.bytes_sent;
	out->bytes_remaining = st.bytes_remaining;
	out->zero_pages = st.zero_pages;
	out->compressed_bytes = st.compressed_bytes;
	out->dirty_rate_pps = st.dirty_rate;
	out->bandwidth_bps = st.bandwidth;
	out->expected_downtime_ms = st.expected_downtime_ms;
	out->throttle_pct = (uint32_t)st.throttle_pct;
	out->total_ms = st.total_ms;
	out->downtime_ms = st.downtime_ms;
	out->setup_ms = st.setup_ms;
	out->pages_sent = st.pages_sent;
	out->ram_bytes = s->vm->mem.size;
	out->error = err_copy.msg;
	out->to = to_copy;
	return 0;
}

int migration_op_cancel(void *opaque, struct err *e)
{
	(void)opaque;
	pthread_mutex_lock(&mc.lock);
	if (!mc.active) {
		pthread_mutex_unlock(&mc.lock);
		return err_set(e, "no migration is running");
	}
	mc.cancel = 1;
	pthread_mutex_unlock(&mc.lock);
	return 0;
}

int migration_check_idle(const char *what, struct err *e)
{
	int r = 0;

	pthread_mutex_lock(&mc.lock);
	if (mc.active)
		r = err_set(e, "cannot %s: a migration is running (migrate-cancel first)", what);
	else if (mc.succeeded)
		r = err_set(e, "cannot %s: the VM was migrated away", what);
	pthread_mutex_unlock(&mc.lock);
	return r;
}

void migration_status_state(Vmm__VmState *state)
{
	pthread_mutex_lock(&mc.lock);
	if (mc.succeeded)
		*state = VMM__VM_STATE__VM_STATE_MIGRATED;
	else if (mc.active && (*state == VMM__VM_STATE__VM_STATE_RUNNING ||
			       *state == VMM__VM_STATE__VM_STATE_PAUSED))
		*state = VMM__VM_STATE__VM_STATE_MIGRATING;
	else if (mc.ambiguous && *state == VMM__VM_STATE__VM_STATE_PAUSED)
		*state = VMM__VM_STATE__VM_STATE_PAUSED_AMBIGUOUS;
	pthread_mutex_unlock(&mc.lock);
}

void migration_resumed_by_operator(void)
{
	pthread_mutex_lock(&mc.lock);
	mc.ambiguous = 0;
	pthread_mutex_unlock(&mc.lock);
}

void migration_shutdown(void)
{
	pthread_mutex_lock(&mc.lock);
	if (mc.active)
		mc.cancel = 1;	/* honoured until GO; after it the thread ends by itself */
	pthread_mutex_unlock(&mc.lock);
	if (mc.joinable) {
		pthread_join(mc.thread, NULL);
		mc.joinable = 0;
	}
}

/* ---- destination ---- */

static int listen_on(const char *hp, struct err *e)
{
	char host[256], port[16];
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc, saved = 0, one = 1;

	if (split_hostport(hp, host, sizeof(host), port, sizeof(port), e) < 0)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		return err_set(e, "%s: %s", hp, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_errno(e, saved, "listen on %s", hp);
	return fd;
}

int migration_incoming(struct vm *vm, const char *hostport, const char *secret_file,
		       struct err *e)
{
	struct auth_secret secret = { 0 };
	struct sockaddr_storage peer;
	struct cpuacct cpu0;
	socklen_t pl = sizeof(peer);
	char ph[128] = "?", pp[16] = "?";
	int lfd, fd, r, one = 1, rcvbuf;

	if (auth_secret_load(secret_file, &secret, e) < 0)
		return err_prefix(e, "secret");
	lfd = listen_on(hostport, e);
	if (lfd < 0) {
		auth_secret_free(&secret);
		return -1;
	}
	/* On the listener, so the accepted socket starts with it. */
	rcvbuf = INCOMING_RCVBUF;
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	fprintf(stderr, "vmm: %s: incoming: listening on %s\n", vm->cfg.name, hostport);
	do
		fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	close(lfd);	/* exactly one connection */
	if (fd < 0) {
		auth_secret_free(&secret);
		return err_errno(e, errno, "accept on %s", hostport);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	getnameinfo((struct sockaddr *)&peer, pl, ph, sizeof(ph), pp, sizeof(pp),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	fprintf(stderr, "vmm: %s: incoming: connection from %s:%s\n", vm->cfg.name, ph, pp);
	cpuacct_mark(&cpu0);
	r = mig_recv(vm, &vmm_mig_ops, fd, &secret, 0, &mc.rst, e);
	mc.t_go_ns = now_ns();
	cpuacct_format(&cpu0, "receive thread (not its reader)", mc.cpu_line, sizeof(mc.cpu_line));
	close(fd);
	auth_secret_free(&secret);
	return r < 0 ? -1 : 0;
}

void migration_incoming_done(struct vm *vm)
{
	/* Called right after the vCPUs were started again. */
	uint64_t resume_us = (now_ns() - mc.t_go_ns) / 1000;

	op_announce(vm);
	fprintf(stderr, "vmm: incoming: migration complete (downtime %llu ms, total %llu ms, "
		"%u rounds, %llu bytes, %llu pages; load_state %.1f ms, GO -> vCPUs running %.1f ms; "
		"pre-copy: CPU of the applying thread %.1f ms, of the reader %.1f ms (tags %.1f); "
		"waits: for frames %.1f ms, reader for a buffer %.1f ms)\n",
		(unsigned long long)mc.rst.blackout_ms,
		(unsigned long long)mc.rst.total_ms, mc.rst.rounds, (unsigned long long)mc.rst.bytes,
		(unsigned long long)mc.rst.pages, mc.load_us / 1000.0, resume_us / 1000.0,
		mc.rst.apply_cpu_ms, mc.rst.reader_cpu_ms, mc.rst.tag_ms,
		mc.rst.wait_frames_ms, mc.rst.wait_slot_ms);
	fprintf(stderr, "vmm: incoming: migration %s\n", mc.cpu_line);
}
