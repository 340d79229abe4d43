/* The vmm control socket: a Unix stream socket (mode 0600) speaking
 * proto/vmm.proto Requests/Responses framed by proto/frame.h.
 *
 * control_server_start() binds the socket and starts one thread that serves
 * any number of clients (up to CONTROL_MAX_CLIENTS at once) with poll(). Each
 * Request is answered with exactly one Response, in order. A message that
 * cannot be decoded (oversized length, bad protobuf) gets an ERROR_MALFORMED
 * Response and the connection is closed; a client vanishing mid-message just
 * drops that client. Nothing a client sends can crash or stop the server.
 *
 * Thread context: every op runs on the control thread, one at a time
 * (never concurrently with another op), while vCPUs keep running. An op
 * should not block for long: other clients wait meanwhile (snapshot may take
 * seconds; that is accepted). Ops must not call control_server_stop (it joins
 * the control thread); quit should only ask the main thread to shut down,
 * which then calls control_server_stop. */
#ifndef VMM_CONTROL_SERVER_H
#define VMM_CONTROL_SERVER_H

#include "lib/err.h"
#include "proto/api.h"

#define CONTROL_MAX_CLIENTS	16
#define CONTROL_SEND_TIMEOUT_MS	5000	/* a client not reading its replies is dropped */

/* Provided by the vmm core. Each op returns 0, or -1 with err set; the
 * message becomes Response.error verbatim (code ERROR_FAILED), so phrase it
 * for an operator, without the command name ("vcpu 1 did not stop within
 * 1000 ms"). A NULL op answers ERROR_UNSUPPORTED "not supported by this vmm".
 *
 * status/migrate_status fill *out, which the server has initialized (status:
 * pid = getpid()). Strings stored into *out must stay valid until the op is
 * next called (the server packs the reply right after the op returns, before
 * any other op runs), so pointing them at vmm-owned buffers is enough. */
struct control_ops {
	int (*status)(void *opaque, Vmm__VmStatus *out, struct err *err);
	int (*pause)(void *opaque, struct err *err);
	int (*resume)(void *opaque, struct err *err);
	int (*quit)(void *opaque, struct err *err);
	/* dir is non-empty (checked by the server). */
	int (*snapshot)(void *opaque, const char *dir, struct err *err);
	/* Start a migration and return once it runs (or failed to start);
	 * args->to is "HOST:PORT" with a numeric port 1..65535 (checked by the
	 * server); zero downtime_ms / bandwidth_mbps mean "default";
	 * secret_file may be "" (use the vmm's configured secret). */
	int (*migrate)(void *opaque, const Vmm__Migrate *args, struct err *err);
	int (*migrate_status)(void *opaque, Vmm__MigrationStats *out, struct err *err);
	int (*migrate_cancel)(void *opaque, struct err *err);
};

struct control_server;

/* Create the socket at path and start serving. An existing socket file at
 * path is replaced only if nothing accepts connections on it (a stale socket
 * of a dead vmm); if another process listens there, or path is not a socket,
 * fail with a clear error. ops and opaque must outlive the server. */
int control_server_start(const char *path, const struct control_ops *ops, void *opaque,
			 struct control_server **out, struct err *err);
/* Stop the thread, close every connection and remove the socket file (only
 * if it is still the one we created). NULL is a no-op. */
void control_server_stop(struct control_server *s);

/* ---- request handling, exposed for unit tests and fuzzing ---- */

/* Storage for one Response and everything it points to. */
struct control_reply {
	Vmm__Response resp;
	Vmm__VmStatus status;
	Vmm__MigrationStats migration;
	Vmm__VersionInfo version;
	struct err err;			/* resp.error points here when !ok */
};

/* Build the Response for req (never fails: errors become ok=false). */
void control_handle(const struct control_ops *ops, void *opaque, const Vmm__Request *req,
		    struct control_reply *out);
/* Fill out as an error Response (id may be 0 when the request was unreadable). */
void control_reply_error(struct control_reply *out, uint64_t id, Vmm__ErrorCode code,
			 const char *msg);

#endif
