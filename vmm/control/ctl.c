/* vmm ctl: the low-level CLI over the control socket (see client.h). This is
 * CLI parsing, so it prints; everything else returns errors. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/control/client.h"

static const char usage_text[] =
	"usage: vmm ctl SOCKET COMMAND [--json]\n"
	"commands:\n"
	"  status                          VM name, state, cpus, memory, uptime, pid\n"
	"  pause | resume | quit\n"
	"  snapshot DIR                    write a snapshot into DIR\n"
	"  migrate --to HOST:PORT [--downtime MS] [--bandwidth MBPS] [--secret-file F]\n"
	"                                  start a live migration (then migrate-wait)\n"
	"  migrate-status | migrate-cancel\n"
	"  migrate-wait [--timeout SEC]    poll migrate-status (every 100 ms, in this one\n"
	"                                  process) until the migration ends; print it;\n"
	"                                  exit 0 if it succeeded\n"
	"  version                         API versions the vmm speaks\n"
	"exit status: 0 ok, 1 command failed, 2 usage error\n";

static int usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "vmm ctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void fmt_bytes(char *buf, size_t cap, uint64_t b)
{
	static const char *unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = -1;

	if (b < 1024) {
		snprintf(buf, cap, "%" PRIu64 " B", b);
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

static void print_status(const Vmm__VmStatus *s, int json)
{
	char mem[32];

	if (json) {
		printf("{\"name\":");
		json_str(s->name);
		printf(",\"state\":\"%s\",\"state_reason\":", vmm_state_name(s->state));
		json_str(s->state_reason);
		printf(",\"cpus\":%u,\"mem_bytes\":%" PRIu64 ",\"uptime_ms\":%" PRIu64
		       ",\"guest_time_ms\":%" PRIu64 ",\"pid\":%u,\"vmm_version\":",
		       s->cpus, s->mem_bytes, s->uptime_ms, s->guest_time_ms, s->pid);
		json_str(s->vmm_version);
		printf("}\n");
		return;
	}
	fmt_bytes(mem, sizeof(mem), s->mem_bytes);
	printf("name:    %s\n", s->name);
	printf("state:   %s%s%s%s\n", vmm_state_name(s->state), s->state_reason[0] ? " (" : "",
	       s->state_reason, s->state_reason[0] ? ")" : "");
	printf("cpus:    %u\n", s->cpus);
	printf("memory:  %s\n", mem);
	printf("uptime:  %.3f s\n", s->uptime_ms / 1000.0);
	printf("pid:     %u\n", s->pid);
	if (s->vmm_version[0])
		printf("version: %s\n", s->vmm_version);
}

static void print_migration(const Vmm__MigrationStats *m, int json)
{
	char sent[32], rem[32], comp[32], ram[32], bw[32];

	if (json) {
		printf("{\"phase\":\"%s\",\"outcome\":\"%s\",\"to\":",
		       vmm_phase_name(m->phase), vmm_outcome_name(m->outcome));
		json_str(m->to);
		printf(",\"round\":%u,\"bytes_sent\":%" PRIu64 ",\"bytes_remaining\":%" PRIu64
		       ",\"pages_sent\":%" PRIu64 ",\"zero_pages\":%" PRIu64
		       ",\"compressed_bytes\":%" PRIu64 ",\"ram_bytes\":%" PRIu64
		       ",\"dirty_rate_pps\":%" PRIu64 ",\"bandwidth_bps\":%" PRIu64
		       ",\"expected_downtime_ms\":%" PRIu64 ",\"throttle_pct\":%u"
		       ",\"total_ms\":%" PRIu64 ",\"downtime_ms\":%" PRIu64
		       ",\"setup_ms\":%" PRIu64 ",\"error\":",
		       m->round, m->bytes_sent, m->bytes_remaining, m->pages_sent, m->zero_pages,
		       m->compressed_bytes, m->ram_bytes, m->dirty_rate_pps, m->bandwidth_bps,
		       m->expected_downtime_ms, m->throttle_pct, m->total_ms, m->downtime_ms,
		       m->setup_ms);
		json_str(m->error);
		printf("}\n");
		return;
	}
	fmt_bytes(sent, sizeof(sent), m->bytes_sent);
	fmt_bytes(rem, sizeof(rem), m->bytes_remaining);
	fmt_bytes(comp, sizeof(comp), m->compressed_bytes);
	fmt_bytes(ram, sizeof(ram), m->ram_bytes);
	fmt_bytes(bw, sizeof(bw), m->bandwidth_bps);
	printf("phase:              %s (round %u)\n", vmm_phase_name(m->phase), m->round);
	printf("outcome:            %s\n", vmm_outcome_name(m->outcome));
	if (m->to[0])
		printf("to:                 %s\n", m->to);
	printf("sent:               %s (%" PRIu64 " pages, %" PRIu64 " zero, %s compressed)\n",
	       sent, m->pages_sent, m->zero_pages, comp);
	printf("remaining:          %s of %s RAM\n", rem, ram);
	printf("dirty rate:         %" PRIu64 " pages/s\n", m->dirty_rate_pps);
	printf("bandwidth:          %s/s\n", bw);
	printf("expected downtime:  %" PRIu64 " ms\n", m->expected_downtime_ms);
	printf("throttle:           %u%%\n", m->throttle_pct);
	printf("time:               total %" PRIu64 " ms, setup %" PRIu64 " ms, downtime %"
	       PRIu64 " ms\n", m->total_ms, m->setup_ms, m->downtime_ms);
	if (m->error[0])
		printf("error:              %s\n", m->error);
}

struct ctl_args {
	const char *sock, *cmd, *dir, *to, *secret;
	uint32_t downtime, bandwidth, timeout_s;
	int json, migrate_opts, has_timeout;
};

/* Returns 0, or the usage exit status. */
static int parse(int argc, char **argv, struct ctl_args *a)
{
	const char *pos[3];
	int npos = 0;

	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *val = NULL, *eq;
		char name[32];

		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			fputs(usage_text, stdout);
			return -1;
		}
		if (strncmp(s, "--", 2) != 0 || !s[2]) {
			if (npos == 3)
				return usage("unexpected argument %s", s);
			pos[npos++] = s;
			continue;
		}
		if (!strcmp(s, "--json")) {
			a->json = 1;
			continue;
		}
		/* --opt VALUE or --opt=VALUE */
		eq = strchr(s, '=');
		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - s) : (int)strlen(s), s);
		if (strcmp(name, "--to") && strcmp(name, "--downtime") &&
		    strcmp(name, "--bandwidth") && strcmp(name, "--secret-file") &&
		    strcmp(name, "--timeout"))
			return usage("unknown option %s", s);
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return usage("option %s needs a value", s);
		if (!strcmp(name, "--timeout")) {
			if (parse_u32(val, &a->timeout_s) < 0)
				return usage("%s needs a non-negative integer", name);
			a->has_timeout = 1;
			continue;
		}
		a->migrate_opts = 1;
		if (!strcmp(name, "--to"))
			a->to = val;
		else if (!strcmp(name, "--secret-file"))
			a->secret = val;
		else if (parse_u32(val, !strcmp(name, "--downtime") ? &a->downtime : &a->bandwidth) < 0)
			return usage("%s needs a non-negative integer", name);
	}
	if (npos < 2)
		return usage("%s", npos == 0 ? "missing SOCKET and COMMAND" : "missing COMMAND");
	a->sock = pos[0];
	a->cmd = pos[1];
	if (!strcmp(a->cmd, "snapshot")) {
		if (npos != 3 || !pos[2][0])
			return usage("%s", "snapshot needs a directory: snapshot DIR");
		a->dir = pos[2];
	} else if (npos == 3) {
		return usage("unexpected argument %s", pos[2]);
	}
	if (!strcmp(a->cmd, "migrate")) {
		const char *c = a->to ? strrchr(a->to, ':') : NULL;
		uint32_t port;

		if (!a->to)
			return usage("%s", "migrate needs --to HOST:PORT");
		if (!c || c == a->to || parse_u32(c + 1, &port) < 0 || port == 0 || port > 65535)
			return usage("--to must be HOST:PORT, got %s", a->to);
	} else if (a->migrate_opts) {
		return usage("--to, --downtime, --bandwidth and --secret-file are for migrate, "
			     "not %s", a->cmd);
	}
	if (a->has_timeout && strcmp(a->cmd, "migrate-wait"))
		return usage("--timeout is for migrate-wait, not %s", a->cmd);
	return 0;
}

/* One request on a fresh connection; a transport error is printed. */
static int call(const char *sock, const char *cmd, Vmm__Request *req, Vmm__Response **resp)
{
	struct err err;
	int fd = control_connect(sock, &err), rc;

	if (fd < 0) {
		fprintf(stderr, "vmm ctl: %s: %s\n", cmd, err.msg);
		return -1;
	}
	rc = control_call(fd, req, resp, &err);
	close(fd);
	if (rc < 0) {
		fprintf(stderr, "vmm ctl: %s: %s\n", cmd, err.msg);
		return -1;
	}
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* migrate-wait: one process polls migrate-status every 100 ms until the
 * outcome is set, instead of a script starting `vmm ctl` (and friends) a
 * few times a second, which on a busy host takes CPU from the migration
 * itself. Exit 0 only for a migration that succeeded. */
static int migrate_wait(const struct ctl_args *a)
{
	Vmm__Request req = VMM__REQUEST__INIT;
	Vmm__MigrateStatus ms = VMM__MIGRATE_STATUS__INIT;
	uint64_t t0 = mono_ms();

	req.cmd_case = VMM__REQUEST__CMD_MIGRATE_STATUS;
	req.migrate_status = &ms;
	for (;;) {
		Vmm__Response *resp = NULL;
		const struct timespec pause = { 0, 100 * 1000000L };

		if (call(a->sock, a->cmd, &req, &resp) < 0)
			return 1;
		if (!resp->ok || resp->result_case != VMM__RESPONSE__RESULT_MIGRATION) {
			fprintf(stderr, "vmm ctl: migrate-wait: %s\n",
				resp->ok ? "the vmm answered without migration status" : resp->error);
			vmm__response__free_unpacked(resp, NULL);
			return 1;
		}
		if (resp->migration->phase == VMM__MIGRATION_PHASE__MIGRATION_PHASE_NONE) {
			fprintf(stderr, "vmm ctl: migrate-wait: no migration has run\n");
			vmm__response__free_unpacked(resp, NULL);
			return 1;
		}
		if (resp->migration->outcome != VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_NONE) {
			int ok = resp->migration->outcome ==
				 VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_SUCCEEDED;

			print_migration(resp->migration, a->json);
			vmm__response__free_unpacked(resp, NULL);
			return ok ? 0 : 1;
		}
		if (a->has_timeout && mono_ms() - t0 >= (uint64_t)a->timeout_s * 1000) {
			print_migration(resp->migration, a->json);
			vmm__response__free_unpacked(resp, NULL);
			fprintf(stderr, "vmm ctl: migrate-wait: still running after %u s\n",
				a->timeout_s);
			return 1;
		}
		vmm__response__free_unpacked(resp, NULL);
		nanosleep(&pause, NULL);
	}
}

int vmm_ctl_main(int argc, char **argv)
{
	Vmm__Request req = VMM__REQUEST__INIT;
	Vmm__Snapshot snap = VMM__SNAPSHOT__INIT;
	Vmm__Migrate mig = VMM__MIGRATE__INIT;
	/* Empty command messages; only their presence in the oneof matters. */
	Vmm__Status st = VMM__STATUS__INIT;
	Vmm__Pause pa = VMM__PAUSE__INIT;
	Vmm__Resume re = VMM__RESUME__INIT;
	Vmm__Quit qu = VMM__QUIT__INIT;
	Vmm__MigrateStatus ms = VMM__MIGRATE_STATUS__INIT;
	Vmm__MigrateCancel mc = VMM__MIGRATE_CANCEL__INIT;
	Vmm__Version ve = VMM__VERSION__INIT;
	Vmm__Response *resp = NULL;
	struct ctl_args a;
	int rc;

	rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!strcmp(a.cmd, "migrate-wait"))
		return migrate_wait(&a);
	if (!strcmp(a.cmd, "status")) {
		req.cmd_case = VMM__REQUEST__CMD_STATUS; req.status = &st;
	} else if (!strcmp(a.cmd, "pause")) {
		req.cmd_case = VMM__REQUEST__CMD_PAUSE; req.pause = &pa;
	} else if (!strcmp(a.cmd, "resume")) {
		req.cmd_case = VMM__REQUEST__CMD_RESUME; req.resume = &re;
	} else if (!strcmp(a.cmd, "quit")) {
		req.cmd_case = VMM__REQUEST__CMD_QUIT; req.quit = &qu;
	} else if (!strcmp(a.cmd, "snapshot")) {
		snap.dir = (char *)a.dir;
		req.cmd_case = VMM__REQUEST__CMD_SNAPSHOT; req.snapshot = &snap;
	} else if (!strcmp(a.cmd, "migrate")) {
		mig.to = (char *)a.to;
		mig.downtime_ms = a.downtime;
		mig.bandwidth_mbps = a.bandwidth;
		if (a.secret)
			mig.secret_file = (char *)a.secret;
		req.cmd_case = VMM__REQUEST__CMD_MIGRATE; req.migrate = &mig;
	} else if (!strcmp(a.cmd, "migrate-status")) {
		req.cmd_case = VMM__REQUEST__CMD_MIGRATE_STATUS; req.migrate_status = &ms;
	} else if (!strcmp(a.cmd, "migrate-cancel")) {
		req.cmd_case = VMM__REQUEST__CMD_MIGRATE_CANCEL; req.migrate_cancel = &mc;
	} else if (!strcmp(a.cmd, "version")) {
		req.cmd_case = VMM__REQUEST__CMD_VERSION; req.version = &ve;
	} else {
		return usage("unknown command %s", a.cmd);
	}

	if (call(a.sock, a.cmd, &req, &resp) < 0)
		return 1;
	if (!resp->ok) {
		fprintf(stderr, "vmm ctl: %s: %s\n", a.cmd, resp->error);
		if (a.json) {
			printf("{\"ok\":false,\"code\":\"%s\",\"error\":",
			       vmm_error_code_name(resp->code));
			json_str(resp->error);
			printf("}\n");
		}
		rc = 1;
		goto out;
	}
	switch (resp->result_case) {
	case VMM__RESPONSE__RESULT_STATUS:
		print_status(resp->status, a.json);
		break;
	case VMM__RESPONSE__RESULT_MIGRATION:
		print_migration(resp->migration, a.json);
		break;
	case VMM__RESPONSE__RESULT_VERSION:
		if (a.json) {
			printf("{\"api_version\":%u,\"min_api_version\":%u,\"software\":",
			       resp->version->api_version, resp->version->min_api_version);
			json_str(resp->version->software);
			printf("}\n");
		} else {
			printf("%s, api %u..%u (client api %u)\n", resp->version->software,
			       resp->version->min_api_version, resp->version->api_version,
			       VMM_API_VERSION);
		}
		break;
	default:
		if (a.json)
			printf("{\"ok\":true}\n");
		else if (!strcmp(a.cmd, "migrate"))
			printf("migration to %s started\n", a.to);
		else if (!strcmp(a.cmd, "snapshot"))
			printf("snapshot written to %s\n", a.dir);
		else
			printf("ok\n");
		break;
	}
	rc = 0;
out:
	vmm__response__free_unpacked(resp, NULL);
	return rc;
}
