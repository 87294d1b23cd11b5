/* pqleak's text output: warnings, trace lines and text reports, to PQLEAK_LOG.
 * Callable from any thread, never from a signal handler (formatting may allocate). */
#ifndef PQL_LOG_H
#define PQL_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Chooses the destination: "stderr" or a path in which %p becomes the pid. Opened lazily at the first
 * line, so a process that never writes creates no file; a forked child reopens a %p destination for its
 * own pid (the fork handler is registered at the first call). */
void pql_log_setup(const char *dest);

/* Writes one line "pqleak: <text>\n". */
void pql_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes a whole text (a report, a warning) as it is, but for control bytes other than the newline,
 * escaped as \xNN (common/escape.h), in one write(2). */
void pql_log_write(const char *text, size_t len);

/* Writes all of buf to fd, retrying on EINTR, with SIGXFSZ blocked on the calling thread: a write
 * beyond the host's file-size limit (ulimit -f) fails with EFBIG instead of killing the host; a SIGXFSZ
 * it raised is taken back, one that was pending before is left alone. Returns true when all was
 * written, else false with errno set (EAGAIN on a full non-blocking pipe). Any thread; not for signal
 * handlers. */
bool pql_write_full(int fd, const void *buf, size_t len);

/* Writes raw text with one write(2) to the log, taking no lock and allocating nothing: for the exit path
 * in a signal handler. Uses the log's descriptor if it is open, else opens the destination without
 * blocking (%p expanded), else stderr. Async-signal-safe. */
void pql_log_write_signal_safe(const char *text, size_t len);

#endif
