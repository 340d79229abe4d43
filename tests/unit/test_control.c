/* vmm control socket: server + client + vmm ctl over a real Unix socket in a
 * temp dir, with a fake ops table standing in for the vmm core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/le.h"
#include "proto/frame.h"
#include "vmm/control/client.h"
#include "vmm/control/server.h"

struct fake {
	Vmm__VmState state;
	char snap_dir[256];
	char mig_to[64];
	uint32_t mig_downtime;
	int quits;
};

static int f_status(void *o, Vmm__VmStatus *out, struct err *err)
{
	struct fake *f = o;

	(void)err;
	out->name = "vm-test";
	out->state = f->state;
	out->cpus = 2;
	out->mem_bytes = 256u << 20;
	out->uptime_ms = 1234;
	return 0;
}

static int f_pause(void *o, struct err *err)
{
	struct fake *f = o;

	if (f->state == VMM__VM_STATE__VM_STATE_PAUSED)
		return err_set(err, "already paused");
	f->state = VMM__VM_STATE__VM_STATE_PAUSED;
	return 0;
}

static int f_resume(void *o, struct err *err)
{
	(void)err;
	((struct fake *)o)->state = VMM__VM_STATE__VM_STATE_RUNNING;
	return 0;
}

static int f_quit(void *o, struct err *err)
{
	(void)err;
	((struct fake *)o)->quits++;
	return 0;
}

static int f_snapshot(void *o, const char *dir, struct err *err)
{
	(void)err;
	snprintf(((struct fake *)o)->snap_dir, 256, "%s", dir);
	return 0;
}

static int f_migrate(void *o, const Vmm__Migrate *m, struct err *err)
{
	struct fake *f = o;

	(void)err;
	snprintf(f->mig_to, sizeof(f->mig_to), "%s", m->to);
	f->mig_downtime = m->downtime_ms;
	return 0;
}

/* migrate_status and migrate_cancel left NULL: "not supported". */
static const struct control_ops fake_ops = {
	.status = f_status, .pause = f_pause, .resume = f_resume, .quit = f_quit,
	.snapshot = f_snapshot, .migrate = f_migrate,
};

struct env {
	char dir[64], path[128];
	struct fake fake;
	struct control_server *srv;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct err err;

	strcpy(e->dir, "/tmp/test_control_XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/vm.sock", e->dir);
	e->fake.state = VMM__VM_STATE__VM_STATE_RUNNING;
	if (control_server_start(e->path, &fake_ops, &e->fake, &e->srv, &err) < 0)
		fail_msg("%s", err.msg);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	control_server_stop(e->srv);
	unlink(e->path);
	rmdir(e->dir);
	free(e);
	return 0;
}

static Vmm__Response *call(int fd, Vmm__Request__CmdCase c, void *cmd)
{
	Vmm__Request req = VMM__REQUEST__INIT;
	Vmm__Response *r;
	struct err err;

	req.cmd_case = c;
	req.status = cmd;	/* union: any member pointer works */
	if (control_call(fd, &req, &r, &err) < 0)
		fail_msg("%s", err.msg);
	return r;
}

static void test_pause_status(void **state)
{
	struct env *e = *state;
	Vmm__Status st = VMM__STATUS__INIT;
	Vmm__Pause pa = VMM__PAUSE__INIT;
	Vmm__Response *r;
	struct stat sb;
	struct err err;
	int fd;

	assert_int_equal(stat(e->path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	fd = control_connect(e->path, &err);
	assert_true(fd >= 0);
	r = call(fd, VMM__REQUEST__CMD_PAUSE, &pa);
	assert_true(r->ok);
	vmm__response__free_unpacked(r, NULL);
	r = call(fd, VMM__REQUEST__CMD_PAUSE, &pa);
	assert_false(r->ok);
	assert_int_equal(r->code, VMM__ERROR_CODE__ERROR_FAILED);
	assert_string_equal(r->error, "already paused");
	vmm__response__free_unpacked(r, NULL);
	r = call(fd, VMM__REQUEST__CMD_STATUS, &st);
	assert_true(r->ok);
	assert_int_equal(r->result_case, VMM__RESPONSE__RESULT_STATUS);
	assert_string_equal(r->status->name, "vm-test");
	assert_int_equal(r->status->state, VMM__VM_STATE__VM_STATE_PAUSED);
	assert_int_equal(r->status->pid, getpid());
	assert_int_equal(r->api_version, VMM_API_VERSION);
	vmm__response__free_unpacked(r, NULL);
	close(fd);
}

static void test_unsupported_and_invalid(void **state)
{
	struct env *e = *state;
	Vmm__MigrateStatus ms = VMM__MIGRATE_STATUS__INIT;
	Vmm__Migrate mig = VMM__MIGRATE__INIT;
	Vmm__Snapshot snap = VMM__SNAPSHOT__INIT;
	Vmm__Request req = VMM__REQUEST__INIT;
	Vmm__Response *r;
	struct err err;
	int fd = control_connect(e->path, &err);

	assert_true(fd >= 0);
	r = call(fd, VMM__REQUEST__CMD_MIGRATE_STATUS, &ms);
	assert_false(r->ok);
	assert_int_equal(r->code, VMM__ERROR_CODE__ERROR_UNSUPPORTED);
	assert_string_equal(r->error, "not supported by this vmm");
	vmm__response__free_unpacked(r, NULL);

	mig.to = "nohost";
	r = call(fd, VMM__REQUEST__CMD_MIGRATE, &mig);
	assert_int_equal(r->code, VMM__ERROR_CODE__ERROR_INVALID_ARGUMENT);
	assert_non_null(strstr(r->error, "HOST:PORT"));
	vmm__response__free_unpacked(r, NULL);
	r = call(fd, VMM__REQUEST__CMD_SNAPSHOT, &snap);
	assert_int_equal(r->code, VMM__ERROR_CODE__ERROR_INVALID_ARGUMENT);
	vmm__response__free_unpacked(r, NULL);

	/* No command at all (what an unknown newer command unpacks as). */
	req.api_version = VMM_API_VERSION;
	req.id = 77;
	assert_int_equal(control_call(fd, &req, &r, &err), 0);
	assert_int_equal(r->id, 77);
	assert_int_equal(r->code, VMM__ERROR_CODE__ERROR_UNSUPPORTED);
	vmm__response__free_unpacked(r, NULL);

	/* Wrong api_version: clear error, connection stays usable. */
	req.api_version = 99;
	req.cmd_case = VMM__REQUEST__CMD_MIGRATE_STATUS;
	req.migrate_status = &ms;
	assert_int_equal(control_call(fd, &req, &r, &err), 0);
	assert_int_equal(r->code, VMM__ERROR_CODE__ERROR_BAD_VERSION);
	assert_string_equal(r->error, "unsupported api_version 99 (this vmm speaks 1..1)");
	vmm__response__free_unpacked(r, NULL);

	mig.to = "dst.example:4444";
	mig.downtime_ms = 300;
	r = call(fd, VMM__REQUEST__CMD_MIGRATE, &mig);
	assert_true(r->ok);
	assert_string_equal(e->fake.mig_to, "dst.example:4444");
	assert_int_equal(e->fake.mig_downtime, 300);
	vmm__response__free_unpacked(r, NULL);
	close(fd);
}

/* Send raw bytes, expect one MALFORMED response then EOF. */
static void expect_rejected(const char *path, const void *bytes, size_t n, const char *want)
{
	Vmm__Response *r;
	struct err err;
	int fd = control_connect(path, &err);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, n), (ssize_t)n);
	assert_int_equal(pmsg_recv_response(fd, &r, &err), 0);
	assert_false(r->ok);
	assert_int_equal(r->id, 0);
	assert_int_equal(r->code, VMM__ERROR_CODE__ERROR_MALFORMED);
	assert_non_null(strstr(r->error, want));
	vmm__response__free_unpacked(r, NULL);
	assert_int_equal(pmsg_recv_response(fd, &r, &err), -2);
	close(fd);
}

static void test_garbage(void **state)
{
	struct env *e = *state;
	uint8_t bad[8] = { 4, 0, 0, 0, 0x0f, 0xff, 0xff, 0xff };
	const char *http = "GET / HTTP/1.1\r\n\r\n";

	expect_rejected(e->path, bad, sizeof(bad),
			"read request: malformed request: protobuf-c unpack failed");
	expect_rejected(e->path, http, strlen(http), "exceeds limit 4194304");
}

static void test_disconnect_mid_message_and_two_clients(void **state)
{
	struct env *e = *state;
	Vmm__Status st = VMM__STATUS__INIT;
	Vmm__Resume re = VMM__RESUME__INIT;
	uint8_t partial[6] = { 100, 0, 0, 0, 0x08, 0x01 };
	Vmm__Response *r;
	struct err err;
	int a, b, c;

	a = control_connect(e->path, &err);
	b = control_connect(e->path, &err);
	c = control_connect(e->path, &err);
	assert_true(a >= 0 && b >= 0 && c >= 0);
	/* c sends 2 of 4 length bytes, a sends half a message; both vanish. */
	assert_int_equal(write(c, partial, 2), 2);
	assert_int_equal(write(a, partial, sizeof(partial)), (ssize_t)sizeof(partial));
	close(c);
	r = call(b, VMM__REQUEST__CMD_STATUS, &st);
	assert_true(r->ok);
	vmm__response__free_unpacked(r, NULL);
	close(a);
	/* Interleave two live clients. */
	a = control_connect(e->path, &err);
	assert_true(a >= 0);
	r = call(a, VMM__REQUEST__CMD_RESUME, &re);
	assert_true(r->ok);
	vmm__response__free_unpacked(r, NULL);
	r = call(b, VMM__REQUEST__CMD_STATUS, &st);
	assert_int_equal(r->status->state, VMM__VM_STATE__VM_STATE_RUNNING);
	vmm__response__free_unpacked(r, NULL);
	r = call(a, VMM__REQUEST__CMD_STATUS, &st);
	assert_true(r->ok);
	vmm__response__free_unpacked(r, NULL);
	/* Leave both connected: stop must still be clean (teardown). */
	(void)a;
	(void)b;
}

static void test_socket_ownership(void **state)
{
	struct env *e = *state;
	struct control_server *s2;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char stale[160], file[160];
	struct err err;
	int fd;

	/* A live server owns the path. */
	assert_int_equal(control_server_start(e->path, &fake_ops, &e->fake, &s2, &err), -1);
	assert_non_null(strstr(err.msg, "in use by another process"));
	/* A stale socket (bound, nobody listening) is replaced. */
	snprintf(stale, sizeof(stale), "%s/stale.sock", e->dir);
	strcpy(sa.sun_path, stale);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(control_server_start(stale, &fake_ops, &e->fake, &s2, &err), 0);
	control_server_stop(s2);
	assert_int_equal(access(stale, F_OK), -1);	/* removed on stop */
	/* A regular file is never replaced. */
	snprintf(file, sizeof(file), "%s/file", e->dir);
	close(open(file, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(control_server_start(file, &fake_ops, &e->fake, &s2, &err), -1);
	assert_non_null(strstr(err.msg, "exists and is not a socket"));
	unlink(file);
	/* Nothing listening at all: a clear client error. */
	assert_int_equal(control_connect(stale, &err), -1);
	assert_non_null(strstr(err.msg, "is the vmm running?"));
}

/* Run vmm_ctl_main with stdout/stderr captured into files. */
static int ctl(char *out, size_t outcap, char *errs, size_t errcap, int argc, char **argv)
{
	FILE *fo = tmpfile(), *fe = tmpfile();
	int so = dup(1), se = dup(2), rc;
	size_t n;

	fflush(stdout);
	fflush(stderr);
	dup2(fileno(fo), 1);
	dup2(fileno(fe), 2);
	rc = vmm_ctl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	rewind(fo);
	rewind(fe);
	n = fread(out, 1, outcap - 1, fo);
	out[n] = '\0';
	n = fread(errs, 1, errcap - 1, fe);
	errs[n] = '\0';
	fclose(fo);
	fclose(fe);
	return rc;
}

static void test_vmm_ctl(void **state)
{
	struct env *e = *state;
	char out[4096], errs[4096];
	char *status[] = { "ctl", e->path, "status", "--json" };
	char *status_h[] = { "ctl", e->path, "status" };
	char *snap[] = { "ctl", e->path, "snapshot", "/tmp/snapdir" };
	char *mig[] = { "ctl", e->path, "migrate", "--to", "10.0.0.2:7000", "--downtime=250" };
	char *ms[] = { "ctl", e->path, "migrate-status" };
	char *quit[] = { "ctl", e->path, "quit" };
	char *pause2[] = { "ctl", e->path, "pause" };
	char *bad1[] = { "ctl", e->path, "snapshot" };
	char *bad2[] = { "ctl", e->path, "migrate", "--to", "nohost" };
	char *bad3[] = { "ctl", e->path, "frobnicate" };
	char *bad4[] = { "ctl", e->path, "status", "--to", "a:1" };
	char *gone[] = { "ctl", "/nonexistent/x.sock", "status" };

	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 4, status), 0);
	assert_non_null(strstr(out, "\"name\":\"vm-test\""));
	assert_non_null(strstr(out, "\"state\":\"running\""));
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, status_h), 0);
	assert_non_null(strstr(out, "memory:  256.0 MiB"));
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 4, snap), 0);
	assert_string_equal(e->fake.snap_dir, "/tmp/snapdir");
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 6, mig), 0);
	assert_string_equal(e->fake.mig_to, "10.0.0.2:7000");
	assert_int_equal(e->fake.mig_downtime, 250);
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, ms), 1);
	assert_string_equal(errs, "vmm ctl: migrate-status: not supported by this vmm\n");
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, pause2), 0);
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, pause2), 1);
	assert_string_equal(errs, "vmm ctl: pause: already paused\n");
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, quit), 0);
	assert_int_equal(e->fake.quits, 1);
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, bad1), 2);
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 5, bad2), 2);
	assert_non_null(strstr(errs, "--to must be HOST:PORT"));
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, bad3), 2);
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 5, bad4), 2);
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 2, bad4), 2);
	assert_int_equal(ctl(out, sizeof(out), errs, sizeof(errs), 3, gone), 1);
	assert_non_null(strstr(errs, "vmm ctl: status: connect /nonexistent/x.sock"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pause_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_mid_message_and_two_clients,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_ownership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmm_ctl, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
