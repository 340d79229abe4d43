/* Test-only fault injection: see fault.h. */
#include "migrate/fault.h"

#include <string.h>

static enum mig_fault mig_fault__armed;

int mig_fault_set(const char *spec, struct err *e)
{
	if (!strcmp(spec, "none"))
		mig_fault__armed = MIG_FAULT_NONE;
	else if (!strcmp(spec, "stall-switchover"))
		mig_fault__armed = MIG_FAULT_STALL_SWITCHOVER;
	else if (!strcmp(spec, "lose-go"))
		mig_fault__armed = MIG_FAULT_LOSE_GO;
	else
		return err_set(e, "unknown fault '%s' (stall-switchover, lose-go, none)", spec);
	return 0;
}

enum mig_fault mig_fault_get(void)
{
	return mig_fault__armed;
}
