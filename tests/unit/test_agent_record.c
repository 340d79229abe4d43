/* agentd state-dir records: JSON round trip, hostile JSON, atomic save/load,
 * name/size/definition validation, exit reasons, pid start times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agentd/agent.h"

static void sample(struct vm_record *r)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->name, "web-1.a_b");
	strcpy(r->kernel, "/boot/vmlinuz \"quoted\" \\ back");
	strcpy(r->initrd, "/boot/initrd.img");
	strcpy(r->cmdline, "console=ttyS0 tab\there nl\nend");
	r->mem_bytes = 512ull << 20;
	r->cpus = 2;
	strcpy(r->disks[0], "/var/lib/a.img");
	strcpy(r->disks[1], "/var/lib/b.img,ro");
	r->ndisks = 2;
	strcpy(r->nets[0], "tap=tap0");
	r->nnets = 1;
	r->pid = 4242;
	r->pid_start = 123456789;
	r->started_unix_ms = 1700000000123ull;
	strcpy(r->state, "running");
	strcpy(r->exit_reason, "");
	strcpy(r->migrated_to, "hostb:7800");
	r->incoming_port = 40001;
}

static void test_json_roundtrip(void **st)
{
	struct vm_record a, b;
	struct err e;
	(void)st;
	sample(&a);
	char *j = record_to_json(&a);
	assert_non_null(j);
	assert_int_equal(record_from_json(j, strlen(j), &b, &e), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(j);
}

static void test_json_unknown_keys_skipped(void **st)
{
	struct vm_record r;
	struct err e;
	const char *j = "{\"future\": [\"x\", 1, true, null], \"name\": \"a\", \"kernel\": \"/k\","
			" \"state\": \"stopped\", \"cpus\": 3, \"other\": -5}";
	(void)st;
	assert_int_equal(record_from_json(j, strlen(j), &r, &e), 0);
	assert_string_equal(r.name, "a");
	assert_int_equal(r.cpus, 3);
}

static void test_json_hostile(void **st)
{
	static const char *bad[] = {
		"", "{", "{}", "[]", "{\"name\": \"a\"", "{\"name\": 5}",
		"{\"name\": \"../etc\", \"kernel\": \"/k\", \"state\": \"x\"}",
		"{\"name\": \"a\", \"kernel\": \"/k\"}",	/* no state */
		"{\"name\": \"a\", \"kernel\": \"/k\", \"state\": \"x\", \"pid\": -1}",
		"{\"name\": \"a\", \"kernel\": \"/k\", \"state\": \"x\", \"disks\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
		"{\"name\": \"a\\u0000b\", \"kernel\": \"/k\", \"state\": \"x\"}",
		"{\"name\": \"a\\q\", \"kernel\": \"/k\", \"state\": \"x\"}",
		"{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"kernel\": \"/k\", \"state\": \"x\"}",
		"{\"name\": \"a\", \"kernel\": \"/k\", \"state\": \"x\", \"cpus\": 99999999999999999999999}",
	};
	struct vm_record r;
	struct err e;
	(void)st;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.msg[0] = 0;
		assert_int_equal(record_from_json(bad[i], strlen(bad[i]), &r, &e), -1);
		assert_true(e.msg[0] != 0);
	}
}

static void test_save_load(void **st)
{
	char dir[] = "/tmp/agentrec.XXXXXX", path[256];
	struct vm_record a, b;
	struct err e;
	struct stat sb;
	(void)st;
	assert_non_null(mkdtemp(dir));
	sample(&a);
	assert_int_equal(record_save(dir, &a, &e), 0);
	snprintf(path, sizeof(path), "%s/%s.json", dir, a.name);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/%s.json.tmp", dir, a.name);
	assert_int_equal(stat(path, &sb), -1);	/* no tmp left behind */
	assert_int_equal(record_load(dir, a.name, &b, &e), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* overwrite */
	strcpy(a.state, "stopped");
	assert_int_equal(record_save(dir, &a, &e), 0);
	assert_int_equal(record_load(dir, a.name, &b, &e), 0);
	assert_string_equal(b.state, "stopped");
	/* missing */
	assert_int_equal(record_load(dir, "nope", &b, &e), -1);
	assert_non_null(strstr(e.msg, "nope.json"));
	assert_int_equal(record_remove(dir, a.name, &e), 0);
	assert_int_equal(record_remove(dir, a.name, &e), 0);
	assert_int_equal(rmdir(dir), 0);
	/* unwritable dir: clear error, nothing created */
	assert_int_equal(record_save("/nonexistent/dir", &a, &e), -1);
	assert_non_null(strstr(e.msg, "write state /nonexistent/dir/"));
}

static void test_names(void **st)
{
	struct err e;
	(void)st;
	assert_int_equal(agent_name_valid("web1", &e), 0);
	assert_int_equal(agent_name_valid("a.b-c_d", &e), 0);
	assert_int_equal(agent_name_valid("", &e), -1);
	assert_int_equal(agent_name_valid(".hidden", &e), -1);
	assert_int_equal(agent_name_valid("-opt", &e), -1);
	assert_int_equal(agent_name_valid("a/b", &e), -1);
	assert_int_equal(agent_name_valid("a b", &e), -1);
	char longn[80];
	memset(longn, 'a', 65);
	longn[65] = 0;
	assert_int_equal(agent_name_valid(longn, &e), -1);
	longn[64] = 0;
	assert_int_equal(agent_name_valid(longn, &e), 0);
}

static void test_sizes(void **st)
{
	uint64_t v;
	struct err e;
	(void)st;
	assert_int_equal(agent_parse_size("512", &v, &e), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(agent_parse_size("2G", &v, &e), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(agent_parse_size("64k", &v, &e), 0);
	assert_int_equal(v, 64ull << 10);
	assert_int_equal(agent_parse_size("1GiB", &v, &e), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(agent_parse_size("1T", &v, &e), 0);
	assert_int_equal(agent_parse_size("12Q", &v, &e), -1);
	assert_non_null(strstr(e.msg, "12Q"));
	assert_int_equal(agent_parse_size("", &v, &e), -1);
	assert_int_equal(agent_parse_size("-1M", &v, &e), -1);
	assert_int_equal(agent_parse_size("99999999999999999999G", &v, &e), -1);
	assert_int_equal(agent_parse_size("17179869184T", &v, &e), -1);
	assert_int_equal(agent_parse_size("1MB2", &v, &e), -1);
}

static void test_def_validation(void **st)
{
	struct vm_record r;
	struct err e;
	Agent__VmDefinition d = AGENT__VM_DEFINITION__INIT;
	char *disks[] = { "/d.img" }, *rel[] = { "d.img" }, *nets[] = { "tap=t0" }, *badnet[] = { "vde=x" };
	(void)st;
	d.name = "ok";
	d.kernel = "/bin/sh";
	assert_int_equal(record_from_def(&r, &d, 1, &e), 0);
	assert_int_equal(r.mem_bytes, AGENT_DEFAULT_MEM);
	assert_int_equal(r.cpus, 1);
	d.n_disks = 1; d.disks = disks; d.n_nets = 1; d.nets = nets;
	assert_int_equal(record_from_def(&r, &d, 1, &e), 0);
	assert_string_equal(r.disks[0], "/d.img");
	d.disks = rel;
	assert_int_equal(record_from_def(&r, &d, 1, &e), -1);
	d.disks = disks;
	d.nets = badnet;
	assert_int_equal(record_from_def(&r, &d, 1, &e), -1);
	assert_non_null(strstr(e.msg, "tap=IF"));
	d.nets = nets;
	d.kernel = "/nonexistent/kernel";
	assert_int_equal(record_from_def(&r, &d, 1, &e), -1);
	assert_non_null(strstr(e.msg, "/nonexistent/kernel"));
	assert_int_equal(record_from_def(&r, &d, 0, &e), 0);	/* files not checked */
	d.kernel = "relative";
	assert_int_equal(record_from_def(&r, &d, 0, &e), -1);
	d.kernel = "";
	assert_int_equal(record_from_def(&r, &d, 0, &e), -1);
	d.kernel = "/bin/sh";
	d.mem_bytes = 1024;
	assert_int_equal(record_from_def(&r, &d, 1, &e), -1);
	assert_non_null(strstr(e.msg, "out of range"));
	d.mem_bytes = (2ull << 20) + 1;
	assert_int_equal(record_from_def(&r, &d, 1, &e), -1);
	d.mem_bytes = 0;
	d.cpus = 1000;
	assert_int_equal(record_from_def(&r, &d, 1, &e), -1);
	d.cpus = 0;
	d.name = "bad name";
	assert_int_equal(record_from_def(&r, &d, 1, &e), -1);
	assert_int_equal(record_from_def(&r, NULL, 1, &e), -1);

	/* to_def points back into the record */
	Agent__VmDefinition o;
	char *dp[AGENT_MAX_DISKS], *np[AGENT_MAX_NETS];
	d.name = "ok";
	assert_int_equal(record_from_def(&r, &d, 1, &e), 0);
	record_to_def(&r, &o, dp, np);
	assert_string_equal(o.name, "ok");
	assert_int_equal(o.n_disks, 1);
	assert_string_equal(o.nets[0], "tap=t0");
}

static void test_exit_reason_and_pid(void **st)
{
	char buf[160];
	(void)st;
	agent_exit_reason(0, buf, sizeof(buf));
	assert_non_null(strstr(buf, "poweroff"));
	agent_exit_reason(1 << 8, buf, sizeof(buf));
	assert_non_null(strstr(buf, "guest failure"));
	agent_exit_reason(4 << 8, buf, sizeof(buf));
	assert_non_null(strstr(buf, "reboot"));
	agent_exit_reason(3 << 8, buf, sizeof(buf));
	assert_non_null(strstr(buf, "internal error"));
	agent_exit_reason(9, buf, sizeof(buf));
	assert_non_null(strstr(buf, "signal 9"));

	uint64_t s = proc_start_time(getpid());
	assert_true(s > 0);
	assert_int_equal(proc_start_time(getpid()), s);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	uint64_t cs = proc_start_time(c);
	assert_true(cs >= s);
	waitpid(c, NULL, 0);
	assert_int_equal(proc_start_time(c), 0);
	assert_int_equal(proc_start_time(0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_roundtrip),
		cmocka_unit_test(test_json_unknown_keys_skipped),
		cmocka_unit_test(test_json_hostile),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_def_validation),
		cmocka_unit_test(test_exit_reason_and_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
