/* The one atomic file writer, for reports and the metrics file: the text goes to a temp file of its own
 * in the same directory (O_CREAT|O_EXCL|O_NOFOLLOW, never an existing file or link), then rename()
 * replaces the target, so a reader sees the old file or the new one whole. Any thread; not
 * signal-safe. */
#ifndef PQL_OUTFILE_H
#define PQL_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* Writes b to path with mode. The temp file is "DIR/.BASE.PID.SEQ.tmp", unique per call, so writers in
 * two threads never share one. False with errno set on failure (nothing left behind). */
bool pql_outfile_write(const char *path, mode_t mode, const struct pql_buf *b);
/* The same for len bytes at data. */
bool pql_outfile_write_bytes(const char *path, mode_t mode, const char *data, size_t len);

/* Writes a report into dir (created 0700 when missing, unless pql_outfile_never_create_dirs was called)
 * as pqleak-PID-TRIGGER-SEQ.json, mode 0600; its path is copied to path when non-NULL. A dir (or a
 * symbolic link naming it) owned by another user than this one or root is refused (EPERM). False with
 * errno set on failure. */
bool pql_outfile_report(const char *dir, const char *trigger, const struct pql_buf *b, char *path,
                        size_t pathlen);

/* For the exit path, once its own files are written: no write starts from now on (each fails with
 * ESHUTDOWN), writes of other threads in flight get up to max_s seconds to finish, and the temp files of
 * any still running are removed, so that ending the process leaves no temp file. Async-signal-safe
 * (atomics, nanosleep, unlink). */
void pql_outfile_close_all(double max_s);

/* From now on pql_outfile_report never creates a missing directory (under `pqleak run`, whose directory
 * exists for the run's length: a process outliving the run must not create it again). */
void pql_outfile_never_create_dirs(void);

#endif
