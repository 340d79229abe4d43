/* agentd: the per-host daemon.
 *
 * One libev loop serves the local API (Unix socket, pmsg framing), the peer
 * listener (TCP, lib/auth handshake then lib/frame frames), supervises vmm
 * children (ev_child for our children, pidfd for re-adopted ones) and drives
 * migrations by polling the source vmm's MigrateStatus.
 *
 * Blocking calls on the loop, each bounded: vmm control calls (<= 3 s),
 * peer calls (<= AGENT_PEER_TIMEOUT_MS per wait), the peer handshake and
 * request on an accepted peer connection (<= 5 s), waiting for an incoming
 * vmm to listen (<= 5 s). */
/* Truncating snprintf into fixed buffers is intended (bounded messages, paths
 * checked against PATH_MAX by the kernel). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "agentd/agent.h"
#include "lib/frame.h"
#include "proto/api.h"
#include "proto/frame.h"

#define CTL_TIMEOUT_MS	3000
#define LOG_CHUNK	(64 * 1024)
#define OUT_HIGH	(4u << 20)

struct client;
struct op;

struct vm {
	struct vm_record rec;
	ev_child child;		/* our child */
	ev_io pidw;		/* adopted: pidfd readable on exit */
	int pidfd;
	int live;		/* a vmm process exists */
	int adopted;
	int stopping;
	struct op *mig;		/* migration out in progress */
	struct vm *next;
};

struct client {
	int fd;
	ev_io rio, wio;
	struct pmsg_reader rd;
	uint8_t *out;
	size_t olen, ocap, ooff;
	int closing;
	struct client *next;
};

enum op_kind { OP_RUN, OP_STOP, OP_LOG, OP_MIG, OP_EVAC };

struct op {
	enum op_kind kind;
	struct client *c;	/* NULL once the client went away */
	uint64_t id;
	char name[AGENT_NAME_MAX + 1];
	ev_timer t;
	int ticks;
	/* log; console: a log follow plus confd, the vmm's --console socket */
	int logfd, follow, confd;
	uint64_t off;
	/* migrate */
	char to[256];
	uint32_t downtime, bw;
	int progress;
	uint64_t t0_ms;		/* Migrate sent to the source vmm */
	uint32_t last_round;	/* last MigrateStatus seen, for STATUS= */
	uint64_t last_left;
	struct op *evac;
	/* evacuate */
	char targets[16][256];
	unsigned ntargets, parallel, next_vm, nvms, running, nfail, ndone;
	char (*vms)[AGENT_NAME_MAX + 1];
	char failmsg[400];
	struct op *next;
};

static struct {
	struct ev_loop *loop;
	const struct agentd_opts *o;
	char vmm[PATH_MAX];
	char state[PATH_MAX];
	char secret_path[PATH_MAX];
	char host[256];
	struct auth_secret secret;
	int have_secret;
	int unix_fd, peer_fd, own_unix;
	ev_io unix_w, peer_w;
	ev_timer wd_t, status_t;
	ev_signal sigterm, sigint;
	struct vm *vms;
	struct client *clients;
	struct op *ops;
} g;

static void op_free(struct op *op);
static void mig_finish(struct op *op, int ok, const char *msg, Vmm__MigrationStats *st);

/* ---------------- helpers ---------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "agentd: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void path_of(char *out, size_t cap, const char *name, const char *sfx)
{
	snprintf(out, cap, "%s/%s%s", g.state, name, sfx);
}

static struct vm *vm_find(const char *name)
{
	for (struct vm *v = g.vms; v; v = v->next)
		if (!strcmp(v->rec.name, name))
			return v;
	return NULL;
}

static void vm_save(struct vm *v)
{
	struct err e;
	if (record_save(g.state, &v->rec, &e) < 0)
		logmsg("%s: %s", v->rec.name, e.msg);
}

static void update_status(void)
{
	unsigned n = 0, live = 0, migs = 0;
	struct op *m = NULL;
	for (struct vm *v = g.vms; v; v = v->next) {
		n++;
		live += v->live;
		migs += v->mig != NULL;
		if (v->mig)
			m = v->mig;
	}
	if (m && m->last_round)	/* e.g. "migrating web1: round 3, 412 MiB left" */
		sd_notifyf(0, "STATUS=migrating %s to %s: round %u, %" PRIu64 " MiB left%s; serving %u VMs "
			   "(%u running)", m->name, m->to, m->last_round, m->last_left >> 20,
			   migs > 1 ? " (and more)" : "", n, live);
	else
		sd_notifyf(0, "STATUS=serving %u VMs (%u running), %u migrations out", n, live, migs);
}

/* ---------------- client output ---------------- */

static void client_close(struct client *c);

static void client_flush(struct client *c)
{
	while (c->ooff < c->olen) {
		ssize_t n = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			client_close(c);
			return;
		}
		c->ooff += (size_t)n;
	}
	if (c->ooff == c->olen) {
		c->ooff = c->olen = 0;
		ev_io_stop(g.loop, &c->wio);
		if (c->closing)
			client_close(c);
	} else {
		ev_io_start(g.loop, &c->wio);
	}
}

static void client_send(struct client *c, Agent__Response *r)
{
	uint8_t *buf;
	size_t len;
	struct err e;

	if (!c)
		return;
	r->api_version = AGENT_API_VERSION;
	if (pmsg_encode(&r->base, &buf, &len, &e) < 0) {
		logmsg("encode response: %s", e.msg);
		return;
	}
	if (c->olen + len > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 4096;
		while (cap < c->olen + len)
			cap *= 2;
		uint8_t *p = realloc(c->out, cap);
		if (!p) {
			free(buf);
			client_close(c);
			return;
		}
		c->out = p;
		c->ocap = cap;
	}
	memcpy(c->out + c->olen, buf, len);
	c->olen += len;
	free(buf);
	client_flush(c);
}

static void reply_err(struct client *c, uint64_t id, Agent__ErrorCode code, const char *msg)
{
	Agent__Response r = AGENT__RESPONSE__INIT;
	r.id = id;
	r.ok = 0;
	r.code = code;
	r.error = (char *)msg;
	client_send(c, &r);
}

/* ---------------- VM info ---------------- */

struct info_store {
	Agent__VmInfo info;
	Agent__VmDefinition def;
	char *disks[AGENT_MAX_DISKS], *nets[AGENT_MAX_NETS];
	char state[32];
	char control[PATH_MAX], serial[PATH_MAX];
	char detail[1536];
};

static void vm_exit_detail(const char *name, char *buf, size_t cap);

static void vm_info(struct vm *v, struct info_store *s, int query)
{
	agent__vm_info__init(&s->info);
	record_to_def(&v->rec, &s->def, s->disks, s->nets);
	s->info.def = &s->def;
	snprintf(s->state, sizeof(s->state), "%s", v->rec.state);
	s->info.host = g.host;
	s->info.pid = v->live ? (uint32_t)v->rec.pid : 0;
	s->info.started_unix_ms = v->rec.started_unix_ms;
	if (v->live && v->rec.started_unix_ms)
		s->info.uptime_ms = now_ms() - v->rec.started_unix_ms;
	s->info.exit_reason = v->rec.exit_reason;
	s->info.migrated_to = v->rec.migrated_to;
	s->info.adopted = v->adopted;
	path_of(s->control, sizeof(s->control), v->rec.name, ".sock");
	path_of(s->serial, sizeof(s->serial), v->rec.name, ".log");
	s->info.control = s->control;
	s->info.serial = s->serial;
	if (!v->live && v->rec.exit_reason[0]) {
		vm_exit_detail(v->rec.name, s->detail, sizeof(s->detail));
		s->info.exit_detail = s->detail;
	}
	/* A migrated-away source copy may linger until reaped: never ask it. */
	if (query && v->live && !v->mig && strcmp(v->rec.state, "incoming") &&
	    strcmp(v->rec.state, "migrated")) {
		Vmm__Request q = VMM__REQUEST__INIT;
		Vmm__Status st = VMM__STATUS__INIT;
		Vmm__Response *r = NULL;
		struct err e;
		q.cmd_case = VMM__REQUEST__CMD_STATUS;
		q.status = &st;
		if (vmm_call_ok(s->control, &q, 1000, &r, &e) == 0) {
			if (r->result_case == VMM__RESPONSE__RESULT_STATUS && r->status) {
				snprintf(s->state, sizeof(s->state), "%s", vmm_state_name(r->status->state));
				if (!s->info.uptime_ms)
					s->info.uptime_ms = r->status->uptime_ms;
			}
			vmm__response__free_unpacked(r, NULL);
		} else {
			snprintf(s->state, sizeof(s->state), "unresponsive");
		}
	} else if (v->mig) {
		snprintf(s->state, sizeof(s->state), "migrating");
	}
	s->info.state = s->state;
}

static void reply_vm(struct client *c, uint64_t id, struct vm *v)
{
	struct info_store s;
	Agent__Response r = AGENT__RESPONSE__INIT;

	vm_info(v, &s, 1);
	r.id = id;
	r.ok = 1;
	r.result_case = AGENT__RESPONSE__RESULT_VM;
	r.vm = &s.info;
	client_send(c, &r);
}

/* The last `want` non-empty lines of file (at most 4 KiB read from its end),
 * each prefixed with `pfx`, appended to buf. \r is dropped (serial logs). */
/* The last cap-1 bytes of file into tmp (not NUL-terminated); returns the
 * count, <= 0 when the file is missing or empty. */
static ssize_t read_file_end(const char *path, char *tmp, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	off_t sz = lseek(fd, 0, SEEK_END);
	off_t from = sz > (off_t)cap - 1 ? sz - (off_t)cap + 1 : 0;
	ssize_t n = pread(fd, tmp, cap - 1, from);
	close(fd);
	return n;
}

static void tail_lines(const char *path, int want, const char *pfx, char *buf, size_t cap)
{
	char tmp[4096];
	ssize_t n = read_file_end(path, tmp, sizeof(tmp));
	if (n <= 0)
		return;
	ssize_t k = 0;
	for (ssize_t i = 0; i < n; i++)	/* drop \r and non-printing bytes but \n */
		if (tmp[i] == '\n' || (tmp[i] >= ' ' && tmp[i] < 127) || tmp[i] == '\t')
			tmp[k++] = tmp[i];
	n = k;
	tmp[n] = 0;
	/* walk back over `want` non-empty lines */
	char *start = tmp + n;
	int got = 0;
	while (start > tmp && got < want) {
		char *e = start;
		while (e > tmp && e[-1] == '\n')
			e--;
		if (e == tmp)
			break;
		char *b = e;
		while (b > tmp && b[-1] != '\n')
			b--;
		start = b;
		got++;
	}
	/* a partial first line (we started mid-file) is still useful */
	for (char *l = start; *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = 0;
		if (*l) {
			size_t len = strlen(buf);
			snprintf(buf + len, cap - len, "%s%s\n", pfx, l);
		}
		if (!nl)
			break;
		l = nl + 1;
	}
}

/* What a dead vmm left behind: its own last output and the guest's last
 * serial lines (vmctl show prints it; agentd logs it on an unexpected exit). */
static void vm_exit_detail(const char *name, char *buf, size_t cap)
{
	char path[PATH_MAX];
	buf[0] = 0;
	path_of(path, sizeof(path), name, ".vmm.log");
	tail_lines(path, 6, "vmm: | ", buf, cap);
	path_of(path, sizeof(path), name, ".log");
	tail_lines(path, 4, "serial: | ", buf, cap);
}

/* ---------------- supervision ---------------- */

static void op_vm_gone(struct vm *v);

static void vmm_last_line(const char *name, char *buf, size_t cap);

/* v's vmm ended (reason: from its wait status, or "exit status unknown" for
 * an adopted one). An unexpected end keeps the vmm's last error line in the
 * record and logs the last lines of its output and of the serial console,
 * so that "exited" always comes with why. */
static void vm_exited(struct vm *v, const char *reason)
{
	char full[sizeof(v->rec.exit_reason)], last[300];
	int expected = v->stopping || !strcmp(v->rec.state, "migrated") || !strcmp(v->rec.state, "aborted");

	/* called twice for a VM that died while migrating out (here with
	 * v->mig, then from mig_finish with the reason kept): add once */
	int again = strstr(reason, "; last vmm output: ") != NULL;
	vmm_last_line(v->rec.name, last, sizeof(last));
	snprintf(full, sizeof(full), "%s%s%s", reason,
		 last[0] && !expected && !again ? "; last vmm output: " : "",
		 expected || again ? "" : last);
	reason = full;
	if (!expected && !v->mig) {
		char detail[1536];
		vm_exit_detail(v->rec.name, detail, sizeof(detail));
		logmsg("%s: vmm pid %d ended unexpectedly (%s); its last output:\n%s", v->rec.name,
		       v->rec.pid, reason, detail);
	}
	v->live = 0;
	for (unsigned i = 0; i < v->rec.nnets; i++)	/* agentd-made taps go with the vmm */
		net_release(v->rec.name, i, v->rec.nets[i]);
	if (v->pidfd >= 0) {
		ev_io_stop(g.loop, &v->pidw);
		close(v->pidfd);
		v->pidfd = -1;
	}
	if (v->mig) {
		/* the migration poll decides (it asks the destination) */
		snprintf(v->rec.exit_reason, sizeof(v->rec.exit_reason), "%s", reason);
		return;
	}
	if (!strcmp(v->rec.state, "migrated") || !strcmp(v->rec.state, "aborted")) {
		/* expected end of the source copy / of an aborted incoming one */
	} else {
		snprintf(v->rec.state, sizeof(v->rec.state), "%s", v->stopping ? "stopped" : "exited");
		snprintf(v->rec.exit_reason, sizeof(v->rec.exit_reason), "%s", reason);
	}
	v->rec.pid = 0;
	v->rec.pid_start = 0;
	v->stopping = 0;
	vm_save(v);
	logmsg("%s: %s (%s)", v->rec.name, v->rec.state, reason);
	op_vm_gone(v);
	update_status();
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct vm *v = w->data;
	char reason[160];
	(void)revents;
	ev_child_stop(loop, w);
	agent_exit_reason(w->rstatus, reason, sizeof(reason));
	vm_exited(v, reason);
}

static void pidfd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vm *v = w->data;
	(void)loop; (void)revents;
	vm_exited(v, "vmm exited (adopted process: exit status unknown)");
}

static struct vm *vm_new(const struct vm_record *r)
{
	struct vm *v = calloc(1, sizeof(*v));
	if (!v)
		abort();
	v->rec = *r;
	v->pidfd = -1;
	v->next = g.vms;
	g.vms = v;
	return v;
}

static void vm_unlink(struct vm *v)
{
	for (struct vm **p = &g.vms; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	if (v->pidfd >= 0) {
		ev_io_stop(g.loop, &v->pidw);
		close(v->pidfd);
	}
	ev_child_stop(g.loop, &v->child);
	free(v);
}

static int is_live_state(const char *s)
{
	return !strcmp(s, "running") || !strcmp(s, "starting") || !strcmp(s, "incoming") ||
	       !strcmp(s, "paused") || !strcmp(s, "migrating");
}

static void watch_pidfd(struct vm *v)
{
	int fd = (int)syscall(SYS_pidfd_open, v->rec.pid, 0);
	if (fd < 0) {
		logmsg("%s: pidfd_open %d: %s (exit will not be noticed)", v->rec.name, v->rec.pid,
		       strerror(errno));
		return;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	v->pidfd = fd;
	ev_io_init(&v->pidw, pidfd_cb, fd, EV_READ);
	v->pidw.data = v;
	ev_io_start(g.loop, &v->pidw);
}

static void resume_migration(struct vm *v);

static void adopt_all(void)
{
	DIR *d = opendir(g.state);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char name[AGENT_NAME_MAX + 1];
		struct vm_record r;
		struct err e;

		if (n <= 5 || strcmp(de->d_name + n - 5, ".json") || n - 5 > AGENT_NAME_MAX)
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = 0;
		if (record_load(g.state, name, &r, &e) < 0) {
			logmsg("ignoring %s", e.msg);
			continue;
		}
		struct vm *v = vm_new(&r);
		if (!strcmp(r.state, "migrated") && r.pid > 0 && kill(r.pid, 0) == 0 &&
		    proc_start_time(r.pid) == r.pid_start) {
			/* agentd died between the success and its Quit: a vmm
			 * that keeps answering after success waits for it */
			char sock[PATH_MAX];
			Vmm__Request qq = VMM__REQUEST__INIT;
			Vmm__Quit qu = VMM__QUIT__INIT;
			qq.cmd_case = VMM__REQUEST__CMD_QUIT;
			qq.quit = &qu;
			path_of(sock, sizeof(sock), name, ".sock");
			if (vmm_call_ok(sock, &qq, CTL_TIMEOUT_MS, NULL, &e) < 0)
				kill(r.pid, SIGTERM);
			logmsg("%s: told the migrated-away source vmm pid %d to quit", name, r.pid);
			v->rec.pid = 0;
			vm_save(v);
		}
		if (!is_live_state(r.state))
			continue;
		char sock[PATH_MAX];
		path_of(sock, sizeof(sock), name, ".sock");
		int alive = r.pid > 0 && kill(r.pid, 0) == 0 && proc_start_time(r.pid) == r.pid_start;
		Vmm__Request q = VMM__REQUEST__INIT;
		Vmm__Status st = VMM__STATUS__INIT;
		q.cmd_case = VMM__REQUEST__CMD_STATUS;
		q.status = &st;
		Vmm__Response *resp = NULL;
		if (alive && vmm_call_ok(sock, &q, CTL_TIMEOUT_MS, &resp, &e) == 0) {
			vmm__response__free_unpacked(resp, NULL);
			v->live = 1;
			v->adopted = 1;
			if (!strcmp(r.state, "starting") ||
			    (!strcmp(r.state, "migrating") && !r.migrated_to[0]))
				snprintf(v->rec.state, sizeof(v->rec.state), "running");
			watch_pidfd(v);
			logmsg("%s: re-adopted vmm pid %d", name, r.pid);
		} else if (alive) {
			v->live = 1;
			v->adopted = 1;
			watch_pidfd(v);
			logmsg("%s: vmm pid %d alive but control socket does not answer: %s", name,
			       r.pid, e.msg);
		} else if (!strcmp(r.state, "migrating") && r.migrated_to[0]) {
			/* the source vmm ended while agentd was down: most likely
			 * because the migration completed; the destination decides */
			snprintf(v->rec.exit_reason, sizeof(v->rec.exit_reason),
				 "vmm gone while agentd was not running");
			v->rec.pid = 0;
			logmsg("%s: vmm pid %d is gone (was migrating to %s)", name, r.pid, r.migrated_to);
		} else {
			snprintf(v->rec.state, sizeof(v->rec.state), "exited");
			snprintf(v->rec.exit_reason, sizeof(v->rec.exit_reason),
				 "vmm gone while agentd was not running");
			v->rec.pid = 0;
			logmsg("%s: vmm pid %d is gone", name, r.pid);
		}
		vm_save(v);
		if (!strcmp(v->rec.state, "migrating"))
			resume_migration(v);
	}
	closedir(d);
}

/* Spawn vmm for r (incoming_addr: "--incoming" value or NULL). */
static int spawn_vmm(struct vm *v, const char *incoming, struct err *err)
{
	char *argv[64];
	char mem[32], cpus[16], sock[PATH_MAX], serial[PATH_MAX], out[PATH_MAX], con[PATH_MAX];
	int a = 0;
	struct vm_record *r = &v->rec;

	char nets[AGENT_MAX_NETS][AGENT_NET_MAX + 32];

	for (unsigned i = 0; i < r->nnets; i++)
		if (net_prepare(r->name, i, r->nets[i], nets[i], sizeof(nets[i]), err) < 0) {
			for (unsigned j = 0; j < i; j++)
				net_release(r->name, j, r->nets[j]);
			return -1;
		}
	snprintf(mem, sizeof(mem), "%" PRIu64 "K", r->mem_bytes >> 10);
	snprintf(cpus, sizeof(cpus), "%u", r->cpus);
	path_of(sock, sizeof(sock), r->name, ".sock");
	path_of(serial, sizeof(serial), r->name, ".log");
	path_of(out, sizeof(out), r->name, ".vmm.log");
	argv[a++] = g.vmm;
	argv[a++] = "run";
	argv[a++] = "--name"; argv[a++] = r->name;
	argv[a++] = "--kernel"; argv[a++] = r->kernel;
	if (r->initrd[0]) { argv[a++] = "--initrd"; argv[a++] = r->initrd; }
	if (r->cmdline[0]) { argv[a++] = "--cmdline"; argv[a++] = r->cmdline; }
	argv[a++] = "--mem"; argv[a++] = mem;
	argv[a++] = "--cpus"; argv[a++] = cpus;
	argv[a++] = "--serial"; argv[a++] = serial;
	argv[a++] = "--control"; argv[a++] = sock;
	path_of(con, sizeof(con), r->name, ".console");
	if (strlen(con) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
		/* else no console (vmctl console says so): the VM still runs */
		argv[a++] = "--console"; argv[a++] = con;
	}
	for (unsigned i = 0; i < r->ndisks; i++) { argv[a++] = "--disk"; argv[a++] = r->disks[i]; }
	for (unsigned i = 0; i < r->nnets; i++) { argv[a++] = "--net"; argv[a++] = nets[i]; }
	if (incoming) { argv[a++] = "--incoming"; argv[a++] = (char *)incoming; }
	if (g.have_secret) { argv[a++] = "--secret-file"; argv[a++] = g.secret_path; }
	argv[a] = NULL;

	/* a stale socket of a dead vmm would answer nothing; remove it */
	unlink(sock);
	int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ofd < 0) {
		err_errno(err, errno, "open %s", out);
		goto release;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(ofd);
		err_errno(err, errno, "fork");
		goto release;
	}
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(ofd, 1);
		dup2(ofd, 2);
		execv(g.vmm, argv);
		dprintf(2, "agentd: exec %s: %s\n", g.vmm, strerror(errno));
		_exit(127);
	}
	close(ofd);
	r->pid = pid;
	r->pid_start = proc_start_time(pid);
	r->started_unix_ms = now_ms();
	v->live = 1;
	v->adopted = 0;
	ev_child_init(&v->child, child_cb, pid, 0);
	v->child.data = v;
	ev_child_start(g.loop, &v->child);
	return 0;
release:
	for (unsigned i = 0; i < r->nnets; i++)
		net_release(r->name, i, r->nets[i]);
	return -1;
}

static int vmm_status_ok(struct vm *v)
{
	char sock[PATH_MAX];
	struct err e;
	Vmm__Request q = VMM__REQUEST__INIT;
	Vmm__Status st = VMM__STATUS__INIT;
	q.cmd_case = VMM__REQUEST__CMD_STATUS;
	q.status = &st;
	path_of(sock, sizeof(sock), v->rec.name, ".sock");
	if (access(sock, F_OK) < 0)
		return 0;
	return vmm_call_ok(sock, &q, 1000, NULL, &e) == 0;
}

/* Last non-empty line of the vmm's own output (for start errors). */
static void vmm_last_line(const char *name, char *buf, size_t cap)
{
	char path[PATH_MAX], tmp[4096];
	path_of(path, sizeof(path), name, ".vmm.log");
	buf[0] = 0;
	ssize_t n = read_file_end(path, tmp, sizeof(tmp));
	if (n <= 0)
		return;
	tmp[n] = 0;
	while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r'))
		tmp[--n] = 0;
	char *l = strrchr(tmp, '\n');
	l = l ? l + 1 : tmp;
	/* prefer the vmm's first error line, usually the cause */
	char *v = strstr(tmp, "vmm: ");
	if (v) {
		char *nl = strchr(v, '\n');
		if (nl)
			*nl = 0;
		l = v;
	}
	snprintf(buf, cap, "%s", l);
}

/* Whether the vmm's own output (NAME.vmm.log, truncated at each spawn)
 * contains needle, in its first or last 64 KiB. */
static int vmm_log_has(const char *name, const char *needle)
{
	char path[PATH_MAX], buf[65536];
	path_of(path, sizeof(path), name, ".vmm.log");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	int found = n > 0 && (buf[n] = 0, strstr(buf, needle) != NULL);
	off_t sz = lseek(fd, 0, SEEK_END);
	if (!found && sz > (off_t)sizeof(buf) - 1) {	/* and its last 64 KiB */
		n = pread(fd, buf, sizeof(buf) - 1, sz - (off_t)sizeof(buf) + 1);
		found = n > 0 && (buf[n] = 0, strstr(buf, needle) != NULL);
	}
	close(fd);
	return found;
}

/* ---------------- ops ---------------- */

static struct op *op_new(enum op_kind k, struct client *c, uint64_t id, const char *name)
{
	struct op *op = calloc(1, sizeof(*op));
	if (!op)
		abort();
	op->kind = k;
	op->c = c;
	op->id = id;
	op->logfd = -1;
	op->confd = -1;
	snprintf(op->name, sizeof(op->name), "%s", name ? name : "");
	op->next = g.ops;
	g.ops = op;
	return op;
}

static void op_free(struct op *op)
{
	for (struct op **p = &g.ops; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			break;
		}
	ev_timer_stop(g.loop, &op->t);
	if (op->logfd >= 0)
		close(op->logfd);
	if (op->confd >= 0)
		close(op->confd);
	free(op->vms);
	free(op);
}

static void op_timer(struct op *op, void (*cb)(struct ev_loop *, ev_timer *, int), double iv)
{
	ev_timer_init(&op->t, cb, iv, iv);
	op->t.data = op;
	ev_timer_start(g.loop, &op->t);
}

static void run_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct op *op = w->data;
	struct vm *v = vm_find(op->name);
	(void)loop; (void)revents;

	if (!v) {
		reply_err(op->c, op->id, AGENT__ERROR_CODE__ERROR_FAILED, "VM record vanished");
		op_free(op);
		return;
	}
	if (!v->live) {
		char msg[700];
		snprintf(msg, sizeof(msg), "vmm exited during start: %s", v->rec.exit_reason);
		reply_err(op->c, op->id, AGENT__ERROR_CODE__ERROR_FAILED, msg);
		op_free(op);
		return;
	}
	if (vmm_status_ok(v)) {
		reply_vm(op->c, op->id, v);
		op_free(op);
		return;
	}
	if (++op->ticks > 200) {	/* 10 s */
		kill(v->rec.pid, SIGKILL);
		reply_err(op->c, op->id, AGENT__ERROR_CODE__ERROR_FAILED,
			  "vmm did not open its control socket within 10 s (killed)");
		op_free(op);
	}
}

static void stop_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct op *op = w->data;
	struct vm *v = vm_find(op->name);
	(void)loop; (void)revents;
	if (v && v->live && ++op->ticks == 100 && v->rec.pid > 0) {	/* 10 s: force */
		logmsg("%s: vmm did not quit within 10 s, SIGKILL", op->name);
		kill(v->rec.pid, SIGKILL);
	}
	if (v && !v->live) {
		reply_vm(op->c, op->id, v);
		op_free(op);
	}
}

static void log_tick(struct ev_loop *loop, ev_timer *w, int revents);

/* The VM's process ended: pending ops on it conclude. */
static void op_vm_gone(struct vm *v)
{
	for (struct op *op = g.ops, *nx; op; op = nx) {
		nx = op->next;
		if (strcmp(op->name, v->rec.name))
			continue;
		if (op->kind == OP_RUN || op->kind == OP_STOP)
			ev_feed_event(g.loop, &op->t, EV_TIMER);
	}
}

/* ---------------- log ---------------- */

static void log_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct op *op = w->data;
	struct vm *v = vm_find(op->name);
	uint8_t buf[LOG_CHUNK];
	(void)loop; (void)revents;

	if (!op->c) {
		op_free(op);
		return;
	}
	if (op->logfd < 0) {
		char path[PATH_MAX];
		path_of(path, sizeof(path), op->name, ".log");
		op->logfd = open(path, O_RDONLY | O_CLOEXEC);
	}
	int live = v && v->live;
	for (int i = 0; i < 16 && op->logfd >= 0 && op->c && op->c->olen < OUT_HIGH; i++) {
		ssize_t n = pread(op->logfd, buf, sizeof(buf), (off_t)op->off);
		if (n <= 0)
			break;
		Agent__Response r = AGENT__RESPONSE__INIT;
		Agent__LogChunk ch = AGENT__LOG_CHUNK__INIT;
		ch.data.data = buf;
		ch.data.len = (size_t)n;
		ch.offset = op->off;
		op->off += (uint64_t)n;
		r.id = op->id;
		r.ok = 1;
		r.more = 1;
		r.result_case = AGENT__RESPONSE__RESULT_LOG;
		r.log = &ch;
		client_send(op->c, &r);
		if (!op->c)
			break;	/* freed meanwhile? c pointer cleared by client_close */
	}
	if (!op->c) {
		op_free(op);
		return;
	}
	struct stat sb;
	int at_end = op->logfd < 0 || (fstat(op->logfd, &sb) == 0 && (uint64_t)sb.st_size <= op->off);
	if (at_end && (!op->follow || !live)) {
		Agent__Response r = AGENT__RESPONSE__INIT;
		Agent__LogChunk ch = AGENT__LOG_CHUNK__INIT;
		ch.offset = op->off;
		r.id = op->id;
		r.ok = 1;
		r.result_case = AGENT__RESPONSE__RESULT_LOG;
		r.log = &ch;
		client_send(op->c, &r);
		op_free(op);
	}
}

/* ---------------- migration ---------------- */

/* Progress for op's client. finished: this VM's migration ended; for an
 * evacuation the response stays ok (the evacuation goes on) and `succeeded`
 * tells the VM's own outcome, which vmctl shows in its final table. */
/* The final statistics of a successful migration whose source vmm could
 * not be asked (an old vmm exits right after success, before agentd's
 * next MigrateStatus): recovered from the vmm's last words in NAME.vmm.log
 * ("migrated to X: total N ms, downtime N ms, R rounds, B bytes sent (P
 * pages, Z zero)"), else only agentd's own total time, and the fields that
 * stay unknown are listed. */
struct final_stats {
	Vmm__MigrationStats st;
	char *unknown[2];
	size_t nunknown;
};

static void final_stats_recover(struct op *op, struct final_stats *f)
{
	char path[PATH_MAX], buf[8192];
	unsigned long long total, down, bytes, pages, zero;
	unsigned rounds;

	vmm__migration_stats__init(&f->st);
	f->nunknown = 0;
	f->st.phase = VMM__MIGRATION_PHASE__MIGRATION_PHASE_DONE;
	f->st.outcome = VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_SUCCEEDED;
	f->st.to = op->to;
	path_of(path, sizeof(path), op->name, ".vmm.log");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		off_t sz = lseek(fd, 0, SEEK_END);
		off_t from = sz > (off_t)sizeof(buf) - 1 ? sz - (off_t)sizeof(buf) + 1 : 0;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		char *l = strstr(buf, ": migrated to ");
		char *t = l ? strstr(l, ": total ") : NULL;
		if (t && sscanf(t, ": total %llu ms, downtime %llu ms, %u rounds, %llu bytes sent (%llu pages, %llu zero)",
				&total, &down, &rounds, &bytes, &pages, &zero) == 6) {
			f->st.total_ms = total;
			f->st.downtime_ms = down;
			f->st.round = rounds;
			f->st.bytes_sent = bytes;
			f->st.pages_sent = pages;
			f->st.zero_pages = zero;
			return;
		}
	}
	f->st.total_ms = op->t0_ms ? now_ms() - op->t0_ms : 0;	/* an upper bound */
	f->unknown[f->nunknown++] = "downtime_ms";
	f->unknown[f->nunknown++] = "bytes_sent";
}

static struct final_stats *cur_final;	/* set around a finishing send_progress */

static void send_progress_ex(struct op *op, Vmm__MigrationStats *st, const char *msg, int finished,
			     int more, int ok, const char *err, int succeeded)
{
	struct op *dst = op->evac ? op->evac : op;
	if (!dst->c || (!dst->progress && more))
		return;
	Agent__Response r = AGENT__RESPONSE__INIT;
	Agent__MigrateProgress p = AGENT__MIGRATE_PROGRESS__INIT;
	p.name = op->name;
	p.to = op->to;
	p.stats = st;
	if (finished && cur_final) {
		p.stats = &cur_final->st;
		p.n_unknown = cur_final->nunknown;
		p.unknown = cur_final->unknown;
	}
	p.message = (char *)msg;
	p.finished = finished;
	p.succeeded = finished && succeeded;
	r.id = dst->id;
	r.ok = ok;
	r.more = more;
	if (!ok) {
		r.error = (char *)err;
		r.code = AGENT__ERROR_CODE__ERROR_FAILED;
	}
	r.result_case = AGENT__RESPONSE__RESULT_PROGRESS;
	r.progress = &p;
	client_send(dst->c, &r);
}

static void send_progress(struct op *op, Vmm__MigrationStats *st, const char *msg, int finished,
			  int more, int ok, const char *err)
{
	send_progress_ex(op, st, msg, finished, more, ok, err, ok);
}

static int peer_simple(const char *to, Agent__Request *q, Agent__Response **out, struct err *e)
{
	Agent__Response *r = NULL;
	if (peer_call(to, &g.secret, q, &r, e) < 0)
		return -1;
	if (!r->ok) {
		err_set(e, "peer %s: %s", to, r->error ? r->error : "failed");
		agent__response__free_unpacked(r, NULL);
		return -1;
	}
	if (out)
		*out = r;
	else
		agent__response__free_unpacked(r, NULL);
	return 0;
}

static int peer_named(const char *to, Agent__Request__CmdCase cc, const char *name)
{
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__Commit cm = AGENT__COMMIT__INIT;
	Agent__AbortIncoming ab = AGENT__ABORT_INCOMING__INIT;
	struct err e;
	q.cmd_case = cc;
	if (cc == AGENT__REQUEST__CMD_COMMIT) {
		cm.name = (char *)name;
		q.commit = &cm;
	} else {
		ab.name = (char *)name;
		q.abort_incoming = &ab;
	}
	if (peer_simple(to, &q, NULL, &e) < 0) {
		logmsg("%s: %s: %s", name, agent_cmd_name(cc), e.msg);
		return -1;
	}
	return 0;
}

static int peer_runs(const char *to, const char *name)
{
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__WhoRuns w = AGENT__WHO_RUNS__INIT;
	Agent__Response *r = NULL;
	struct err e;
	int runs = -1;
	w.name = (char *)name;
	q.cmd_case = AGENT__REQUEST__CMD_WHO_RUNS;
	q.who_runs = &w;
	if (peer_simple(to, &q, &r, &e) == 0) {
		runs = r->result_case == AGENT__RESPONSE__RESULT_WHO && r->who && r->who->runs;
		agent__response__free_unpacked(r, NULL);
	}
	return runs;
}

static void evac_next(struct op *ev);

static void mig_finish(struct op *op, int ok, const char *msg, Vmm__MigrationStats *st)
{
	struct vm *v = vm_find(op->name);
	if (v && v->mig == op)
		v->mig = NULL;
	if (v && ok) {
		snprintf(v->rec.state, sizeof(v->rec.state), "migrated");
		snprintf(v->rec.migrated_to, sizeof(v->rec.migrated_to), "%s", op->to);
		vm_save(v);
		if (v->live) {	/* the source copy is dead: make sure it exits */
			char sock[PATH_MAX];
			struct err e;
			Vmm__Request q = VMM__REQUEST__INIT;
			Vmm__Quit qu = VMM__QUIT__INIT;
			q.cmd_case = VMM__REQUEST__CMD_QUIT;
			q.quit = &qu;
			path_of(sock, sizeof(sock), v->rec.name, ".sock");
			if (vmm_call_ok(sock, &q, CTL_TIMEOUT_MS, NULL, &e) < 0)
				kill(v->rec.pid, SIGTERM);
		} else {
			v->rec.pid = 0;
			vm_save(v);
		}
	} else if (v) {
		v->rec.migrated_to[0] = 0;	/* only "migrated" (or "migrating") names one */
		if (!v->live)
			vm_exited(v, v->rec.exit_reason[0] ? v->rec.exit_reason : "vmm exited during migration");
		else if (strcmp(v->rec.state, "paused_ambiguous"))
			snprintf(v->rec.state, sizeof(v->rec.state), "running");
		vm_save(v);
	}
	struct final_stats fin;
	if (ok && !st) {	/* nothing read from the source vmm at the end */
		final_stats_recover(op, &fin);
		cur_final = &fin;
		logmsg("%s: migration to %s succeeded: %s (total %" PRIu64 " ms, downtime %s, %s)",
		       op->name, op->to, msg, fin.st.total_ms, fin.nunknown ? "unknown" : "from vmm log",
		       fin.nunknown ? "bytes unknown" : "bytes from vmm log");
	} else {
		logmsg("%s: migration to %s %s: %s", op->name, op->to, ok ? "succeeded" : "failed", msg);
	}
	if (op->evac) {
		struct op *ev = op->evac;
		ev->running--;
		ev->ndone++;
		if (!ok) {
			ev->nfail++;
			size_t l = strlen(ev->failmsg);
			snprintf(ev->failmsg + l, sizeof(ev->failmsg) - l, "%s%s: %s", l ? "; " : "",
				 op->name, msg);
		}
		send_progress_ex(op, st, msg, 1, 1, 1, NULL, ok);
		op_free(op);
		evac_next(ev);
	} else {
		send_progress(op, st, msg, 1, 0, ok, ok ? NULL : msg);
		op_free(op);
	}
	cur_final = NULL;
	update_status();
}

static void mig_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct op *op = w->data;
	struct vm *v = vm_find(op->name);
	char sock[PATH_MAX];
	struct err e;
	Vmm__Request q = VMM__REQUEST__INIT;
	Vmm__MigrateStatus ms = VMM__MIGRATE_STATUS__INIT;
	Vmm__Response *r = NULL;
	(void)loop; (void)revents;

	if (!v) {
		mig_finish(op, 0, "VM vanished", NULL);
		return;
	}
	path_of(sock, sizeof(sock), op->name, ".sock");
	q.cmd_case = VMM__REQUEST__CMD_MIGRATE_STATUS;
	q.migrate_status = &ms;
	if (!v->live && vmm_log_has(op->name, ": migrated to ")) {
		/* The source vmm prints "migrated to" only once the destination
		 * acknowledged GO (it then owns the guest), and exits. The
		 * destination may still say INCOMING for a moment (it answers
		 * GO_ACK before it resumes), so never ask WhoRuns here: an
		 * ABORT in that window would kill the only copy. Commit,
		 * retrying while the destination does not answer. */
		if (peer_named(op->to, AGENT__REQUEST__CMD_COMMIT, op->name) == 0 || ++op->ticks > 120)
			mig_finish(op, 1, "source vmm gone; destination runs the VM", NULL);
		return;
	}
	if (!v->live || vmm_call_ok(sock, &q, CTL_TIMEOUT_MS, &r, &e) < 0) {
		/* source vmm gone (without handing over) or mute: the
		 * destination tells who runs the VM */
		int runs = peer_runs(op->to, op->name);
		if (runs == 1) {
			peer_named(op->to, AGENT__REQUEST__CMD_COMMIT, op->name);
			mig_finish(op, 1, "source vmm gone; destination runs the VM", NULL);
			return;
		}
		op->ticks++;
		if (runs < 0) {
			/* "don't know" is not "no": keep asking (the VM may run
			 * there), give up only after about a minute */
			if (op->ticks > 120)
				mig_finish(op, 0, v->live ? "source vmm does not answer and the destination "
					   "cannot tell who runs the VM" : "source vmm exited during "
					   "migration; the destination cannot tell whether it runs the VM", NULL);
			return;
		}
		/* runs == 0: the destination does not run it. Ask twice (>= 0.5 s
		 * apart) before aborting: a destination that just got GO turns
		 * from INCOMING to running within milliseconds. */
		if ((!v->live && op->ticks >= 2) || op->ticks > 20) {
			peer_named(op->to, AGENT__REQUEST__CMD_ABORT_INCOMING, op->name);
			mig_finish(op, 0, v->live ? e.msg : "source vmm exited during migration", NULL);
		}
		return;
	}
	op->ticks = 0;
	Vmm__MigrationStats *st = r->result_case == VMM__RESPONSE__RESULT_MIGRATION ? r->migration : NULL;
	if (!st) {
		vmm__response__free_unpacked(r, NULL);
		return;
	}
	if (st->phase != VMM__MIGRATION_PHASE__MIGRATION_PHASE_DONE) {
		if (st->round != op->last_round || st->bytes_remaining != op->last_left) {
			op->last_round = st->round;
			op->last_left = st->bytes_remaining;
			update_status();
		}
		send_progress(op, st, vmm_phase_name(st->phase), 0, 1, 1, NULL);
		vmm__response__free_unpacked(r, NULL);
		return;
	}
	switch (st->outcome) {
	case VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_SUCCEEDED:
		peer_named(op->to, AGENT__REQUEST__CMD_COMMIT, op->name);
		mig_finish(op, 1, "done", st);
		break;
	case VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_AMBIGUOUS: {
		int runs = peer_runs(op->to, op->name);
		if (runs == 1) {
			peer_named(op->to, AGENT__REQUEST__CMD_COMMIT, op->name);
			mig_finish(op, 1, "outcome ambiguous; destination runs the VM", st);
		} else {
			snprintf(v->rec.state, sizeof(v->rec.state), "paused_ambiguous");
			mig_finish(op, 0, runs == 0 ? "outcome ambiguous; destination does not run the VM "
				   "(source left paused: resume with vmctl resume)" :
				   "outcome ambiguous and destination unreachable (source left paused)", st);
		}
		break;
	}
	default: {
		char msg[300];
		peer_named(op->to, AGENT__REQUEST__CMD_ABORT_INCOMING, op->name);
		snprintf(msg, sizeof(msg), "%s%s%s",
			 st->outcome == VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_CANCELLED ? "cancelled" : "failed",
			 st->error && st->error[0] ? ": " : "", st->error ? st->error : "");
		mig_finish(op, 0, msg, st);
	}
	}
	vmm__response__free_unpacked(r, NULL);
}

/* Start migrating v to op->to. On failure returns -1 (op not registered on v). */
static int mig_start(struct op *op, struct vm *v, struct err *err)
{
	char host[256], to[300], sock[PATH_MAX];
	int port;
	struct info_store s;
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__PrepareIncoming pi = AGENT__PREPARE_INCOMING__INIT;
	Agent__Response *r = NULL;

	if (!v->live || (strcmp(v->rec.state, "running") && strcmp(v->rec.state, "paused")))
		return err_set(err, "%s is not running (%s)", v->rec.name, v->rec.state);
	if (v->mig)
		return err_set(err, "%s is already migrating to %s", v->rec.name, v->mig->to);
	if (!g.have_secret)
		return err_set(err, "no cluster secret configured (agentd --secret-file)");
	if (agent_split_hostport(op->to, host, sizeof(host), &port, err) < 0)
		return -1;
	vm_info(v, &s, 0);
	pi.def = &s.def;
	pi.source = g.host;
	q.cmd_case = AGENT__REQUEST__CMD_PREPARE_INCOMING;
	q.prepare_incoming = &pi;
	send_progress(op, NULL, "preparing destination", 0, 1, 1, NULL);
	if (peer_simple(op->to, &q, &r, err) < 0)
		return -1;
	if (r->result_case != AGENT__RESPONSE__RESULT_PREPARED || !r->prepared || !r->prepared->port) {
		agent__response__free_unpacked(r, NULL);
		return err_set(err, "peer %s: no incoming port in answer", op->to);
	}
	snprintf(to, sizeof(to), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, r->prepared->port);
	agent__response__free_unpacked(r, NULL);

	Vmm__Request vq = VMM__REQUEST__INIT;
	Vmm__Migrate vm = VMM__MIGRATE__INIT;
	vm.to = to;
	vm.downtime_ms = op->downtime;
	vm.bandwidth_mbps = op->bw;
	vm.secret_file = g.secret_path;
	vq.cmd_case = VMM__REQUEST__CMD_MIGRATE;
	vq.migrate = &vm;
	path_of(sock, sizeof(sock), v->rec.name, ".sock");
	if (vmm_call_ok(sock, &vq, CTL_TIMEOUT_MS, NULL, err) < 0) {
		peer_named(op->to, AGENT__REQUEST__CMD_ABORT_INCOMING, v->rec.name);
		return err_prefix(err, "source vmm refused migrate");
	}
	v->mig = op;
	op->t0_ms = now_ms();
	snprintf(v->rec.state, sizeof(v->rec.state), "migrating");
	/* Invariant: a record in state "migrating" names its destination in
	 * migrated_to, so an agentd restarted mid-migration can resume the
	 * poll and settle the outcome with the destination (resume_migration). */
	snprintf(v->rec.migrated_to, sizeof(v->rec.migrated_to), "%s", op->to);
	vm_save(v);
	op_timer(op, mig_tick, 0.5);
	send_progress(op, NULL, "started", 0, 1, 1, NULL);
	update_status();
	return 0;
}

/* agentd restarted while v was migrating (record state "migrating", target
 * in migrated_to): without this the source record fell back to "running"
 * (then "exited" when the vmm quit after handing over) and the destination
 * was never committed, so both hosts disagreed about where the VM lives.
 * Resume polling with no client: mig_tick follows the vmm's MigrateStatus
 * to its outcome, or, when the source vmm is gone, asks the destination
 * (WhoRuns) and commits or aborts there. */
static void resume_migration(struct vm *v)
{
	struct op *op = op_new(OP_MIG, NULL, 0, v->rec.name);
	snprintf(op->to, sizeof(op->to), "%s", v->rec.migrated_to);
	v->mig = op;
	logmsg("%s: resuming migration to %s (agentd restarted)", v->rec.name, op->to);
	op_timer(op, mig_tick, 0.5);
}

static void evac_next(struct op *ev)
{
	while (ev->running < ev->parallel && ev->next_vm < ev->nvms) {
		unsigned i = ev->next_vm++;
		struct vm *v = vm_find(ev->vms[i]);
		struct op *op = op_new(OP_MIG, NULL, 0, ev->vms[i]);
		struct err e;
		op->evac = ev;
		snprintf(op->to, sizeof(op->to), "%s", ev->targets[i % ev->ntargets]);
		op->downtime = ev->downtime;
		op->bw = ev->bw;
		ev->running++;
		if (!v) {
			err_set(&e, "VM vanished");
		} else if (mig_start(op, v, &e) == 0) {
			continue;
		}
		ev->running--;
		ev->ndone++;
		ev->nfail++;
		size_t l = strlen(ev->failmsg);
		snprintf(ev->failmsg + l, sizeof(ev->failmsg) - l, "%s%s: %s", l ? "; " : "",
			 ev->vms[i], e.msg);
		send_progress_ex(op, NULL, e.msg, 1, 1, 1, NULL, 0);
		op_free(op);
	}
	if (ev->ndone == ev->nvms) {
		char msg[600];
		Agent__Response r = AGENT__RESPONSE__INIT;
		r.id = ev->id;
		r.ok = ev->nfail == 0;
		if (!r.ok) {
			snprintf(msg, sizeof(msg), "%u of %u migrations failed: %s", ev->nfail, ev->nvms,
				 ev->failmsg);
			r.error = msg;
			r.code = AGENT__ERROR_CODE__ERROR_FAILED;
		}
		client_send(ev->c, &r);
		op_free(ev);
	}
}

/* ---------------- request handlers (local) ---------------- */

static Agent__ErrorCode errno_code(const char *msg)
{
	return strstr(msg, "No space left") || strstr(msg, "quota") ?
		AGENT__ERROR_CODE__ERROR_NO_SPACE : AGENT__ERROR_CODE__ERROR_FAILED;
}

static void h_run(struct client *c, Agent__Request *q)
{
	struct vm_record r;
	struct err e;
	char msg[700];
	struct vm *v = vm_find(q->run->def->name);

	if (record_from_def(&r, q->run->def, 1, &e) < 0)
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_INVALID_ARGUMENT, e.msg);
	if (v && (v->live || v->mig)) {
		snprintf(msg, sizeof(msg), "VM %s already exists (%s)", r.name, v->rec.state);
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_EXISTS, msg);
	}
	snprintf(r.state, sizeof(r.state), "starting");
	/* record first: a full disk refuses the VM before anything runs */
	if (record_save(g.state, &r, &e) < 0) {
		snprintf(msg, sizeof(msg), "VM not started: %s", e.msg);
		return reply_err(c, q->id, errno_code(e.msg), msg);
	}
	if (v)
		vm_unlink(v);
	v = vm_new(&r);
	if (spawn_vmm(v, NULL, &e) < 0) {
		snprintf(v->rec.state, sizeof(v->rec.state), "exited");
		snprintf(v->rec.exit_reason, sizeof(v->rec.exit_reason), "%s", e.msg);
		vm_save(v);
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_FAILED, e.msg);
	}
	snprintf(v->rec.state, sizeof(v->rec.state), "running");
	if (record_save(g.state, &v->rec, &e) < 0) {
		kill(v->rec.pid, SIGKILL);
		v->stopping = 1;
		snprintf(msg, sizeof(msg), "VM not started: %s", e.msg);
		return reply_err(c, q->id, errno_code(e.msg), msg);
	}
	logmsg("%s: started vmm pid %d", r.name, v->rec.pid);
	struct op *op = op_new(OP_RUN, c, q->id, r.name);
	op_timer(op, run_tick, 0.05);
	update_status();
}

static struct vm *need_vm(struct client *c, uint64_t id, const char *name)
{
	struct vm *v = vm_find(name);
	if (!v) {
		char msg[128];
		snprintf(msg, sizeof(msg), "no such VM");
		reply_err(c, id, AGENT__ERROR_CODE__ERROR_NOT_FOUND, msg);
	}
	return v;
}

static struct vm *need_live(struct client *c, uint64_t id, const char *name)
{
	struct vm *v = need_vm(c, id, name);
	if (v && !v->live) {
		char msg[300];
		snprintf(msg, sizeof(msg), "not running (%s%s%s)", v->rec.state,
			 v->rec.exit_reason[0] ? ": " : "", v->rec.exit_reason);
		reply_err(c, id, AGENT__ERROR_CODE__ERROR_BUSY, msg);
		return NULL;
	}
	return v;
}

static void h_list(struct client *c, Agent__Request *q)
{
	unsigned n = 0, i = 0;
	for (struct vm *v = g.vms; v; v = v->next)
		n++;
	struct info_store *s = calloc(n ? n : 1, sizeof(*s));
	Agent__VmInfo **pp = calloc(n ? n : 1, sizeof(*pp));
	if (!s || !pp)
		abort();
	for (struct vm *v = g.vms; v; v = v->next, i++) {
		vm_info(v, &s[i], 1);
		pp[i] = &s[i].info;
	}
	/* sorted by name for stable output */
	for (unsigned a = 1; a < n; a++)
		for (unsigned b = a; b > 0 && strcmp(pp[b - 1]->def->name, pp[b]->def->name) > 0; b--) {
			Agent__VmInfo *t = pp[b];
			pp[b] = pp[b - 1];
			pp[b - 1] = t;
		}
	Agent__VmList l = AGENT__VM_LIST__INIT;
	l.n_vms = n;
	l.vms = pp;
	Agent__Response r = AGENT__RESPONSE__INIT;
	r.id = q->id;
	r.ok = 1;
	r.result_case = AGENT__RESPONSE__RESULT_LIST;
	r.list = &l;
	client_send(c, &r);
	free(pp);
	free(s);
}

static void h_ctl(struct client *c, Agent__Request *q, const char *name, Vmm__Request__CmdCase cc)
{
	struct vm *v = need_live(c, q->id, name);
	char sock[PATH_MAX];
	struct err e;
	Vmm__Request vq = VMM__REQUEST__INIT;
	Vmm__Pause p = VMM__PAUSE__INIT;
	Vmm__Resume rs = VMM__RESUME__INIT;

	if (!v)
		return;
	if (v->mig)
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_BUSY, "migrating");
	vq.cmd_case = cc;
	if (cc == VMM__REQUEST__CMD_PAUSE)
		vq.pause = &p;
	else
		vq.resume = &rs;
	path_of(sock, sizeof(sock), name, ".sock");
	if (vmm_call_ok(sock, &vq, CTL_TIMEOUT_MS, NULL, &e) < 0)
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_FAILED, e.msg);
	snprintf(v->rec.state, sizeof(v->rec.state), cc == VMM__REQUEST__CMD_PAUSE ? "paused" : "running");
	vm_save(v);
	reply_vm(c, q->id, v);
}

static void h_stop(struct client *c, Agent__Request *q)
{
	struct vm *v = need_live(c, q->id, q->stop->name);
	char sock[PATH_MAX];
	struct err e;

	if (!v)
		return;
	if (v->mig)
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_BUSY,
				 "migrating (vmctl migrate --cancel first)");
	v->stopping = 1;
	if (q->stop->force) {
		kill(v->rec.pid, SIGKILL);
	} else {
		Vmm__Request vq = VMM__REQUEST__INIT;
		Vmm__Quit qu = VMM__QUIT__INIT;
		vq.cmd_case = VMM__REQUEST__CMD_QUIT;
		vq.quit = &qu;
		path_of(sock, sizeof(sock), v->rec.name, ".sock");
		if (vmm_call_ok(sock, &vq, CTL_TIMEOUT_MS, NULL, &e) < 0) {
			logmsg("%s: quit: %s; sending SIGTERM", v->rec.name, e.msg);
			kill(v->rec.pid, SIGTERM);
		}
	}
	struct op *op = op_new(OP_STOP, c, q->id, v->rec.name);
	op_timer(op, stop_tick, 0.1);
}

static void h_log(struct client *c, Agent__Request *q)
{
	if (!need_vm(c, q->id, q->log->name))
		return;
	struct op *op = op_new(OP_LOG, c, q->id, q->log->name);
	op->follow = q->log->follow;
	op->off = q->log->offset;
	op_timer(op, log_tick, 0.2);
	ev_feed_event(g.loop, &op->t, EV_TIMER);
}

static struct op *console_op(const char *name)
{
	for (struct op *op = g.ops; op; op = op->next)
		if (op->kind == OP_LOG && op->confd >= 0 && !strcmp(op->name, name))
			return op;
	return NULL;
}

/* Console attach: connect to the vmm's --console socket and stream the
 * serial log from its current end. Console input: write it there. */
static void h_console(struct client *c, Agent__Request *q)
{
	Agent__Console *cq = q->console;
	struct op *op = console_op(cq->name);
	char path[PATH_MAX], msg[PATH_MAX + 100];

	if (!cq->attach) {
		if (!op || op->c != c)
			return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_BUSY,
					 "console input without an attached console on this connection");
		for (size_t off = 0; off < cq->input.len;) {
			/* non-blocking: the vmm drains its socket into the UART
			 * FIFO; a full socket buffer means the guest reads none */
			ssize_t n = send(op->confd, cq->input.data + off, cq->input.len - off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_FAILED,
						 n < 0 && errno == EAGAIN ?
						 "console input dropped: the guest does not read its serial port" :
						 "console: the vmm closed its console");
			off += (size_t)n;
		}
		return;
	}
	struct vm *v = need_live(c, q->id, cq->name);
	if (!v)
		return;
	if (op)
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_BUSY,
				 "another console is attached to this VM");
	path_of(path, sizeof(path), v->rec.name, ".console");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_FAILED,
				 "no console: the state dir path is too long for a Unix socket");
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(msg, sizeof(msg), "console %s: %s (a vmm started without --console?)", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_FAILED, msg);
	}
	op = op_new(OP_LOG, c, q->id, v->rec.name);
	op->confd = fd;
	op->follow = 1;
	struct stat sb;
	path_of(path, sizeof(path), v->rec.name, ".log");
	op->off = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	/* an empty first chunk tells the client it is attached */
	Agent__Response r = AGENT__RESPONSE__INIT;
	Agent__LogChunk ch = AGENT__LOG_CHUNK__INIT;
	ch.offset = op->off;
	r.id = q->id;
	r.ok = 1;
	r.more = 1;
	r.result_case = AGENT__RESPONSE__RESULT_LOG;
	r.log = &ch;
	client_send(c, &r);
	op_timer(op, log_tick, 0.05);
}

static void h_migrate(struct client *c, Agent__Request *q)
{
	struct vm *v = need_vm(c, q->id, q->migrate->name);
	struct err e;
	if (!v)
		return;
	struct op *op = op_new(OP_MIG, c, q->id, v->rec.name);
	snprintf(op->to, sizeof(op->to), "%s", q->migrate->to);
	op->downtime = q->migrate->downtime_ms;
	op->bw = q->migrate->bandwidth_mbps;
	op->progress = q->migrate->progress;
	if (mig_start(op, v, &e) < 0) {
		reply_err(c, q->id, strstr(e.msg, "peer") ? AGENT__ERROR_CODE__ERROR_PEER :
			  AGENT__ERROR_CODE__ERROR_FAILED, e.msg);
		op_free(op);
	}
}

static void h_migrate_cancel(struct client *c, Agent__Request *q)
{
	struct vm *v = need_vm(c, q->id, q->migrate_cancel->name);
	char sock[PATH_MAX];
	struct err e;
	if (!v)
		return;
	if (!v->mig)
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_BUSY, "no migration in progress");
	Vmm__Request vq = VMM__REQUEST__INIT;
	Vmm__MigrateCancel mc = VMM__MIGRATE_CANCEL__INIT;
	vq.cmd_case = VMM__REQUEST__CMD_MIGRATE_CANCEL;
	vq.migrate_cancel = &mc;
	path_of(sock, sizeof(sock), v->rec.name, ".sock");
	if (vmm_call_ok(sock, &vq, CTL_TIMEOUT_MS, NULL, &e) < 0)
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_FAILED, e.msg);
	reply_vm(c, q->id, v);
}

static void h_evacuate(struct client *c, Agent__Request *q)
{
	Agent__Evacuate *ev = q->evacuate;
	struct op *op = op_new(OP_EVAC, c, q->id, "");
	unsigned n = 0;

	if (ev->n_targets > 16) {
		op_free(op);
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_INVALID_ARGUMENT, "at most 16 targets");
	}
	for (size_t i = 0; i < ev->n_targets; i++)
		snprintf(op->targets[i], sizeof(op->targets[i]), "%s", ev->targets[i]);
	op->ntargets = (unsigned)ev->n_targets;
	op->parallel = ev->parallel ? ev->parallel : 1;
	op->downtime = ev->downtime_ms;
	op->bw = ev->bandwidth_mbps;
	op->progress = ev->progress;
	for (struct vm *v = g.vms; v; v = v->next)
		n++;
	op->vms = calloc(n ? n : 1, sizeof(*op->vms));
	if (!op->vms)
		abort();
	for (struct vm *v = g.vms; v; v = v->next)
		if (v->live && !v->mig && (!strcmp(v->rec.state, "running") || !strcmp(v->rec.state, "paused")))
			snprintf(op->vms[op->nvms++], AGENT_NAME_MAX + 1, "%s", v->rec.name);
	evac_next(op);
}

static void h_version(struct client *c, Agent__Request *q)
{
	Agent__Response r = AGENT__RESPONSE__INIT;
	Agent__VersionInfo vi = AGENT__VERSION_INFO__INIT;
	vi.api_version = AGENT_API_VERSION;
	vi.min_api_version = AGENT_API_VERSION_MIN;
	vi.software = AGENT_SOFTWARE;
	vi.host = g.host;
	r.id = q->id;
	r.ok = 1;
	r.result_case = AGENT__RESPONSE__RESULT_VERSION;
	r.version = &vi;
	client_send(c, &r);
}

static void handle_local(struct client *c, Agent__Request *q)
{
	Agent__ErrorCode code;
	struct err e;
	char msg[600];

	if (agent_request_check(q, 0, &code, &e) < 0) {
		snprintf(msg, sizeof(msg), "%s", e.msg);
		return reply_err(c, q->id, code, msg);
	}
	switch (q->cmd_case) {
	case AGENT__REQUEST__CMD_RUN:		return h_run(c, q);
	case AGENT__REQUEST__CMD_LIST:		return h_list(c, q);
	case AGENT__REQUEST__CMD_SHOW: {
		struct vm *v = need_vm(c, q->id, q->show->name);
		if (v)
			reply_vm(c, q->id, v);
		return;
	}
	case AGENT__REQUEST__CMD_STOP:		return h_stop(c, q);
	case AGENT__REQUEST__CMD_PAUSE:		return h_ctl(c, q, q->pause->name, VMM__REQUEST__CMD_PAUSE);
	case AGENT__REQUEST__CMD_RESUME:	return h_ctl(c, q, q->resume->name, VMM__REQUEST__CMD_RESUME);
	case AGENT__REQUEST__CMD_LOG:		return h_log(c, q);
	case AGENT__REQUEST__CMD_CONSOLE:	return h_console(c, q);
	case AGENT__REQUEST__CMD_MIGRATE:	return h_migrate(c, q);
	case AGENT__REQUEST__CMD_MIGRATE_CANCEL: return h_migrate_cancel(c, q);
	case AGENT__REQUEST__CMD_EVACUATE:	return h_evacuate(c, q);
	case AGENT__REQUEST__CMD_VERSION:	return h_version(c, q);
	default:
		return reply_err(c, q->id, AGENT__ERROR_CODE__ERROR_UNSUPPORTED, "unsupported command");
	}
}

/* ---------------- local connections ---------------- */

static void client_close(struct client *c)
{
	for (struct op *op = g.ops; op; op = op->next)
		if (op->c == c)
			op->c = NULL;
	for (struct client **p = &g.clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	ev_io_stop(g.loop, &c->rio);
	ev_io_stop(g.loop, &c->wio);
	close(c->fd);
	pmsg_reader_free(&c->rd);
	free(c->out);
	free(c);
}

static void client_wcb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop; (void)revents;
	client_flush(w->data);
}

static void client_rcb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;
	uint8_t buf[16384];
	struct err e;
	(void)loop; (void)revents;

	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	for (ssize_t off = 0; off < n;) {
		ssize_t k = pmsg_reader_feed(&c->rd, buf + off, (size_t)(n - off), &e);
		if (k < 0)
			goto malformed;
		off += k;
		if (pmsg_reader_ready(&c->rd)) {
			ProtobufCMessage *m;
			if (pmsg_reader_take(&c->rd, &agent__request__descriptor, &m, &e) < 0)
				goto malformed;
			handle_local(c, (Agent__Request *)m);
			agent__request__free_unpacked((Agent__Request *)m, NULL);
			/* handle_local may have closed c (write error) */
			int found = 0;
			for (struct client *x = g.clients; x; x = x->next)
				found |= x == c;
			if (!found)
				return;
		}
	}
	return;
malformed:
	reply_err(c, 0, AGENT__ERROR_CODE__ERROR_MALFORMED, e.msg);
	ev_io_stop(g.loop, &c->rio);
	c->closing = 1;
	client_flush(c);
}

static void unix_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	pmsg_reader_init(&c->rd, 0);
	ev_io_init(&c->rio, client_rcb, fd, EV_READ);
	ev_io_init(&c->wio, client_wcb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	c->next = g.clients;
	g.clients = c;
	ev_io_start(loop, &c->rio);
}

/* ---------------- peer link ---------------- */

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;
	if (fd < 0)
		return 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void peer_prepare(Agent__Request *q, Agent__Response *r, Agent__PrepareResult *pr,
			 char *msg, size_t cap)
{
	struct vm_record rec;
	struct err e;
	struct vm *v = vm_find(q->prepare_incoming->def->name);
	char addr[64];

	if (record_from_def(&rec, q->prepare_incoming->def, 1, &e) < 0) {
		r->code = AGENT__ERROR_CODE__ERROR_INVALID_ARGUMENT;
		snprintf(msg, cap, "%s", e.msg);
		return;
	}
	if (v && (v->live || v->mig)) {
		r->code = AGENT__ERROR_CODE__ERROR_EXISTS;
		snprintf(msg, cap, "VM %s already exists here (%s)", rec.name, v->rec.state);
		return;
	}
	int port = free_port();
	if (!port) {
		snprintf(msg, cap, "no free port");
		return;
	}
	snprintf(addr, sizeof(addr), "0.0.0.0:%d", port);
	snprintf(rec.state, sizeof(rec.state), "incoming");
	snprintf(rec.source, sizeof(rec.source), "%s", q->prepare_incoming->source ?
		 q->prepare_incoming->source : "");
	rec.incoming_port = port;
	if (record_save(g.state, &rec, &e) < 0) {
		r->code = errno_code(e.msg);
		snprintf(msg, cap, "%s", e.msg);
		return;
	}
	if (v)
		vm_unlink(v);
	v = vm_new(&rec);
	if (spawn_vmm(v, addr, &e) < 0) {
		snprintf(v->rec.state, sizeof(v->rec.state), "exited");
		snprintf(v->rec.exit_reason, sizeof(v->rec.exit_reason), "%s", e.msg);
		vm_save(v);
		snprintf(msg, cap, "%s", e.msg);
		return;
	}
	vm_save(v);
	/* wait (bounded: 8 s, under the source's 10 s peer timeout) until the
	 * incoming vmm listens and answers on its control socket */
	int ready = 0;
	for (int i = 0; i < 160 && !ready; i++) {
		int ws;
		if (waitpid(v->rec.pid, &ws, WNOHANG) == v->rec.pid) {
			char reason[160];
			ev_child_stop(g.loop, &v->child);
			agent_exit_reason(ws, reason, sizeof(reason));
			vm_exited(v, reason);
			snprintf(msg, cap, "incoming vmm exited: %s", v->rec.exit_reason);
			return;
		}
		/* The control socket opens before the vmm listens for the
		 * source: answering then let the source's connect be refused.
		 * The vmm prints "incoming: listening on" after listen(). */
		ready = vmm_log_has(v->rec.name, "incoming: listening on") && vmm_status_ok(v);
		if (!ready)
			usleep(50000);
	}
	if (!ready) {
		kill(v->rec.pid, SIGKILL);
		v->stopping = 1;
		snprintf(v->rec.state, sizeof(v->rec.state), "aborted");
		vm_save(v);
		snprintf(msg, cap, "incoming vmm did not listen within 8 s (killed)");
		return;
	}
	logmsg("%s: incoming from %s on port %d (vmm pid %d)", rec.name, rec.source, port, v->rec.pid);
	r->ok = 1;
	pr->port = (uint32_t)port;
	r->result_case = AGENT__RESPONSE__RESULT_PREPARED;
	r->prepared = pr;
	update_status();
}

/* 1 when v's vmm answers Status with RUNNING or PAUSED (an incoming vmm that
 * has received the guest and GO), 0 when it answers otherwise, -1 (e set)
 * when it does not answer: the caller must treat that as "cannot tell". */
static int vm_runs_guest(struct vm *v, struct err *e)
{
	char sock[PATH_MAX];
	int runs;
	Vmm__Request vq = VMM__REQUEST__INIT;
	Vmm__Status vs = VMM__STATUS__INIT;
	Vmm__Response *vr = NULL;
	vq.cmd_case = VMM__REQUEST__CMD_STATUS;
	vq.status = &vs;
	path_of(sock, sizeof(sock), v->rec.name, ".sock");
	if (vmm_call_ok(sock, &vq, CTL_TIMEOUT_MS, &vr, e) < 0)
		return -1;
	runs = vr->status && (vr->status->state == VMM__VM_STATE__VM_STATE_RUNNING ||
			      vr->status->state == VMM__VM_STATE__VM_STATE_PAUSED);
	vmm__response__free_unpacked(vr, NULL);
	return runs;
}

static void handle_peer(Agent__Request *q, Agent__Response *r, char *msg, size_t cap)
{
	Agent__ErrorCode code;
	struct err e;
	static Agent__PrepareResult pr;
	static Agent__WhoRunsResult who;
	struct vm *v;

	r->id = q->id;
	r->code = AGENT__ERROR_CODE__ERROR_FAILED;
	if (agent_request_check(q, 1, &code, &e) < 0) {
		r->code = code;
		snprintf(msg, cap, "%s", e.msg);
		return;
	}
	agent__prepare_result__init(&pr);
	agent__who_runs_result__init(&who);
	switch (q->cmd_case) {
	case AGENT__REQUEST__CMD_VERSION:
		r->ok = 1;
		return;
	case AGENT__REQUEST__CMD_PREPARE_INCOMING:
		return peer_prepare(q, r, &pr, msg, cap);
	case AGENT__REQUEST__CMD_COMMIT:
		v = vm_find(q->commit->name);
		if (!v || strcmp(v->rec.state, "incoming")) {
			r->code = AGENT__ERROR_CODE__ERROR_NOT_FOUND;
			snprintf(msg, cap, "no incoming VM %s", q->commit->name);
			return;
		}
		snprintf(v->rec.state, sizeof(v->rec.state), "running");
		vm_save(v);
		logmsg("%s: committed (now runs here)", v->rec.name);
		r->ok = 1;
		return;
	case AGENT__REQUEST__CMD_ABORT_INCOMING:
		v = vm_find(q->abort_incoming->name);
		if (v && !strcmp(v->rec.state, "incoming") && v->live && vm_runs_guest(v, &e) == 1) {
			/* it received GO: this copy is the guest now; killing
			 * it would lose the VM. Keep it (the source commits). */
			snprintf(msg, cap, "%s already runs here (received the guest): not aborting",
				 v->rec.name);
			logmsg("%s: refused AbortIncoming: the incoming vmm already runs the guest",
			       v->rec.name);
			return;
		}
		if (v && !strcmp(v->rec.state, "incoming")) {
			if (v->live)
				kill(v->rec.pid, SIGKILL);
			v->stopping = 1;
			snprintf(v->rec.state, sizeof(v->rec.state), "aborted");
			vm_save(v);
			logmsg("%s: incoming migration aborted", v->rec.name);
		}
		r->ok = 1;
		return;
	case AGENT__REQUEST__CMD_WHO_RUNS: {
		static char st[32];
		v = vm_find(q->who_runs->name);
		r->ok = 1;
		r->result_case = AGENT__RESPONSE__RESULT_WHO;
		r->who = &who;
		if (!v) {
			who.state = "unknown";
			return;
		}
		snprintf(st, sizeof(st), "%s", v->rec.state);
		who.state = st;
		who.migrated_to = v->rec.migrated_to;
		if (v->live) {
			/* an incoming vmm that finished receiving runs the guest */
			int runs = vm_runs_guest(v, &e);

			if (runs >= 0) {
				who.runs = runs;
			} else if (!strcmp(v->rec.state, "running")) {
				who.runs = 1;	/* committed here, just slow to answer */
			} else {
				/* a mute incoming vmm may already run the guest:
				 * "cannot tell", never "no" */
				r->ok = 0;
				r->result_case = AGENT__RESPONSE__RESULT__NOT_SET;
				r->who = NULL;
				snprintf(msg, cap, "cannot tell whether %s runs here: %s", v->rec.name, e.msg);
			}
		}
		return;
	}
	default:
		r->code = AGENT__ERROR_CODE__ERROR_UNSUPPORTED;
		snprintf(msg, cap, "unsupported peer command");
	}
}

static void peer_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct frame_conn fc;
	struct err e;
	char msg[600] = "";
	uint8_t *buf;
	size_t len;
	uint16_t type;
	(void)loop; (void)revents;

	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!g.have_secret || frame_conn_open(&fc, fd, &g.secret, AUTH_SERVER, 5000, &e) < 0) {
		Agent__Response r = AGENT__RESPONSE__INIT;
		r.code = AGENT__ERROR_CODE__ERROR_UNAUTHENTICATED;
		r.error = g.have_secret ? "authentication failed" : "this agentd has no cluster secret";
		r.api_version = AGENT_API_VERSION;
		pmsg_send(fd, &r.base, &e);
		logmsg("peer: %s", g.have_secret ? e.msg : "rejected (no --secret-file)");
		close(fd);
		return;
	}
	buf = malloc(PMSG_MAX_SIZE);
	if (!buf)
		goto out;
	if (frame_recv(&fc, &type, buf, PMSG_MAX_SIZE, &len, &e) < 0) {
		if (!fc.eof)
			logmsg("peer: %s", e.msg);
		goto out;
	}
	Agent__Response r = AGENT__RESPONSE__INIT;
	Agent__Request *q = type == AGENT_FRAME_REQUEST ? agent_request_decode(buf, len, &e) : NULL;
	if (!q) {
		r.code = AGENT__ERROR_CODE__ERROR_MALFORMED;
		snprintf(msg, sizeof(msg), "%s", type == AGENT_FRAME_REQUEST ? e.msg : "unexpected frame type");
	} else {
		handle_peer(q, &r, msg, sizeof(msg));
	}
	if (!r.ok)
		r.error = msg;
	r.api_version = AGENT_API_VERSION;
	len = agent__response__pack(&r, buf);
	if (q)
		agent__request__free_unpacked(q, NULL);
	if (frame_send(&fc, AGENT_FRAME_RESPONSE, buf, (uint32_t)len, &e) < 0)
		logmsg("peer: %s", e.msg);
out:
	free(buf);
	frame_conn_close(&fc);
	close(fd);
}

/* ---------------- setup ---------------- */

static int listen_unix(const char *path, struct err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(err, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(err, errno, "socket");
	/* stale socket: replace only if nobody listens */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return err_set(err, "%s exists and is not a socket", path);
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return err_set(err, "%s: another agentd is listening there", path);
		}
		unlink(path);
	}
	mode_t old = umask(0077);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		return err_errno(err, e, "listen on %s", path);
	}
	return fd;
}

static int listen_tcp(const char *spec, struct err *err)
{
	char host[256], ps[16];
	int port, fd = -1, one = 1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;

	if (agent_split_hostport(spec, host, sizeof(host), &port, err) < 0)
		return err_prefix(err, "--listen");
	snprintf(ps, sizeof(ps), "%d", port);
	int rc = getaddrinfo(strcmp(host, "*") ? host : NULL, ps, &hints, &res);
	if (rc)
		return err_set(err, "--listen %s: %s", spec, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			int e = errno;
			close(fd);
			freeaddrinfo(res);
			return err_errno(err, e, "listen on %s", spec);
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_errno(err, errno, "socket");
	return fd;
}

static void wd_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)w; (void)revents;
	sd_notify(0, "WATCHDOG=1");
}

static void status_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)w; (void)revents;
	update_status();
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	logmsg("signal %d: stopping (VMs keep running)", w->signum);
	sd_notify(0, "STOPPING=1\nSTATUS=stopping (VMs keep running)");
	ev_break(loop, EVBREAK_ALL);
}

int agentd_main(const struct agentd_opts *o)
{
	struct err e;
	int n;

	memset(&g, 0, sizeof(g));
	g.o = o;
	g.unix_fd = g.peer_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	if (!realpath(o->state_dir, g.state)) {
		if (mkdir(o->state_dir, 0700) < 0 || !realpath(o->state_dir, g.state)) {
			logmsg("state dir %s: %s", o->state_dir, strerror(errno));
			return 1;
		}
	}
	if (o->vmm_path) {
		if (!realpath(o->vmm_path, g.vmm)) {
			logmsg("--vmm %s: %s", o->vmm_path, strerror(errno));
			return 1;
		}
	} else {
		snprintf(g.vmm, sizeof(g.vmm), "/usr/local/bin/vmm");
	}
	if (o->secret_file) {
		if (auth_secret_load(o->secret_file, &g.secret, &e) < 0) {
			logmsg("--secret-file: %s", e.msg);
			return 1;
		}
		if (!realpath(o->secret_file, g.secret_path))
			snprintf(g.secret_path, sizeof(g.secret_path), "%s", o->secret_file);
		g.have_secret = 1;
	}
	if (o->host_name) {
		snprintf(g.host, sizeof(g.host), "%s", o->host_name);
	} else {
		char hn[200] = "localhost";
		gethostname(hn, sizeof(hn) - 1);
		snprintf(g.host, sizeof(g.host), "%s", hn);
	}

	g.loop = ev_default_loop(EVFLAG_AUTO);
	if (!g.loop) {
		logmsg("cannot initialise libev");
		return 1;
	}
	/* socket activation: a Unix stream socket = local API, inet = peers */
	n = sd_listen_fds(1);
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0 && g.unix_fd < 0)
			g.unix_fd = fd;
		else if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0 && g.peer_fd < 0)
			g.peer_fd = fd;
		else
			logmsg("ignoring passed fd %d (not a listening stream socket)", fd);
	}
	if (g.unix_fd < 0) {
		if (!o->socket_path) {
			logmsg("no --socket and no socket passed by systemd");
			return 1;
		}
		g.unix_fd = listen_unix(o->socket_path, &e);
		if (g.unix_fd < 0) {
			logmsg("%s", e.msg);
			return 1;
		}
		g.own_unix = 1;
	}
	if (g.peer_fd < 0 && o->listen) {
		g.peer_fd = listen_tcp(o->listen, &e);
		if (g.peer_fd < 0) {
			logmsg("%s", e.msg);
			return 1;
		}
	}
	fcntl(g.unix_fd, F_SETFL, fcntl(g.unix_fd, F_GETFL) | O_NONBLOCK);
	adopt_all();

	ev_io_init(&g.unix_w, unix_accept_cb, g.unix_fd, EV_READ);
	ev_io_start(g.loop, &g.unix_w);
	if (g.peer_fd >= 0) {
		fcntl(g.peer_fd, F_SETFL, fcntl(g.peer_fd, F_GETFL) | O_NONBLOCK);
		ev_io_init(&g.peer_w, peer_accept_cb, g.peer_fd, EV_READ);
		ev_io_start(g.loop, &g.peer_w);
	}
	uint64_t wd_usec = 0;
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec) {
		double iv = (double)wd_usec / 2e6;
		ev_timer_init(&g.wd_t, wd_cb, 0., iv);
		ev_timer_again(g.loop, &g.wd_t);
		sd_notify(0, "WATCHDOG=1");
	}
	ev_timer_init(&g.status_t, status_cb, 10., 10.);
	ev_timer_start(g.loop, &g.status_t);
	ev_signal_init(&g.sigterm, sig_cb, SIGTERM);
	ev_signal_init(&g.sigint, sig_cb, SIGINT);
	ev_signal_start(g.loop, &g.sigterm);
	ev_signal_start(g.loop, &g.sigint);

	unsigned vms = 0, live = 0;
	for (struct vm *v = g.vms; v; v = v->next) {
		vms++;
		live += v->live;
	}
	logmsg("serving (state %s, vmm %s%s%s), %u VMs known, %u running", g.state, g.vmm,
	       g.peer_fd >= 0 ? ", peers on " : "", g.peer_fd >= 0 ? (o->listen ? o->listen : "passed fd") : "",
	       vms, live);
	sd_notifyf(0, "READY=1\nSTATUS=serving %u VMs (%u running, %u re-adopted)", vms, live, live);

	ev_run(g.loop, 0);

	while (g.clients)
		client_close(g.clients);
	if (g.own_unix && o->socket_path)
		unlink(o->socket_path);
	auth_secret_free(&g.secret);
	return 0;
}
