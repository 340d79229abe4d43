/* VM records in the state dir, definition validation, size parsing. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentd/agent.h"
#include "lib/fdio.h"

int agent_name_valid(const char *name, struct err *err)
{
	size_t n = strlen(name);

	if (n == 0)
		return err_set(err, "VM name is empty");
	if (n > AGENT_NAME_MAX)
		return err_set(err, "VM name longer than %d characters", AGENT_NAME_MAX);
	if (name[0] == '.' || name[0] == '-')
		return err_set(err, "VM name '%s' must not start with '%c'", name, name[0]);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return err_set(err, "VM name '%s': only letters, digits, '-', '_' and '.' allowed",
				       name);
	}
	return 0;
}

int agent_parse_size(const char *s, uint64_t *out, struct err *err)
{
	char *end;
	unsigned long long v;
	unsigned shift = 20;

	if (!s || !isdigit((unsigned char)s[0]))
		return err_set(err, "invalid size '%s' (want e.g. 512M, 2G)", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return err_set(err, "invalid size '%s': out of range", s);
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default:
			return err_set(err, "invalid size '%s' (want e.g. 512M, 2G)", s);
		}
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return err_set(err, "invalid size '%s' (want e.g. 512M, 2G)", s);
	}
	if (v > (UINT64_MAX >> shift))
		return err_set(err, "invalid size '%s': out of range", s);
	*out = (uint64_t)v << shift;
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *src, const char *what, struct err *err)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap)
		return err_set(err, "%s too long (%zu bytes, max %zu)", what, n, cap - 1);
	memcpy(dst, src ? src : "", n + 1);
	return 0;
}

static int check_file(const char *what, const char *path, int check_files, struct err *err)
{
	if (path[0] != '/')
		return err_set(err, "%s '%s' must be an absolute path", what, path);
	if (check_files && access(path, R_OK) < 0)
		return err_errno(err, errno, "%s '%s'", what, path);
	return 0;
}

int record_from_def(struct vm_record *r, const Agent__VmDefinition *d, int check_files,
		    struct err *err)
{
	memset(r, 0, sizeof(*r));
	if (!d)
		return err_set(err, "missing VM definition");
	if (agent_name_valid(d->name ? d->name : "", err) < 0)
		return -1;
	snprintf(r->name, sizeof(r->name), "%s", d->name);
	if (!d->kernel || !d->kernel[0])
		return err_set(err, "--kernel is required");
	if (copy_str(r->kernel, sizeof(r->kernel), d->kernel, "kernel path", err) < 0 ||
	    check_file("kernel", r->kernel, check_files, err) < 0)
		return -1;
	if (d->initrd && d->initrd[0] &&
	    (copy_str(r->initrd, sizeof(r->initrd), d->initrd, "initrd path", err) < 0 ||
	     check_file("initrd", r->initrd, check_files, err) < 0))
		return -1;
	if (copy_str(r->cmdline, sizeof(r->cmdline), d->cmdline, "cmdline", err) < 0)
		return -1;
	r->mem_bytes = d->mem_bytes ? d->mem_bytes : AGENT_DEFAULT_MEM;
	if (r->mem_bytes < AGENT_MEM_MIN || r->mem_bytes > AGENT_MEM_MAX || (r->mem_bytes & 4095))
		return err_set(err, "memory size %" PRIu64 " bytes out of range (2M..1T, whole pages)",
			       r->mem_bytes);
	r->cpus = d->cpus ? d->cpus : 1;
	if (r->cpus > AGENT_CPUS_MAX)
		return err_set(err, "cpus %u out of range (1..%d)", r->cpus, AGENT_CPUS_MAX);
	if (d->n_disks > AGENT_MAX_DISKS)
		return err_set(err, "at most %d disks", AGENT_MAX_DISKS);
	for (size_t i = 0; i < d->n_disks; i++) {
		if (copy_str(r->disks[i], AGENT_PATH_MAX, d->disks[i], "disk", err) < 0)
			return -1;
		if (r->disks[i][0] != '/')
			return err_set(err, "disk '%s' must be an absolute path", r->disks[i]);
	}
	r->ndisks = d->n_disks;
	if (d->n_nets > AGENT_MAX_NETS)
		return err_set(err, "at most %d NICs", AGENT_MAX_NETS);
	for (size_t i = 0; i < d->n_nets; i++) {
		const char *n = d->nets[i];
		if (strncmp(n, "tap=", 4) && strncmp(n, "bridge=", 7))
			return err_set(err, "net '%s': want tap=IF or bridge=BR", n);
		if (copy_str(r->nets[i], AGENT_NET_MAX, n, "net", err) < 0)
			return -1;
	}
	r->nnets = d->n_nets;
	return 0;
}

void record_to_def(const struct vm_record *r, Agent__VmDefinition *d,
		   char *disks[AGENT_MAX_DISKS], char *nets[AGENT_MAX_NETS])
{
	agent__vm_definition__init(d);
	d->name = (char *)r->name;
	d->kernel = (char *)r->kernel;
	d->initrd = (char *)r->initrd;
	d->cmdline = (char *)r->cmdline;
	d->mem_bytes = r->mem_bytes;
	d->cpus = r->cpus;
	for (unsigned i = 0; i < r->ndisks; i++)
		disks[i] = (char *)r->disks[i];
	for (unsigned i = 0; i < r->nnets; i++)
		nets[i] = (char *)r->nets[i];
	d->n_disks = r->ndisks;
	d->disks = disks;
	d->n_nets = r->nnets;
	d->nets = nets;
}

/* ---- JSON ---- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			abort();
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	sb_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			sb_put(b, e, 2);
		} else if (c < 0x20) {
			sb_printf(b, "\\u%04x", c);
		} else {
			sb_put(b, (const char *)&c, 1);
		}
	}
	sb_put(b, "\"", 1);
}

static void sb_kv_str(struct sbuf *b, const char *k, const char *v)
{
	sb_printf(b, ",\n  \"%s\": ", k);
	sb_str(b, v);
}

char *record_to_json(const struct vm_record *r)
{
	struct sbuf b = { 0 };

	sb_put(&b, "{\n  \"version\": 1", 16);
	sb_kv_str(&b, "name", r->name);
	sb_kv_str(&b, "kernel", r->kernel);
	sb_kv_str(&b, "initrd", r->initrd);
	sb_kv_str(&b, "cmdline", r->cmdline);
	sb_printf(&b, ",\n  \"mem_bytes\": %" PRIu64, r->mem_bytes);
	sb_printf(&b, ",\n  \"cpus\": %u", r->cpus);
	sb_printf(&b, ",\n  \"disks\": [");
	for (unsigned i = 0; i < r->ndisks; i++) {
		if (i)
			sb_put(&b, ", ", 2);
		sb_str(&b, r->disks[i]);
	}
	sb_printf(&b, "],\n  \"nets\": [");
	for (unsigned i = 0; i < r->nnets; i++) {
		if (i)
			sb_put(&b, ", ", 2);
		sb_str(&b, r->nets[i]);
	}
	sb_put(&b, "]", 1);
	sb_printf(&b, ",\n  \"pid\": %d", r->pid);
	sb_printf(&b, ",\n  \"pid_start\": %" PRIu64, r->pid_start);
	sb_printf(&b, ",\n  \"started_unix_ms\": %" PRIu64, r->started_unix_ms);
	sb_kv_str(&b, "state", r->state);
	sb_kv_str(&b, "exit_reason", r->exit_reason);
	sb_kv_str(&b, "migrated_to", r->migrated_to);
	sb_kv_str(&b, "source", r->source);
	sb_printf(&b, ",\n  \"incoming_port\": %d", r->incoming_port);
	sb_put(&b, "\n}\n", 3);
	return b.p;
}

/* Minimal parser for the records we write: one flat object whose values are
 * strings, integers, booleans, null or arrays of strings. Unknown keys are
 * skipped (newer agentd). */
struct jp {
	const char *p, *end;
	struct err *err;
};

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && isspace((unsigned char)*j->p))
		j->p++;
}

static int jp_expect(struct jp *j, char c)
{
	jp_ws(j);
	if (j->p >= j->end || *j->p != c)
		return err_set(j->err, "expected '%c'", c);
	j->p++;
	return 0;
}

/* Parse a string into out (cap bytes); too long is an error. */
static int jp_string(struct jp *j, char *out, size_t cap)
{
	size_t n = 0;

	if (jp_expect(j, '"') < 0)
		return -1;
	while (j->p < j->end && *j->p != '"') {
		char c = *j->p++;
		if ((unsigned char)c < 0x20)
			return err_set(j->err, "control character in string");
		if (c == '\\') {
			if (j->p >= j->end)
				break;
			c = *j->p++;
			switch (c) {
			case '"': case '\\': case '/': break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned v = 0;
				if (j->end - j->p < 4)
					return err_set(j->err, "truncated \\u escape");
				for (int i = 0; i < 4; i++) {
					char h = *j->p++;
					v <<= 4;
					if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
					else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
					else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
					else return err_set(j->err, "bad \\u escape");
				}
				if (v == 0 || v > 0x7f)
					return err_set(j->err, "unsupported \\u escape %04x", v);
				c = (char)v;
				break;
			}
			default:
				return err_set(j->err, "bad escape '\\%c'", c);
			}
		}
		if (n + 1 >= cap)
			return err_set(j->err, "string too long (max %zu)", cap - 1);
		if (out)
			out[n] = c;
		n++;
	}
	if (j->p >= j->end)
		return err_set(j->err, "unterminated string");
	j->p++;
	if (out)
		out[n] = 0;
	return 0;
}

static int jp_int(struct jp *j, int64_t *v)
{
	char *e;
	char tmp[32];
	size_t n = 0;

	jp_ws(j);
	while (j->p + n < j->end && n < sizeof(tmp) - 1 &&
	       (isdigit((unsigned char)j->p[n]) || j->p[n] == '-'))
		n++;
	if (n == 0)
		return err_set(j->err, "expected a number");
	memcpy(tmp, j->p, n);
	tmp[n] = 0;
	errno = 0;
	*v = strtoll(tmp, &e, 10);
	if (errno || *e)
		return err_set(j->err, "bad number '%s'", tmp);
	j->p += n;
	return 0;
}

static int jp_skip_value(struct jp *j)
{
	jp_ws(j);
	if (j->p >= j->end)
		return err_set(j->err, "truncated");
	if (*j->p == '"')
		return jp_string(j, NULL, SIZE_MAX);
	if (*j->p == '[') {
		j->p++;
		jp_ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		for (;;) {
			if (jp_skip_value(j) < 0)
				return -1;
			jp_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			return jp_expect(j, ']');
		}
	}
	for (const char *w = "true\0false\0null\0"; *w; w += strlen(w) + 1)
		if ((size_t)(j->end - j->p) >= strlen(w) && !memcmp(j->p, w, strlen(w))) {
			j->p += strlen(w);
			return 0;
		}
	int64_t v;
	return jp_int(j, &v);
}

static int jp_str_array(struct jp *j, char *base, size_t stride, unsigned max, unsigned *count)
{
	unsigned n = 0;

	if (jp_expect(j, '[') < 0)
		return -1;
	jp_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		*count = 0;
		return 0;
	}
	for (;;) {
		if (n >= max)
			return err_set(j->err, "too many entries (max %u)", max);
		if (jp_string(j, base + n * stride, stride) < 0)
			return -1;
		n++;
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (jp_expect(j, ']') < 0)
			return -1;
		*count = n;
		return 0;
	}
}

int record_from_json(const char *buf, size_t len, struct vm_record *r, struct err *err)
{
	struct jp j = { buf, buf + len, err };
	char key[64];
	int64_t v;

	memset(r, 0, sizeof(*r));
	if (jp_expect(&j, '{') < 0)
		return -1;
	jp_ws(&j);
	if (j.p < j.end && *j.p == '}')
		return err_set(err, "empty record");
	for (;;) {
		if (jp_string(&j, key, sizeof(key)) < 0 || jp_expect(&j, ':') < 0)
			return err_prefix(err, "record");
		int rc = 0;
#define S(k, f) else if (!strcmp(key, k)) rc = jp_string(&j, r->f, sizeof(r->f))
		if (0) {}
		S("name", name); S("kernel", kernel); S("initrd", initrd); S("cmdline", cmdline);
		S("state", state); S("exit_reason", exit_reason); S("migrated_to", migrated_to);
		S("source", source);
#undef S
		else if (!strcmp(key, "disks"))
			rc = jp_str_array(&j, &r->disks[0][0], AGENT_PATH_MAX, AGENT_MAX_DISKS, &r->ndisks);
		else if (!strcmp(key, "nets"))
			rc = jp_str_array(&j, &r->nets[0][0], AGENT_NET_MAX, AGENT_MAX_NETS, &r->nnets);
		else if (!strcmp(key, "mem_bytes") || !strcmp(key, "cpus") || !strcmp(key, "pid") ||
			 !strcmp(key, "pid_start") || !strcmp(key, "started_unix_ms") ||
			 !strcmp(key, "incoming_port") || !strcmp(key, "version")) {
			rc = jp_int(&j, &v);
			if (!rc && v < 0)
				rc = err_set(err, "negative %s", key);
			if (!rc) {
				if (!strcmp(key, "mem_bytes")) r->mem_bytes = (uint64_t)v;
				else if (!strcmp(key, "cpus")) r->cpus = v > UINT32_MAX ? 0 : (uint32_t)v;
				else if (!strcmp(key, "pid")) r->pid = v > INT32_MAX ? 0 : (int32_t)v;
				else if (!strcmp(key, "pid_start")) r->pid_start = (uint64_t)v;
				else if (!strcmp(key, "started_unix_ms")) r->started_unix_ms = (uint64_t)v;
				else if (!strcmp(key, "incoming_port")) r->incoming_port = v > 65535 ? 0 : (int)v;
			}
		} else
			rc = jp_skip_value(&j);
		if (rc < 0)
			return err_prefix(err, "record: %s", key);
		jp_ws(&j);
		if (j.p < j.end && *j.p == ',') {
			j.p++;
			continue;
		}
		if (jp_expect(&j, '}') < 0)
			return err_prefix(err, "record");
		break;
	}
	if (agent_name_valid(r->name, err) < 0)
		return err_prefix(err, "record");
	if (!r->kernel[0] || !r->state[0])
		return err_set(err, "record: missing kernel or state");
	return 0;
}

static void rec_path(char *out, size_t cap, const char *dir, const char *name, const char *sfx)
{
	snprintf(out, cap, "%s/%s.json%s", dir, name, sfx);
}

int record_save(const char *dir, const struct vm_record *r, struct err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	char *json = record_to_json(r);
	int fd, dfd;

	rec_path(path, sizeof(path), dir, r->name, "");
	rec_path(tmp, sizeof(tmp), dir, r->name, ".tmp");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(json);
		return err_errno(err, errno, "write state %s", tmp);
	}
	if (fdio_write_full(fd, json, strlen(json), err) < 0) {
		free(json);
		close(fd);
		unlink(tmp);
		return err_prefix(err, "write state %s", tmp);
	}
	free(json);
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return err_errno(err, e, "write state %s: fsync", tmp);
	}
	if (close(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return err_errno(err, e, "write state %s: close", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return err_errno(err, e, "write state: rename to %s", path);
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int record_load(const char *dir, const char *name, struct vm_record *r, struct err *err)
{
	char path[PATH_MAX];
	char buf[65536];
	size_t got = 0;
	ssize_t n;
	int fd;

	rec_path(path, sizeof(path), dir, name, "");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, errno, "%s", path);
	while (got < sizeof(buf) && (n = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (got == sizeof(buf))
		return err_set(err, "%s: too large", path);
	if (record_from_json(buf, got, r, err) < 0)
		return err_prefix(err, "%s", path);
	if (strcmp(r->name, name))
		return err_set(err, "%s: names VM '%s'", path, r->name);
	return 0;
}

int record_remove(const char *dir, const char *name, struct err *err)
{
	char path[PATH_MAX];

	rec_path(path, sizeof(path), dir, name, "");
	if (unlink(path) < 0 && errno != ENOENT)
		return err_errno(err, errno, "remove %s", path);
	return 0;
}

uint64_t proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	int fd;
	ssize_t n;
	char *p;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');	/* comm may contain spaces */
	if (!p)
		return 0;
	p++;
	/* after ")": field 3 (state) ... field 22 (starttime) */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

void agent_exit_reason(int ws, char *buf, size_t len)
{
	if (WIFEXITED(ws)) {
		switch (WEXITSTATUS(ws)) {
		case 0: snprintf(buf, len, "poweroff (vmm exit 0)"); break;
		case 1: snprintf(buf, len, "guest failure (vmm exit 1)"); break;
		case 2: snprintf(buf, len, "vmm usage error (exit 2): bad definition"); break;
		case 3: snprintf(buf, len, "vmm internal error (exit 3)"); break;
		case 4: snprintf(buf, len, "guest reboot (vmm exit 4)"); break;
		default: snprintf(buf, len, "vmm exited with status %d", WEXITSTATUS(ws)); break;
		}
	} else if (WIFSIGNALED(ws)) {
		snprintf(buf, len, "vmm killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
	} else {
		snprintf(buf, len, "vmm ended (status 0x%x)", ws);
	}
}
