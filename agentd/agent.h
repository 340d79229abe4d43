/* agentd internals shared by the daemon, vmctl, unit tests and fuzzing.
 *
 *   record.c  VM records in the state dir (STATE/NAME.json), validation,
 *             size parsing
 *   msg.c     agent message helpers: responses, request decoding, blocking
 *             local/peer clients, vmm control calls
 *   daemon.c  the libev daemon (local API, peer listener, supervision,
 *             migration orchestration)
 */
#ifndef AGENTD_AGENT_H
#define AGENTD_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/auth.h"
#include "lib/err.h"
#include "proto/agent.pb-c.h"
#include "proto/vmm.pb-c.h"

#define AGENT_API_VERSION	1u
#define AGENT_API_VERSION_MIN	1u
#define AGENT_SOFTWARE		"kvmfleet agentd 0.1"
#define AGENT_DEFAULT_PORT	7800
#define AGENT_FRAME_REQUEST	1
#define AGENT_FRAME_RESPONSE	2
#define AGENT_PEER_TIMEOUT_MS	10000

#define AGENT_NAME_MAX		64
#define AGENT_PATH_MAX		1024
#define AGENT_CMDLINE_MAX	2048
#define AGENT_MAX_DISKS		8
#define AGENT_MAX_NETS		4
#define AGENT_NET_MAX		128
#define AGENT_MEM_MIN		(2ull << 20)
#define AGENT_MEM_MAX		(1ull << 40)
#define AGENT_CPUS_MAX		64
#define AGENT_DEFAULT_MEM	(256ull << 20)

/* One VM as recorded in STATE/NAME.json. */
struct vm_record {
	char name[AGENT_NAME_MAX + 1];
	char kernel[AGENT_PATH_MAX];
	char initrd[AGENT_PATH_MAX];
	char cmdline[AGENT_CMDLINE_MAX];
	uint64_t mem_bytes;
	uint32_t cpus;
	char disks[AGENT_MAX_DISKS][AGENT_PATH_MAX];
	unsigned ndisks;
	char nets[AGENT_MAX_NETS][AGENT_NET_MAX];
	unsigned nnets;
	int32_t pid;			/* vmm pid, 0 when none */
	uint64_t pid_start;		/* /proc/PID/stat starttime (guards pid reuse) */
	uint64_t started_unix_ms;
	char state[24];			/* starting, running, incoming, stopped, exited, migrated */
	char exit_reason[400];		/* why the vmm ended + its last error line */
	char migrated_to[256];
	char source[256];		/* incoming: the source agentd */
	int incoming_port;		/* incoming: the vmm's --incoming port */
};

/* ---- record.c ---- */
int agent_name_valid(const char *name, struct err *err);
/* "512M", "2G", "1024K", bare number = MiB (as vmm --mem). */
int agent_parse_size(const char *s, uint64_t *out, struct err *err);
/* Fill r's definition from d after validating it (name, sizes, counts,
 * absolute kernel/initrd paths). check_files: kernel/initrd readable. */
int record_from_def(struct vm_record *r, const Agent__VmDefinition *d, int check_files,
		    struct err *err);
/* Point d's fields into r (no copies; r must outlive d). disks/nets use the
 * caller's pointer arrays. */
void record_to_def(const struct vm_record *r, Agent__VmDefinition *d,
		   char *disks[AGENT_MAX_DISKS], char *nets[AGENT_MAX_NETS]);
/* JSON encoding of a record (malloc'd, NUL-terminated). */
char *record_to_json(const struct vm_record *r);
int record_from_json(const char *buf, size_t len, struct vm_record *r, struct err *err);
/* STATE/NAME.json via NAME.json.tmp + fsync + rename + fsync(dir). On
 * failure nothing is replaced and the tmp file is removed. */
int record_save(const char *dir, const struct vm_record *r, struct err *err);
int record_load(const char *dir, const char *name, struct vm_record *r, struct err *err);
int record_remove(const char *dir, const char *name, struct err *err);
/* Process start time of pid (field 22 of /proc/PID/stat); 0 if gone. */
uint64_t proc_start_time(pid_t pid);
/* "poweroff", "guest failure", "killed by signal 9", from a wait status. */
void agent_exit_reason(int wstatus, char *buf, size_t len);

/* ---- msg.c ---- */
/* Decode one local Request (fuzz target); NULL with err on garbage. */
Agent__Request *agent_request_decode(const uint8_t *buf, size_t len, struct err *err);
/* Check api_version and the command's required fields; 0 if acceptable,
 * else -1 with *code and err set. peer: whether it arrived on the peer link
 * (only peer commands and Version are accepted there; local links refuse
 * peer commands). */
int agent_request_check(const Agent__Request *req, int peer, Agent__ErrorCode *code,
			struct err *err);
const char *agent_cmd_name(Agent__Request__CmdCase c);
const char *agent_error_code_name(Agent__ErrorCode c);

/* Blocking vmm control call: connect to sock, send one Request with cmd,
 * read its Response. timeout_ms bounds each wait. Returns 0 with *resp set
 * when the vmm answered (check ok); -1 on transport errors. */
int vmm_call(const char *sock, Vmm__Request *req, int timeout_ms, Vmm__Response **resp,
	     struct err *err);
/* vmm_call + ok check: -1 with the vmm's error when !ok. */
int vmm_call_ok(const char *sock, Vmm__Request *req, int timeout_ms, Vmm__Response **resp,
		struct err *err);

/* Peer link client: connect to "host[:port]", authenticate, send req, read
 * one Response. */
int peer_call(const char *hostport, const struct auth_secret *secret, Agent__Request *req,
	      Agent__Response **resp, struct err *err);
/* Split "host[:port]" (port default AGENT_DEFAULT_PORT; [v6]:port ok). */
int agent_split_hostport(const char *s, char *host, size_t hostlen, int *port, struct err *err);
int tcp_connect(const char *host, int port, int timeout_ms, struct err *err);

/* ---- net.c ---- */
/* The tap agentd creates for NIC idx of a bridge=BR VM (<= 15 bytes). */
void net_tap_name(const char *vm, unsigned idx, char *out, size_t cap);
/* vmm --net value for spec: tap=IF unchanged; bridge=BR[,rest]: create the
 * persistent tap, attach it to BR, set it up, give "tap=NAME[,rest]". */
int net_prepare(const char *vm, unsigned idx, const char *spec, char *out, size_t cap,
		struct err *err);
/* Delete the tap of a bridge=BR NIC once its vmm has ended (no-op for
 * tap=IF, or while a vmm still holds the tap). */
void net_release(const char *vm, unsigned idx, const char *spec);

/* ---- daemon.c ---- */
struct agentd_opts {
	const char *socket_path;	/* local API (if no socket activation) */
	const char *state_dir;
	const char *listen;		/* peer "ADDR:PORT", NULL = none */
	const char *secret_file;
	const char *vmm_path;
	const char *host_name;		/* how peers reach us ("host:port"), for records */
};
int agentd_main(const struct agentd_opts *o);

#endif
