/* Errors that carry context up the stack.
 *
 * A failing function fills a caller-provided struct err and returns -1 (or
 * NULL); each caller on the way up may prepend its own context, so the final
 * message reads like "migrate: round 3: send: Connection reset by peer".
 * Only CLI parsing may print and exit. */
#ifndef LIB_ERR_H
#define LIB_ERR_H

#include <stdarg.h>

struct err {
	char msg[512];
};

/* Set the message (replaces any previous one). Always returns -1. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like err_set, with ": strerror(errnum)" appended. Always returns -1. */
int err_errno(struct err *e, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepend "context: " to the current message. Always returns -1. */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clear. */
void err_clear(struct err *e);

#endif
