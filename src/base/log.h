/* pqleak's text output: warnings, trace lines and text reports, to PQLEAK_LOG.
 * Callable from any thread, never from a signal handler (formatting may allocate). */
#ifndef PQL_LOG_H
#define PQL_LOG_H

#include <stddef.h>

/* Chooses the destination: "stderr" or a path in which %p becomes the pid. Opened lazily at the first
 * line, so a process that never writes creates no file; a forked child reopens a %p destination for its
 * own pid (the fork handler is registered at the first call). */
void pql_log_setup(const char *dest);

/* Writes one line "pqleak: <text>\n". */
void pql_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes raw text as is (used for whole reports). */
void pql_log_write(const char *text, size_t len);

#endif
