/* Client side of the vmm control socket (vmm ctl, and later agentd when it
 * talks to a local vmm with blocking calls). */
#ifndef VMM_CONTROL_CLIENT_H
#define VMM_CONTROL_CLIENT_H

#include "lib/err.h"
#include "proto/api.h"

/* Connect to the control socket at path. Returns the fd (blocking,
 * close-on-exec) or -1 with err, e.g. "connect /run/vm1.sock: No such file
 * or directory (is the vmm running?)". */
int control_connect(const char *path, struct err *err);

/* Send req and wait for its Response. Sets req->api_version to
 * VMM_API_VERSION if 0 and req->id to a fresh process-unique id if 0.
 * Returns 0 with *resp set whenever the vmm answered, even with ok=false:
 * the caller reports (*resp)->error. Free with vmm__response__free_unpacked.
 * -1 with err on transport errors (vmm gone, garbage, id mismatch). */
int control_call(int fd, Vmm__Request *req, Vmm__Response **resp, struct err *err);

/* The low-level CLI:
 *   vmm ctl SOCKET status|pause|resume|quit|snapshot DIR|migrate-status|
 *               migrate-cancel|version [--json]
 *   vmm ctl SOCKET migrate --to HOST:PORT [--downtime MS] [--bandwidth MBPS]
 *               [--secret-file F] [--json]
 * argv[0] is "ctl" (vmm's main calls vmm_ctl_main(argc - 1, argv + 1)).
 * Prints results on stdout (JSON object with --json); returns the exit
 * status: 0 ok, 1 the command failed ("vmm ctl: pause: <error>" on stderr),
 * 2 usage error. */
int vmm_ctl_main(int argc, char **argv);

#endif
