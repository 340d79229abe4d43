#include "proto/api.h"

const char *vmm_state_name(Vmm__VmState s)
{
	switch (s) {
	case VMM__VM_STATE__VM_STATE_UNKNOWN:		return "unknown";
	case VMM__VM_STATE__VM_STATE_CREATED:		return "created";
	case VMM__VM_STATE__VM_STATE_RUNNING:		return "running";
	case VMM__VM_STATE__VM_STATE_PAUSED:		return "paused";
	case VMM__VM_STATE__VM_STATE_MIGRATING:		return "migrating";
	case VMM__VM_STATE__VM_STATE_PAUSED_AMBIGUOUS:	return "paused_ambiguous";
	case VMM__VM_STATE__VM_STATE_MIGRATED:		return "migrated";
	case VMM__VM_STATE__VM_STATE_INCOMING:		return "incoming";
	case VMM__VM_STATE__VM_STATE_SHUTDOWN:		return "shutdown";
	case VMM__VM_STATE__VM_STATE_CRASHED:		return "crashed";
	default:					return "unknown";
	}
}

const char *vmm_phase_name(Vmm__MigrationPhase p)
{
	switch (p) {
	case VMM__MIGRATION_PHASE__MIGRATION_PHASE_NONE:	return "none";
	case VMM__MIGRATION_PHASE__MIGRATION_PHASE_SETUP:	return "setup";
	case VMM__MIGRATION_PHASE__MIGRATION_PHASE_PRECOPY:	return "precopy";
	case VMM__MIGRATION_PHASE__MIGRATION_PHASE_STOP_COPY:	return "stop_copy";
	case VMM__MIGRATION_PHASE__MIGRATION_PHASE_COMPLETING:	return "completing";
	case VMM__MIGRATION_PHASE__MIGRATION_PHASE_DONE:	return "done";
	default:						return "unknown";
	}
}

const char *vmm_outcome_name(Vmm__MigrationOutcome o)
{
	switch (o) {
	case VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_NONE:		return "none";
	case VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_SUCCEEDED:	return "succeeded";
	case VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_FAILED:		return "failed";
	case VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_CANCELLED:	return "cancelled";
	case VMM__MIGRATION_OUTCOME__MIGRATION_OUTCOME_AMBIGUOUS:	return "ambiguous";
	default:							return "unknown";
	}
}

const char *vmm_error_code_name(Vmm__ErrorCode c)
{
	switch (c) {
	case VMM__ERROR_CODE__ERROR_NONE:		return "none";
	case VMM__ERROR_CODE__ERROR_FAILED:		return "failed";
	case VMM__ERROR_CODE__ERROR_UNSUPPORTED:	return "unsupported";
	case VMM__ERROR_CODE__ERROR_BAD_VERSION:	return "bad_version";
	case VMM__ERROR_CODE__ERROR_MALFORMED:		return "malformed";
	case VMM__ERROR_CODE__ERROR_INVALID_ARGUMENT:	return "invalid_argument";
	default:					return "unknown";
	}
}

const char *vmm_cmd_name(Vmm__Request__CmdCase c)
{
	switch (c) {
	case VMM__REQUEST__CMD__NOT_SET:	return "none";
	case VMM__REQUEST__CMD_STATUS:		return "status";
	case VMM__REQUEST__CMD_PAUSE:		return "pause";
	case VMM__REQUEST__CMD_RESUME:		return "resume";
	case VMM__REQUEST__CMD_QUIT:		return "quit";
	case VMM__REQUEST__CMD_SNAPSHOT:	return "snapshot";
	case VMM__REQUEST__CMD_MIGRATE:		return "migrate";
	case VMM__REQUEST__CMD_MIGRATE_STATUS:	return "migrate-status";
	case VMM__REQUEST__CMD_MIGRATE_CANCEL:	return "migrate-cancel";
	case VMM__REQUEST__CMD_VERSION:		return "version";
	default:				return "unknown";
	}
}
