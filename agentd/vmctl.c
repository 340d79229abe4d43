/* vmctl — operator CLI for agentd.
 *
 *   vmctl [--host SOCKET] [--json] COMMAND ...
 *     run NAME --kernel F [--initrd F] [--cmdline S] [--mem SIZE] [--cpus N]
 *              [--disk PATH]... [--net tap=IF|bridge=BR]...
 *     list                     name, state, host, cpus, mem, uptime
 *     show NAME
 *     log NAME [--follow]
 *     console NAME [--linger SEC]   (interactive serial; Ctrl-] detaches)
 *     pause|resume NAME
 *     stop NAME [--force]
 *     migrate NAME --to HOST[:PORT] [--downtime MS] [--bandwidth MBPS] [--no-progress]
 *     migrate --cancel NAME
 *     evacuate --to HOST[,HOST...] [--parallel N] [--no-progress]
 *     version
 *
 * SOCKET defaults to $AGENTD_SOCKET, else /run/agentd/agentd.sock.
 * Exit status: 0 ok; 1 the operation failed; 2 usage error; 3 agentd
 * unreachable or protocol error; 4 no such VM. Errors go to stderr as
 * "vmctl: CMD NAME: message". */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agentd/agent.h"
#include "lib/fdio.h"
#include "proto/api.h"
#include "proto/frame.h"

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_CONN = 3, EX_NOTFOUND = 4 };

static const char usage_text[] =
	"usage: vmctl [--host SOCKET] [--json] COMMAND ...\n"
	"  run NAME --kernel F [--initrd F] [--cmdline S] [--mem SIZE] [--cpus N]\n"
	"           [--disk PATH]... [--net tap=IF|bridge=BR]...\n"
	"  list | show NAME | log NAME [--follow] | pause NAME | resume NAME | stop NAME [--force]\n"
	"  console NAME [--linger SEC]   interactive serial console (Ctrl-] detaches; with stdin\n"
	"                                not a terminal: send it, show output for SEC more seconds)\n"
	"  migrate NAME --to HOST[:PORT] [--downtime MS] [--bandwidth MBPS] [--no-progress]\n"
	"  migrate --cancel NAME\n"
	"  evacuate --to HOST[,HOST...] [--parallel N] [--no-progress]\n"
	"  version\n"
	"SOCKET: agentd's socket (default $AGENTD_SOCKET or /run/agentd/agentd.sock)\n"
	"exit: 0 ok, 1 failed, 2 usage, 3 agentd unreachable, 4 no such VM\n";

static const char *cmd = "", *target = "";
static int json;

static void __attribute__((noreturn)) usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vmctl: %s%s", cmd, cmd[0] ? ": " : "");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(see 'vmctl --help')\n");
	va_end(ap);
	exit(EX_USAGE);
}

static void __attribute__((noreturn)) fail(int code, const char *msg)
{
	fprintf(stderr, "vmctl: %s%s%s: %s\n", cmd, target[0] ? " " : "", target, msg);
	exit(code);
}

static int conn_fd = -1;

static void connect_agent(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[PATH_MAX + 100];
	if (strlen(path) >= sizeof(sa.sun_path))
		fail(EX_USAGE, "socket path too long");
	strcpy(sa.sun_path, path);
	conn_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn_fd < 0 || connect(conn_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(msg, sizeof(msg), "cannot reach agentd at %s: %s (is agentd running? --host)",
			 path, strerror(errno));
		fail(EX_CONN, msg);
	}
}

static void send_req(Agent__Request *q)
{
	struct err e;
	q->api_version = AGENT_API_VERSION;
	q->id = 1;
	if (pmsg_send(conn_fd, &q->base, &e) < 0)
		fail(EX_CONN, e.msg);
}

static Agent__Response *recv_resp(void)
{
	ProtobufCMessage *m;
	struct err e;
	int rc = pmsg_recv(conn_fd, &agent__response__descriptor, &m, &e);
	if (rc < 0)
		fail(EX_CONN, rc == -2 ? "agentd closed the connection" : e.msg);
	return (Agent__Response *)m;
}

/* Copy the serial bytes a Log response carries to stdout. */
static int write_log_chunk(const Agent__Response *r)
{
	struct err e;

	if (r->log && r->log->data.len && fdio_write_full(1, r->log->data.data, r->log->data.len, &e) < 0)
		return -1;
	return 0;
}

static void __attribute__((noreturn)) fail_resp(Agent__Response *r)
{
	int code = r->code == AGENT__ERROR_CODE__ERROR_NOT_FOUND ? EX_NOTFOUND :
		   r->code == AGENT__ERROR_CODE__ERROR_INVALID_ARGUMENT ? EX_USAGE :
		   r->code == AGENT__ERROR_CODE__ERROR_MALFORMED ||
		   r->code == AGENT__ERROR_CODE__ERROR_BAD_VERSION ? EX_CONN : EX_FAIL;
	if (json) {
		printf("{\"ok\":false,\"code\":\"%s\",\"error\":", agent_error_code_name(r->code));
		const char *s = r->error ? r->error : "";
		putchar('"');
		for (; *s; s++)
			if (*s == '"' || *s == '\\') printf("\\%c", *s);
			else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
			else putchar(*s);
		printf("\"}\n");
	}
	fail(code, r->error && r->error[0] ? r->error : agent_error_code_name(r->code));
}

/* ---- output ---- */

static void jstr(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') printf("\\%c", c);
		else if (c < 0x20) printf("\\u%04x", c);
		else putchar(c);
	}
	putchar('"');
}

static void fmt_mem(uint64_t b, char *out, size_t cap)
{
	if (b >= (1ull << 30) && !(b % (1ull << 30))) snprintf(out, cap, "%" PRIu64 "G", b >> 30);
	else if (b >= (1ull << 20)) snprintf(out, cap, "%" PRIu64 "M", b >> 20);
	else snprintf(out, cap, "%" PRIu64 "K", b >> 10);
}

static void fmt_uptime(uint64_t ms, char *out, size_t cap)
{
	uint64_t s = ms / 1000;
	if (!ms) snprintf(out, cap, "-");
	else if (s < 60) snprintf(out, cap, "%" PRIu64 "s", s);
	else if (s < 3600) snprintf(out, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400) snprintf(out, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else snprintf(out, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
}

static void json_vm(const Agent__VmInfo *v)
{
	const Agent__VmDefinition *d = v->def;
	printf("{\"name\":");
	jstr(d ? d->name : "");
	printf(",\"state\":");
	jstr(v->state);
	printf(",\"host\":");
	jstr(v->host);
	printf(",\"cpus\":%u,\"mem_bytes\":%" PRIu64 ",\"uptime_ms\":%" PRIu64 ",\"pid\":%u",
	       d ? d->cpus : 0, d ? d->mem_bytes : 0, v->uptime_ms, v->pid);
	printf(",\"kernel\":"); jstr(d ? d->kernel : "");
	printf(",\"initrd\":"); jstr(d ? d->initrd : "");
	printf(",\"cmdline\":"); jstr(d ? d->cmdline : "");
	printf(",\"disks\":[");
	for (size_t i = 0; d && i < d->n_disks; i++) { if (i) putchar(','); jstr(d->disks[i]); }
	printf("],\"nets\":[");
	for (size_t i = 0; d && i < d->n_nets; i++) { if (i) putchar(','); jstr(d->nets[i]); }
	printf("],\"exit_reason\":"); jstr(v->exit_reason);
	printf(",\"exit_detail\":"); jstr(v->exit_detail);
	printf(",\"migrated_to\":"); jstr(v->migrated_to);
	printf(",\"control\":"); jstr(v->control);
	printf(",\"serial\":"); jstr(v->serial);
	printf(",\"adopted\":%s,\"started_unix_ms\":%" PRIu64 "}", v->adopted ? "true" : "false",
	       v->started_unix_ms);
}

static void show_vm(const Agent__VmInfo *v)
{
	char mem[32], up[32];
	const Agent__VmDefinition *d = v->def;
	if (json) {
		json_vm(v);
		putchar('\n');
		return;
	}
	fmt_mem(d ? d->mem_bytes : 0, mem, sizeof(mem));
	fmt_uptime(v->uptime_ms, up, sizeof(up));
	printf("name:        %s\n", d ? d->name : "");
	printf("state:       %s\n", v->state);
	printf("host:        %s\n", v->host);
	printf("pid:         %u%s\n", v->pid, v->adopted ? " (re-adopted)" : "");
	printf("cpus:        %u\n", d ? d->cpus : 0);
	printf("mem:         %s\n", mem);
	printf("uptime:      %s\n", up);
	printf("kernel:      %s\n", d ? d->kernel : "");
	if (d && d->initrd && d->initrd[0]) printf("initrd:      %s\n", d->initrd);
	if (d && d->cmdline && d->cmdline[0]) printf("cmdline:     %s\n", d->cmdline);
	for (size_t i = 0; d && i < d->n_disks; i++) printf("disk:        %s\n", d->disks[i]);
	for (size_t i = 0; d && i < d->n_nets; i++) printf("net:         %s\n", d->nets[i]);
	if (v->exit_reason && v->exit_reason[0]) printf("exit reason: %s\n", v->exit_reason);
	if (v->migrated_to && v->migrated_to[0]) printf("migrated to: %s\n", v->migrated_to);
	if (v->exit_detail && v->exit_detail[0]) printf("last output:\n%s", v->exit_detail);
	printf("control:     %s\n", v->control);
	printf("serial log:  %s\n", v->serial);
}

/* ---- commands ---- */

static Agent__Response *call(Agent__Request *q)
{
	send_req(q);
	Agent__Response *r = recv_resp();
	if (!r->ok)
		fail_resp(r);
	return r;
}

static void need_name(int argc, char **argv)
{
	if (optind >= argc)
		usage_error("missing VM name");
	target = argv[optind++];
	struct err e;
	if (agent_name_valid(target, &e) < 0)
		usage_error("%s", e.msg);
}

static void no_more(int argc, char **argv)
{
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option o[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' }, { "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'p' }, { "disk", required_argument, NULL, 'd' },
		{ "net", required_argument, NULL, 'n' }, { "json", no_argument, NULL, 'j' }, { 0 }
	};
	Agent__VmDefinition d = AGENT__VM_DEFINITION__INIT;
	static char kernel[PATH_MAX], initrd[PATH_MAX], disks[AGENT_MAX_DISKS][PATH_MAX + 8];
	char *dp[AGENT_MAX_DISKS], *np[AGENT_MAX_NETS];
	struct err e;
	int c;

	optind = 1;
	if (argc > 1 && argv[1][0] != '-') {
		target = argv[1];
		optind = 2;
	}
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 'k':
		case 'i': {
			char *dst = c == 'k' ? kernel : initrd;
			if (!realpath(optarg, dst))
				usage_error("--%s %s: %s", c == 'k' ? "kernel" : "initrd", optarg, strerror(errno));
			if (c == 'k') d.kernel = kernel; else d.initrd = initrd;
			break;
		}
		case 'c': d.cmdline = optarg; break;
		case 'm':
			if (agent_parse_size(optarg, &d.mem_bytes, &e) < 0)
				usage_error("--mem: %s", e.msg);
			break;
		case 'p': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > AGENT_CPUS_MAX)
				usage_error("--cpus: invalid count '%s' (1..%d)", optarg, AGENT_CPUS_MAX);
			d.cpus = (uint32_t)v;
			break;
		}
		case 'd': {
			if (d.n_disks >= AGENT_MAX_DISKS)
				usage_error("at most %d disks", AGENT_MAX_DISKS);
			char path[PATH_MAX], *comma = strchr(optarg, ',');
			snprintf(path, sizeof(path), "%.*s", comma ? (int)(comma - optarg) : (int)strlen(optarg), optarg);
			char abs[PATH_MAX];
			if (!realpath(path, abs))
				usage_error("--disk %s: %s", path, strerror(errno));
			snprintf(disks[d.n_disks], sizeof(disks[0]), "%s%s", abs, comma ? comma : "");
			dp[d.n_disks] = disks[d.n_disks];
			d.n_disks++;
			break;
		}
		case 'n':
			if (d.n_nets >= AGENT_MAX_NETS)
				usage_error("at most %d NICs", AGENT_MAX_NETS);
			if (strncmp(optarg, "tap=", 4) && strncmp(optarg, "bridge=", 7))
				usage_error("--net %s: want tap=IF or bridge=BR", optarg);
			np[d.n_nets++] = optarg;
			break;
		case 'j': json = 1; break;
		default: usage_error("bad option '%s'", argv[optind - 1]);
		}
	}
	if (!target[0])
		need_name(argc, argv);
	else if (agent_name_valid(target, &e) < 0)
		usage_error("%s", e.msg);
	no_more(argc, argv);
	if (!d.kernel)
		usage_error("--kernel is required");
	d.name = (char *)target;
	d.disks = dp;
	d.nets = np;
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__Run run = AGENT__RUN__INIT;
	run.def = &d;
	q.cmd_case = AGENT__REQUEST__CMD_RUN;
	q.run = &run;
	Agent__Response *r = call(&q);
	if (json && r->vm)
		show_vm(r->vm);
	else
		printf("started %s (vmm pid %u)\n", target, r->vm ? r->vm->pid : 0);
	return EX_OK;
}

static int cmd_list(int argc, char **argv)
{
	no_more(argc, argv);
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__List l = AGENT__LIST__INIT;
	q.cmd_case = AGENT__REQUEST__CMD_LIST;
	q.list = &l;
	Agent__Response *r = call(&q);
	size_t n = r->list ? r->list->n_vms : 0;
	if (json) {
		putchar('[');
		for (size_t i = 0; i < n; i++) {
			if (i) putchar(',');
			json_vm(r->list->vms[i]);
		}
		printf("]\n");
		return EX_OK;
	}
	printf("%-20s %-16s %-16s %4s %7s %9s\n", "NAME", "STATE", "HOST", "CPUS", "MEM", "UPTIME");
	for (size_t i = 0; i < n; i++) {
		Agent__VmInfo *v = r->list->vms[i];
		char mem[32], up[32];
		fmt_mem(v->def ? v->def->mem_bytes : 0, mem, sizeof(mem));
		fmt_uptime(v->uptime_ms, up, sizeof(up));
		printf("%-20s %-16s %-16s %4u %7s %9s\n", v->def ? v->def->name : "?", v->state,
		       !strcmp(v->state, "migrated") && v->migrated_to[0] ? v->migrated_to : v->host,
		       v->def ? v->def->cpus : 0, mem, up);
	}
	return EX_OK;
}

static int cmd_named(int argc, char **argv, Agent__Request__CmdCase cc)
{
	static const struct option o[] = {
		{ "force", no_argument, NULL, 'f' }, { "follow", no_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' }, { 0 }
	};
	int force = 0, follow = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f", o, NULL)) != -1) {
		if (c == 'f' && cc == AGENT__REQUEST__CMD_STOP) force = 1;
		else if ((c == 'F' || c == 'f') && cc == AGENT__REQUEST__CMD_LOG) follow = 1;
		else if (c == 'j') json = 1;
		else usage_error("bad option '%s'", argv[optind - 1]);
	}
	need_name(argc, argv);
	no_more(argc, argv);
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__Show sh = AGENT__SHOW__INIT;
	Agent__Stop st = AGENT__STOP__INIT;
	Agent__Pause pa = AGENT__PAUSE__INIT;
	Agent__Resume re = AGENT__RESUME__INIT;
	Agent__Log lg = AGENT__LOG__INIT;
	q.cmd_case = cc;
	switch (cc) {
	case AGENT__REQUEST__CMD_SHOW: sh.name = (char *)target; q.show = &sh; break;
	case AGENT__REQUEST__CMD_STOP: st.name = (char *)target; st.force = force; q.stop = &st; break;
	case AGENT__REQUEST__CMD_PAUSE: pa.name = (char *)target; q.pause = &pa; break;
	case AGENT__REQUEST__CMD_RESUME: re.name = (char *)target; q.resume = &re; break;
	case AGENT__REQUEST__CMD_LOG: lg.name = (char *)target; lg.follow = follow; q.log = &lg; break;
	default: abort();
	}
	if (cc == AGENT__REQUEST__CMD_LOG) {
		send_req(&q);
		for (;;) {
			Agent__Response *r = recv_resp();
			if (!r->ok)
				fail_resp(r);
			if (write_log_chunk(r) < 0)
				return EX_FAIL;
			if (!r->more)
				return EX_OK;
			agent__response__free_unpacked(r, NULL);
		}
	}
	Agent__Response *r = call(&q);
	if (cc == AGENT__REQUEST__CMD_SHOW || json) {
		if (r->vm)
			show_vm(r->vm);
	} else {
		printf("%s: %s\n", target, r->vm ? r->vm->state : "ok");
	}
	return EX_OK;
}

static void print_progress(const Agent__MigrateProgress *p, int quiet)
{
	const Vmm__MigrationStats *s = p->stats;
	if (json) {
		printf("{\"name\":"); jstr(p->name);
		printf(",\"to\":"); jstr(p->to);
		printf(",\"message\":"); jstr(p->message);
		printf(",\"finished\":%s", p->finished ? "true" : "false");
		if (s)
			printf(",\"phase\":\"%s\",\"outcome\":\"%s\",\"round\":%u,\"bytes_sent\":%" PRIu64
			       ",\"bytes_remaining\":%" PRIu64 ",\"downtime_ms\":%" PRIu64 ",\"total_ms\":%" PRIu64,
			       vmm_phase_name(s->phase), vmm_outcome_name(s->outcome), s->round,
			       s->bytes_sent, s->bytes_remaining, s->downtime_ms, s->total_ms);
		printf(",\"unknown\":[");
		for (size_t i = 0; i < p->n_unknown; i++) {
			if (i)
				putchar(',');
			jstr(p->unknown[i]);
		}
		printf("]");
		printf("}\n");
		fflush(stdout);
		return;
	}
	if (quiet && !p->finished)
		return;
	static int tty = -1, bar_shown;
	if (tty < 0)
		tty = isatty(1);
	if (tty && s && !p->finished) {
		/* one live line: phase, %, MiB/s, dirty rate, ETA */
		uint64_t total = s->ram_bytes ? s->ram_bytes : s->bytes_sent + s->bytes_remaining;
		unsigned pct = total ? (unsigned)(100 - (s->bytes_remaining > total ? total :
							s->bytes_remaining) * 100 / total) : 0;
		char eta[32] = "?";
		if (s->bandwidth_bps)
			snprintf(eta, sizeof(eta), "%" PRIu64 "s", s->bytes_remaining / s->bandwidth_bps);
		char bar[21];
		for (unsigned i = 0; i < 20; i++)
			bar[i] = i < pct / 5 ? '#' : '.';
		bar[20] = 0;
		printf("\r\033[K%s -> %s: %-9s [%s] %3u%% round %u, %.1f MiB/s, dirty %" PRIu64
		       " pages/s, ETA %s", p->name, p->to, vmm_phase_name(s->phase), bar, pct, s->round,
		       (double)s->bandwidth_bps / (1 << 20), s->dirty_rate_pps, eta);
		fflush(stdout);
		bar_shown = 1;
		return;
	}
	if (bar_shown) {
		printf("\r\033[K");
		bar_shown = 0;
	}
	if (!s) {
		printf("%s -> %s: %s\n", p->name, p->to, p->message);
	} else if (!p->finished) {
		printf("%s -> %s: %s round %u: %" PRIu64 " MiB sent, %" PRIu64 " MiB remaining, %" PRIu64
		       " MiB/s, dirty %" PRIu64 " pages/s, throttle %u%%\n", p->name, p->to,
		       vmm_phase_name(s->phase), s->round, s->bytes_sent >> 20, s->bytes_remaining >> 20,
		       s->bandwidth_bps >> 20, s->dirty_rate_pps, s->throttle_pct);
	} else {
		/* fields agentd could not read are named, never shown as 0 */
		int no_down = 0, no_bytes = 0;
		char down[48], bytes[48];
		for (size_t i = 0; i < p->n_unknown; i++) {
			no_down |= !strcmp(p->unknown[i], "downtime_ms");
			no_bytes |= !strcmp(p->unknown[i], "bytes_sent");
		}
		if (no_down)
			snprintf(down, sizeof(down), "unknown");
		else
			snprintf(down, sizeof(down), "%" PRIu64 " ms", s->downtime_ms);
		if (no_bytes)
			snprintf(bytes, sizeof(bytes), "unknown");
		else
			snprintf(bytes, sizeof(bytes), "%.1f MiB", (double)s->bytes_sent / (1 << 20));
		printf("%s -> %s: %s (%s) in %" PRIu64 " ms, downtime %s, %s sent%s\n", p->name, p->to,
		       p->message, vmm_outcome_name(s->outcome), s->total_ms, down, bytes,
		       no_down || no_bytes ? " (the source vmm exited before agentd read its final "
					     "statistics)" : "");
	}
	fflush(stdout);
}

/* evacuate: each VM's outcome, for the final table */
struct evac_row {
	char name[AGENT_NAME_MAX + 1], to[256], result[16], msg[300];
};
static struct evac_row evac_rows[256];
static unsigned evac_nrows;

static void evac_note(const Agent__MigrateProgress *p)
{
	if (!p->finished || evac_nrows == sizeof(evac_rows) / sizeof(evac_rows[0]))
		return;
	struct evac_row *e = &evac_rows[evac_nrows++];
	snprintf(e->name, sizeof(e->name), "%s", p->name ? p->name : "?");
	snprintf(e->to, sizeof(e->to), "%s", p->to ? p->to : "?");
	snprintf(e->result, sizeof(e->result), "%s", p->succeeded ? "succeeded" : "failed");
	snprintf(e->msg, sizeof(e->msg), "%s", p->message ? p->message : "");
}

static void evac_table(void)
{
	if (json)
		return;
	printf("%-20s %-22s %-10s %s\n", "NAME", "TO", "RESULT", "DETAIL");
	for (unsigned i = 0; i < evac_nrows; i++)
		printf("%-20s %-22s %-10s %s\n", evac_rows[i].name, evac_rows[i].to, evac_rows[i].result,
		       evac_rows[i].msg);
	if (!evac_nrows)
		printf("(no running VMs to move)\n");
	fflush(stdout);
}

static int stream_progress(Agent__Request *q, int quiet, int evacuate)
{
	send_req(q);
	for (;;) {
		Agent__Response *r = recv_resp();
		if (r->progress) {
			print_progress(r->progress, quiet && r->ok);
			if (evacuate)
				evac_note(r->progress);
		}
		if (evacuate && !r->more)
			evac_table();	/* what moved where, also when some failed */
		if (!r->ok)
			fail_resp(r);
		if (!r->more)
			return EX_OK;
		agent__response__free_unpacked(r, NULL);
	}
}

static uint32_t parse_u32(const char *opt, const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v > UINT32_MAX)
		usage_error("%s: invalid number '%s'", opt, s);
	return (uint32_t)v;
}

static int cmd_migrate(int argc, char **argv, int evacuate)
{
	static const struct option o[] = {
		{ "to", required_argument, NULL, 't' }, { "downtime", required_argument, NULL, 'd' },
		{ "bandwidth", required_argument, NULL, 'b' }, { "no-progress", no_argument, NULL, 'q' },
		{ "cancel", no_argument, NULL, 'c' }, { "parallel", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' }, { 0 }
	};
	const char *to = NULL;
	uint32_t downtime = 0, bw = 0, parallel = 1;
	int quiet = 0, cancel = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (c) {
		case 't': to = optarg; break;
		case 'd': downtime = parse_u32("--downtime", optarg); break;
		case 'b': bw = parse_u32("--bandwidth", optarg); break;
		case 'q': quiet = 1; break;
		case 'c': if (evacuate) usage_error("--cancel is for migrate"); cancel = 1; break;
		case 'p':
			if (!evacuate) usage_error("--parallel is for evacuate");
			parallel = parse_u32("--parallel", optarg);
			if (!parallel) usage_error("--parallel must be at least 1");
			break;
		case 'j': json = 1; break;
		default: usage_error("bad option '%s'", argv[optind - 1]);
		}
	}
	Agent__Request q = AGENT__REQUEST__INIT;
	if (evacuate) {
		no_more(argc, argv);
		if (!to)
			usage_error("--to HOST[,HOST...] is required");
		char *list = strdup(to), *save = NULL;
		char *targets[16];
		size_t n = 0;
		for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (n == 16)
				usage_error("at most 16 targets");
			targets[n++] = t;
		}
		if (!n)
			usage_error("--to: no hosts");
		Agent__Evacuate ev = AGENT__EVACUATE__INIT;
		ev.targets = targets;
		ev.n_targets = n;
		ev.parallel = parallel;
		ev.downtime_ms = downtime;
		ev.bandwidth_mbps = bw;
		ev.progress = 1;
		q.cmd_case = AGENT__REQUEST__CMD_EVACUATE;
		q.evacuate = &ev;
		return stream_progress(&q, quiet, 1);
	}
	need_name(argc, argv);
	no_more(argc, argv);
	if (cancel) {
		if (to)
			usage_error("--cancel takes no --to");
		Agent__MigrateCancel mc = AGENT__MIGRATE_CANCEL__INIT;
		mc.name = (char *)target;
		q.cmd_case = AGENT__REQUEST__CMD_MIGRATE_CANCEL;
		q.migrate_cancel = &mc;
		call(&q);
		if (!json)
			printf("%s: migration cancel requested\n", target);
		else
			printf("{\"ok\":true}\n");
		return EX_OK;
	}
	if (!to)
		usage_error("--to HOST[:PORT] is required");
	char host[256];
	int port;
	struct err e;
	if (agent_split_hostport(to, host, sizeof(host), &port, &e) < 0)
		usage_error("--to: %s", e.msg);
	Agent__Migrate m = AGENT__MIGRATE__INIT;
	m.name = (char *)target;
	m.to = (char *)to;
	m.downtime_ms = downtime;
	m.bandwidth_mbps = bw;
	m.progress = 1;
	q.cmd_case = AGENT__REQUEST__CMD_MIGRATE;
	q.migrate = &m;
	return stream_progress(&q, quiet, 0);
}

/* vmctl console NAME [--linger SEC]: the guest's serial output (from now
 * on) to stdout, stdin to its serial input. On a terminal: raw mode, Ctrl-]
 * detaches. When stdin ends (a script), output keeps streaming for
 * --linger seconds (default 2) so the guest's answer is seen, then exit 0. */
static struct termios con_saved;
static int con_raw;
static void con_restore(void)
{
	if (con_raw)
		tcsetattr(0, TCSANOW, &con_saved);
}

static int cmd_console(int argc, char **argv)
{
	static const struct option opts[] = { { "linger", required_argument, NULL, 'l' },
					      { NULL, 0, NULL, 0 } };
	uint32_t linger = 2;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'l')
			linger = parse_u32("--linger", optarg);
		else
			usage_error("console: unknown option '%s'", argv[optind - 1]);
	}
	if (optind + 1 != argc)
		usage_error("console: want exactly one VM name");
	target = argv[optind];

	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__Console c = AGENT__CONSOLE__INIT;
	c.name = (char *)target;
	c.attach = 1;
	q.cmd_case = AGENT__REQUEST__CMD_CONSOLE;
	q.console = &c;
	send_req(&q);
	Agent__Response *r = recv_resp();
	if (!r->ok)
		fail_resp(r);
	agent__response__free_unpacked(r, NULL);

	int tty = isatty(0);
	if (tty && tcgetattr(0, &con_saved) == 0) {
		struct termios raw = con_saved;
		cfmakeraw(&raw);
		con_raw = tcsetattr(0, TCSANOW, &raw) == 0;
		atexit(con_restore);
		fprintf(stderr, "vmctl: console %s attached (Ctrl-] detaches)\r\n", target);
	}
	int in_open = 1;
	struct timespec eof_at = { 0, 0 };
	for (;;) {
		struct pollfd p[2] = { { conn_fd, POLLIN, 0 }, { 0, POLLIN, 0 } };
		int timeout = -1;
		if (!in_open) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (long)(eof_at.tv_sec - now.tv_sec) * 1000 +
				  (eof_at.tv_nsec - now.tv_nsec) / 1000000 + (long)linger * 1000;
			if (ms <= 0)
				return EX_OK;
			timeout = (int)ms;
		}
		if (poll(p, in_open ? 2 : 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fail(EX_FAIL, strerror(errno));
		}
		if (p[0].revents) {
			r = recv_resp();
			if (!r->ok)
				fail_resp(r);
			if (write_log_chunk(r) < 0)
				return EX_FAIL;
			if (!r->more) {
				con_restore();
				fprintf(stderr, "\nvmctl: console %s: the VM stopped running here\n", target);
				return EX_OK;
			}
			agent__response__free_unpacked(r, NULL);
		}
		if (in_open && p[1].revents) {
			uint8_t buf[4096];
			ssize_t n = read(0, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (tty && n > 0 && memchr(buf, 0x1d, (size_t)n)) {	/* Ctrl-] */
				con_restore();
				fprintf(stderr, "\nvmctl: console %s detached\n", target);
				return EX_OK;
			}
			if (n <= 0) {
				in_open = 0;
				clock_gettime(CLOCK_MONOTONIC, &eof_at);
				continue;
			}
			Agent__Console in = AGENT__CONSOLE__INIT;
			in.name = (char *)target;
			in.input.data = buf;
			in.input.len = (size_t)n;
			q.console = &in;
			send_req(&q);
		}
	}
}

static int cmd_version(int argc, char **argv)
{
	no_more(argc, argv);
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__Version v = AGENT__VERSION__INIT;
	q.cmd_case = AGENT__REQUEST__CMD_VERSION;
	q.version = &v;
	Agent__Response *r = call(&q);
	if (r->version)
		printf("%s on %s (api %u..%u)\n", r->version->software, r->version->host,
		       r->version->min_api_version, r->version->api_version);
	return EX_OK;
}

int main(int argc, char **argv)
{
	const char *host = getenv("AGENTD_SOCKET");
	int i = 1;

	if (!host || !*host)
		host = "/run/agentd/agentd.sock";
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return EX_OK;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--host") && i + 1 < argc) {
			host = argv[++i];
		} else if (!strncmp(argv[i], "--host=", 7)) {
			host = argv[i] + 7;
		} else {
			usage_error("unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc)
		usage_error("missing command");
	cmd = argv[i];
	argc -= i;
	argv += i;
	static const char *const known[] = { "run", "list", "show", "log", "pause", "resume", "stop",
					     "migrate", "evacuate", "version", "console", NULL };
	int ok = 0;
	for (int k = 0; known[k]; k++)
		ok |= !strcmp(cmd, known[k]);
	if (!ok) {
		const char *c = cmd;
		cmd = "";
		usage_error("unknown command '%s'", c);
	}
	/* allow --json after the command too */
	for (int k = 1; k < argc; k++)
		if (!strcmp(argv[k], "--json")) {
			json = 1;
			memmove(&argv[k], &argv[k + 1], (size_t)(argc - k) * sizeof(*argv));
			argc--;
			k--;
		}
	opterr = 0;
	connect_agent(host);
	if (!strcmp(cmd, "run")) return cmd_run(argc, argv);
	if (!strcmp(cmd, "list")) { optind = 1; return cmd_list(argc, argv); }
	if (!strcmp(cmd, "show")) return cmd_named(argc, argv, AGENT__REQUEST__CMD_SHOW);
	if (!strcmp(cmd, "log")) return cmd_named(argc, argv, AGENT__REQUEST__CMD_LOG);
	if (!strcmp(cmd, "console")) return cmd_console(argc, argv);
	if (!strcmp(cmd, "pause")) return cmd_named(argc, argv, AGENT__REQUEST__CMD_PAUSE);
	if (!strcmp(cmd, "resume")) return cmd_named(argc, argv, AGENT__REQUEST__CMD_RESUME);
	if (!strcmp(cmd, "stop")) return cmd_named(argc, argv, AGENT__REQUEST__CMD_STOP);
	if (!strcmp(cmd, "migrate")) return cmd_migrate(argc, argv, 0);
	if (!strcmp(cmd, "evacuate")) return cmd_migrate(argc, argv, 1);
	optind = 1;
	return cmd_version(argc, argv);
}
