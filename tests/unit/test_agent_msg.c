/* agentd message handling: request checks (versions, names, local vs peer
 * commands), decoding garbage, host:port parsing, vmm control calls against
 * a missing socket or a wedged one (full backlog: bounded, never hangs),
 * peer calls without a secret / to a closed port, console requests, the
 * names of agentd-made taps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agentd/agent.h"

static int check(Agent__Request *q, int peer, Agent__ErrorCode *code)
{
	struct err e;
	return agent_request_check(q, peer, code, &e);
}

static void test_versions(void **st)
{
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__List l = AGENT__LIST__INIT;
	Agent__Version v = AGENT__VERSION__INIT;
	Agent__ErrorCode code;
	(void)st;
	q.cmd_case = AGENT__REQUEST__CMD_LIST;
	q.list = &l;
	assert_int_equal(check(&q, 0, &code), -1);	/* api_version 0 */
	assert_int_equal(code, AGENT__ERROR_CODE__ERROR_BAD_VERSION);
	q.api_version = AGENT_API_VERSION + 1;
	assert_int_equal(check(&q, 0, &code), -1);
	assert_int_equal(code, AGENT__ERROR_CODE__ERROR_BAD_VERSION);
	q.api_version = AGENT_API_VERSION;
	assert_int_equal(check(&q, 0, &code), 0);
	/* Version is answered for any api_version */
	q.api_version = 999;
	q.cmd_case = AGENT__REQUEST__CMD_VERSION;
	q.version = &v;
	assert_int_equal(check(&q, 0, &code), 0);
	assert_int_equal(check(&q, 1, &code), 0);
	q.api_version = AGENT_API_VERSION;
	q.cmd_case = AGENT__REQUEST__CMD__NOT_SET;
	assert_int_equal(check(&q, 0, &code), -1);
	q.cmd_case = 77;
	assert_int_equal(check(&q, 0, &code), -1);
	assert_int_equal(code, AGENT__ERROR_CODE__ERROR_UNSUPPORTED);
}

static void test_names_and_links(void **st)
{
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__Show sh = AGENT__SHOW__INIT;
	Agent__Commit cm = AGENT__COMMIT__INIT;
	Agent__Migrate m = AGENT__MIGRATE__INIT;
	Agent__Evacuate ev = AGENT__EVACUATE__INIT;
	Agent__Run run = AGENT__RUN__INIT;
	Agent__ErrorCode code;
	(void)st;
	q.api_version = AGENT_API_VERSION;
	q.cmd_case = AGENT__REQUEST__CMD_SHOW;
	q.show = &sh;
	sh.name = "";
	assert_int_equal(check(&q, 0, &code), -1);
	assert_int_equal(code, AGENT__ERROR_CODE__ERROR_INVALID_ARGUMENT);
	sh.name = "../x";
	assert_int_equal(check(&q, 0, &code), -1);
	sh.name = "web1";
	assert_int_equal(check(&q, 0, &code), 0);
	/* local commands are refused on the peer link and vice versa */
	assert_int_equal(check(&q, 1, &code), -1);
	assert_int_equal(code, AGENT__ERROR_CODE__ERROR_UNSUPPORTED);
	q.cmd_case = AGENT__REQUEST__CMD_COMMIT;
	q.commit = &cm;
	cm.name = "web1";
	assert_int_equal(check(&q, 1, &code), 0);
	assert_int_equal(check(&q, 0, &code), -1);
	assert_int_equal(code, AGENT__ERROR_CODE__ERROR_UNSUPPORTED);
	/* migrate needs a destination, evacuate targets, run a definition */
	q.cmd_case = AGENT__REQUEST__CMD_MIGRATE;
	q.migrate = &m;
	m.name = "web1";
	m.to = "";
	assert_int_equal(check(&q, 0, &code), -1);
	m.to = "hostb";
	assert_int_equal(check(&q, 0, &code), 0);
	q.cmd_case = AGENT__REQUEST__CMD_EVACUATE;
	q.evacuate = &ev;
	assert_int_equal(check(&q, 0, &code), -1);
	q.cmd_case = AGENT__REQUEST__CMD_RUN;
	q.run = &run;
	assert_int_equal(check(&q, 0, &code), -1);
}

static void test_decode_garbage(void **st)
{
	struct err e;
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x52, 0x99 };
	(void)st;
	assert_null(agent_request_decode(junk, sizeof(junk), &e));
	assert_non_null(strstr(e.msg, "malformed"));
	/* an empty message decodes (all defaults) and is then refused */
	Agent__Request *q = agent_request_decode(junk, 0, &e);
	assert_non_null(q);
	Agent__ErrorCode code;
	assert_int_equal(check(q, 0, &code), -1);
	agent__request__free_unpacked(q, NULL);
	/* round trip of a real request */
	Agent__Request r = AGENT__REQUEST__INIT;
	Agent__Log lg = AGENT__LOG__INIT;
	uint8_t buf[256];
	r.api_version = AGENT_API_VERSION;
	r.id = 42;
	r.cmd_case = AGENT__REQUEST__CMD_LOG;
	r.log = &lg;
	lg.name = "vm";
	lg.follow = 1;
	size_t n = agent__request__pack(&r, buf);
	q = agent_request_decode(buf, n, &e);
	assert_non_null(q);
	assert_int_equal(q->id, 42);
	assert_int_equal(q->cmd_case, AGENT__REQUEST__CMD_LOG);
	assert_true(q->log->follow);
	assert_int_equal(check(q, 0, &code), 0);
	agent__request__free_unpacked(q, NULL);
	assert_string_equal(agent_cmd_name(AGENT__REQUEST__CMD_PREPARE_INCOMING), "prepare-incoming");
	assert_string_equal(agent_error_code_name(AGENT__ERROR_CODE__ERROR_NOT_FOUND), "not_found");
	assert_string_equal(agent_error_code_name(1000), "unknown");
}

static void test_hostport(void **st)
{
	char h[64];
	int p;
	struct err e;
	(void)st;
	assert_int_equal(agent_split_hostport("hostb", h, sizeof(h), &p, &e), 0);
	assert_string_equal(h, "hostb");
	assert_int_equal(p, AGENT_DEFAULT_PORT);
	assert_int_equal(agent_split_hostport("10.0.0.2:9000", h, sizeof(h), &p, &e), 0);
	assert_string_equal(h, "10.0.0.2");
	assert_int_equal(p, 9000);
	assert_int_equal(agent_split_hostport("[::1]:77", h, sizeof(h), &p, &e), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(p, 77);
	assert_int_equal(agent_split_hostport("[::1]", h, sizeof(h), &p, &e), 0);
	assert_int_equal(agent_split_hostport("::1", h, sizeof(h), &p, &e), -1);
	assert_int_equal(agent_split_hostport("h:0", h, sizeof(h), &p, &e), -1);
	assert_int_equal(agent_split_hostport("h:70000", h, sizeof(h), &p, &e), -1);
	assert_int_equal(agent_split_hostport("h:", h, sizeof(h), &p, &e), -1);
	assert_int_equal(agent_split_hostport(":5", h, sizeof(h), &p, &e), -1);
	assert_int_equal(agent_split_hostport("", h, sizeof(h), &p, &e), -1);
	assert_int_equal(agent_split_hostport("[::1", h, sizeof(h), &p, &e), -1);
}

static void test_calls_fail_cleanly(void **st)
{
	struct err e;
	Vmm__Request q = VMM__REQUEST__INIT;
	Vmm__Status s = VMM__STATUS__INIT;
	Vmm__Response *r = NULL;
	Agent__Request aq = AGENT__REQUEST__INIT;
	Agent__Response *ar = NULL;
	struct auth_secret sec = { 0 };
	(void)st;
	q.cmd_case = VMM__REQUEST__CMD_STATUS;
	q.status = &s;
	assert_int_equal(vmm_call("/nonexistent/vm.sock", &q, 100, &r, &e), -1);
	assert_non_null(strstr(e.msg, "/nonexistent/vm.sock"));
	assert_int_equal(peer_call("127.0.0.1:1", &sec, &aq, &ar, &e), -1);
	assert_non_null(strstr(e.msg, "no cluster secret"));
	assert_int_equal(auth_secret_set(&sec, "s3cret", 6, &e), 0);
	assert_int_equal(peer_call("127.0.0.1:1", &sec, &aq, &ar, &e), -1);
	assert_non_null(strstr(e.msg, "127.0.0.1:1"));
	auth_secret_free(&sec);
}

static void test_console_request(void **st)
{
	Agent__Request q = AGENT__REQUEST__INIT;
	Agent__Console c = AGENT__CONSOLE__INIT;
	Agent__ErrorCode code;
	static uint8_t big[65537];
	(void)st;
	q.api_version = AGENT_API_VERSION;
	q.cmd_case = AGENT__REQUEST__CMD_CONSOLE;
	q.console = &c;
	c.name = "";
	assert_int_equal(check(&q, 0, &code), -1);
	c.name = "vm1";
	c.attach = 1;
	assert_int_equal(check(&q, 0, &code), 0);
	assert_int_equal(check(&q, 1, &code), -1);	/* never on the peer link */
	assert_int_equal(code, AGENT__ERROR_CODE__ERROR_UNSUPPORTED);
	c.attach = 0;
	c.input.data = big;
	c.input.len = sizeof(big);
	assert_int_equal(check(&q, 0, &code), -1);
	c.input.len = 100;
	assert_int_equal(check(&q, 0, &code), 0);
	assert_string_equal(agent_cmd_name(AGENT__REQUEST__CMD_CONSOLE), "console");
}

/* A vmm that accepts nothing and whose backlog is full: vmm_call must give
 * up after its timeout (connect used to block forever there). */
static void test_wedged_vmm_bounded(void **st)
{
	char path[] = "/tmp/test_agent_msg.XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int l, fill[8];
	struct err e;
	struct timespec t0, t1;
	Vmm__Request q = VMM__REQUEST__INIT;
	Vmm__Status s = VMM__STATUS__INIT;
	Vmm__Response *r = NULL;
	(void)st;
	assert_non_null(mkdtemp(path));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 0), 0);
	for (int i = 0; i < 8; i++) {	/* fill the backlog */
		fill[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	q.cmd_case = VMM__REQUEST__CMD_STATUS;
	q.status = &s;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(vmm_call(sa.sun_path, &q, 300, &r, &e), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	for (int i = 0; i < 8; i++)
		close(fill[i]);
	close(l);
	unlink(sa.sun_path);
	rmdir(path);
}

static void test_tap_names(void **st)
{
	char a[32], b[32], c[32];
	(void)st;
	net_tap_name("a-very-long-vm-name-that-is-longer-than-fifteen-bytes-for-sure", 3, a, sizeof(a));
	assert_true(strlen(a) <= 15);
	net_tap_name("a-very-long-vm-name-that-is-longer-than-fifteen-bytes-for-sure", 3, b, sizeof(b));
	assert_string_equal(a, b);	/* same on every host: the destination finds it */
	net_tap_name("a-very-long-vm-name-that-is-longer-than-fifteen-bytes-for-sure", 2, c, sizeof(c));
	assert_string_not_equal(a, c);
	net_tap_name("vm1", 0, c, sizeof(c));
	assert_string_not_equal(a, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_names_and_links),
		cmocka_unit_test(test_decode_garbage),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_calls_fail_cleanly),
		cmocka_unit_test(test_console_request),
		cmocka_unit_test(test_wedged_vmm_bounded),
		cmocka_unit_test(test_tap_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
