/* Request -> Response for the control socket: version check, argument
 * validation, and the call into the vmm core's control_ops. No I/O here, so
 * tests and the fuzzer drive it directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/control/server.h"

static void reply_init(struct control_reply *out, uint64_t id)
{
	memset(out, 0, sizeof(*out));
	vmm__response__init(&out->resp);
	vmm__vm_status__init(&out->status);
	vmm__migration_stats__init(&out->migration);
	vmm__version_info__init(&out->version);
	out->resp.id = id;
	out->resp.api_version = VMM_API_VERSION;
	out->resp.ok = 1;
}

void control_reply_error(struct control_reply *out, uint64_t id, Vmm__ErrorCode code,
			 const char *msg)
{
	char tmp[sizeof(out->err.msg)];

	/* msg may live in out->err (callers pass err.msg): copy before reset. */
	snprintf(tmp, sizeof(tmp), "%s", msg);
	reply_init(out, id);
	memcpy(out->err.msg, tmp, sizeof(tmp));
	out->resp.ok = 0;
	out->resp.code = code;
	out->resp.error = out->err.msg;
}

/* "HOST:PORT" with a non-empty host (brackets allowed for IPv6) and a decimal
 * port 1..65535 after the last colon. */
static int valid_hostport(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || !colon[1])
		return 0;
	if (colon[1] < '0' || colon[1] > '9')
		return 0;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port >= 1 && port <= 65535;
}

/* An op may leave string fields NULL; pack wants "" for absent. */
static void fix_str(char **s)
{
	if (!*s)
		*s = (char *)"";
}

/* Turn an op's return into the reply. */
static void op_done(struct control_reply *out, uint64_t id, int rc)
{
	fix_str(&out->status.name);
	fix_str(&out->status.state_reason);
	fix_str(&out->status.vmm_version);
	fix_str(&out->migration.error);
	fix_str(&out->migration.to);
	if (rc < 0) {
		if (!out->err.msg[0])
			snprintf(out->err.msg, sizeof(out->err.msg), "failed (no reason given)");
		control_reply_error(out, id, VMM__ERROR_CODE__ERROR_FAILED, out->err.msg);
	}
}

void control_handle(const struct control_ops *ops, void *opaque, const Vmm__Request *req,
		    struct control_reply *out)
{
	uint64_t id = req->id;
	int rc = 0;

	reply_init(out, id);
	/* Version is answered for any api_version so clients can negotiate. */
	if (req->cmd_case == VMM__REQUEST__CMD_VERSION) {
		out->version.api_version = VMM_API_VERSION;
		out->version.min_api_version = VMM_API_VERSION_MIN;
		out->version.software = "kvmfleet vmm";
		out->resp.result_case = VMM__RESPONSE__RESULT_VERSION;
		out->resp.version = &out->version;
		return;
	}
	if (req->api_version < VMM_API_VERSION_MIN || req->api_version > VMM_API_VERSION) {
		snprintf(out->err.msg, sizeof(out->err.msg),
			 "unsupported api_version %u (this vmm speaks %u..%u)%s",
			 req->api_version, VMM_API_VERSION_MIN, VMM_API_VERSION,
			 req->api_version == 0 ? "; api_version must be set in every request" : "");
		control_reply_error(out, id, VMM__ERROR_CODE__ERROR_BAD_VERSION, out->err.msg);
		return;
	}

#define NEED(op)							\
	do {								\
		if (!ops || !ops->op) {					\
			control_reply_error(out, id, VMM__ERROR_CODE__ERROR_UNSUPPORTED, \
					    "not supported by this vmm"); \
			return;						\
		}							\
	} while (0)

	switch (req->cmd_case) {
	case VMM__REQUEST__CMD_STATUS:
		NEED(status);
		out->status.pid = (uint32_t)getpid();
		rc = ops->status(opaque, &out->status, &out->err);
		out->resp.result_case = VMM__RESPONSE__RESULT_STATUS;
		out->resp.status = &out->status;
		break;
	case VMM__REQUEST__CMD_PAUSE:
		NEED(pause);
		rc = ops->pause(opaque, &out->err);
		break;
	case VMM__REQUEST__CMD_RESUME:
		NEED(resume);
		rc = ops->resume(opaque, &out->err);
		break;
	case VMM__REQUEST__CMD_QUIT:
		NEED(quit);
		rc = ops->quit(opaque, &out->err);
		break;
	case VMM__REQUEST__CMD_SNAPSHOT:
		NEED(snapshot);
		/* Unpacked strings are never NULL, but a hand-built request may be. */
		if (!req->snapshot || !req->snapshot->dir || !req->snapshot->dir[0]) {
			control_reply_error(out, id, VMM__ERROR_CODE__ERROR_INVALID_ARGUMENT,
					    "snapshot directory missing");
			return;
		}
		rc = ops->snapshot(opaque, req->snapshot->dir, &out->err);
		break;
	case VMM__REQUEST__CMD_MIGRATE:
		NEED(migrate);
		if (!req->migrate || !req->migrate->to || !valid_hostport(req->migrate->to)) {
			snprintf(out->err.msg, sizeof(out->err.msg),
				 "migration destination must be HOST:PORT, got \"%.200s\"",
				 req->migrate && req->migrate->to ? req->migrate->to : "");
			control_reply_error(out, id, VMM__ERROR_CODE__ERROR_INVALID_ARGUMENT,
					    out->err.msg);
			return;
		}
		if (!req->migrate->secret_file) {
			/* Normalize so the op never sees NULL. */
			Vmm__Migrate m = *req->migrate;

			m.secret_file = "";
			rc = ops->migrate(opaque, &m, &out->err);
		} else {
			rc = ops->migrate(opaque, req->migrate, &out->err);
		}
		break;
	case VMM__REQUEST__CMD_MIGRATE_STATUS:
		NEED(migrate_status);
		rc = ops->migrate_status(opaque, &out->migration, &out->err);
		out->resp.result_case = VMM__RESPONSE__RESULT_MIGRATION;
		out->resp.migration = &out->migration;
		break;
	case VMM__REQUEST__CMD_MIGRATE_CANCEL:
		NEED(migrate_cancel);
		rc = ops->migrate_cancel(opaque, &out->err);
		break;
	case VMM__REQUEST__CMD__NOT_SET:
	default:
		/* An unknown oneof member unpacks as NOT_SET (kept as an unknown
		 * field), so a newer client's command lands here too. */
		control_reply_error(out, id, VMM__ERROR_CODE__ERROR_UNSUPPORTED,
				    "request has no command this vmm knows (client newer than vmm?)");
		return;
	}
#undef NEED
	op_done(out, id, rc);
}
