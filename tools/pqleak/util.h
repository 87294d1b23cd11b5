/* Small helpers shared by the pqleak command: exit statuses and their Nagios words, allocation that
 * never returns NULL, error lines, growable pointer arrays and the current time. Command-line
 * process only; not for signal handlers. */
#ifndef CLI_UTIL_H
#define CLI_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit statuses of the command (docs/exit-codes.md). */
#define CLI_EXIT_OK       0
#define CLI_EXIT_USAGE    2 /* usage errors, unreadable reports, unwritable outputs, missing shim */
#define CLI_EXIT_LEAKS    23
#define CLI_EXIT_NOEXEC   126
#define CLI_EXIT_NOTFOUND 127

/* Exit statuses of `pqleak status`, after the Nagios plugin convention; its usage errors are UNKNOWN
 * too (a usage error is not a CRITICAL service). */
#define CLI_STATUS_OK       0 /* utilization below PQLEAK_WARN_PCT, or no cap, and no suspect */
#define CLI_STATUS_WARNING  1 /* at or above PQLEAK_WARN_PCT, or a suspect connection */
#define CLI_STATUS_CRITICAL 2 /* at or above PQLEAK_CRIT_PCT */
#define CLI_STATUS_UNKNOWN  3 /* no report could be had; a usage error */

/* The Nagios word of a CLI_STATUS_* value ("OK" ... "UNKNOWN"); "UNKNOWN" for any other value. */
const char *cli_status_word(int status);

/* Prints "out of memory" and exits with status 2. */
void cli_oom(void) __attribute__((noreturn));

/* Allocation failure in a short-lived command is not worth recovering from: these print one line and
 * exit with status 2, so callers never see NULL. */
void *cli_xmalloc(size_t n);
void *cli_xcalloc(size_t n, size_t size);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);
/* Like asprintf, but never fails. */
char *cli_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* s as it may appear on a line of output (common/escape.h: control bytes, C1 controls and invalid
 * UTF-8 as \xNN), so that a report's strings cannot forge lines ("PQLEAK OK - ...", a rule in a
 * baseline) or send escape sequences to a terminal. NULL stays NULL. The result is owned here and stays
 * valid for the next CLI_SAFE_KEEP calls: enough for the arguments of one printf. */
#define CLI_SAFE_KEEP 16
const char *cli_safe(const char *s);

/* Prints "pqleak: <message>\n" to stderr as one write, so lines from concurrent processes never mix. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable array of owned or borrowed pointers; the owner decides what to free. */
struct cli_vec {
    void **v;
    size_t n, cap;
};
void cli_vec_push(struct cli_vec *a, void *p);
/* Frees the array itself, not the elements. */
void cli_vec_free(struct cli_vec *a);

/* The current UTC time as ISO 8601 with milliseconds ("2026-01-02T03:04:05.678Z") into buf. */
void cli_now_iso(char *buf, size_t len);

/* Parses a whole decimal integer in [min, max]; false when malformed or out of range. */
bool cli_parse_long(const char *s, long min, long max, long *out);
/* Parses a whole non-negative decimal number of seconds (digits, optional fraction) up to max. */
bool cli_parse_seconds(const char *s, double max, double *out);

#endif
