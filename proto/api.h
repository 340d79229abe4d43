/* Version constants and enum names for the vmm control API (proto/vmm.proto).
 * Shared by the vmm control server, vmm ctl, agentd and vmctl. */
#ifndef PROTO_API_H
#define PROTO_API_H

#include "proto/vmm.pb-c.h"

/* Highest api_version this build speaks, and the lowest it still accepts.
 * Clients put VMM_API_VERSION in every Request. */
#define VMM_API_VERSION		1u
#define VMM_API_VERSION_MIN	1u

/* Lower-case names for display and JSON ("running", "paused_ambiguous");
 * "unknown(N)"-style fallback is "unknown" for values this build lacks. */
const char *vmm_state_name(Vmm__VmState s);
const char *vmm_phase_name(Vmm__MigrationPhase p);
const char *vmm_outcome_name(Vmm__MigrationOutcome o);
const char *vmm_error_code_name(Vmm__ErrorCode c);
/* Name of the command in a Request ("status", "migrate-status"); "none" if
 * unset, "unknown" for a oneof case this build lacks. */
const char *vmm_cmd_name(Vmm__Request__CmdCase c);

#endif
