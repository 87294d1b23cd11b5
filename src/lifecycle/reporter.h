/* Live diagnosis: the PQLEAK_SIGNAL handler (it only posts a semaphore) and the reporter thread, which
 * waits on it, takes `pqleak status`'s requests queued to it, advertises itself for `pqleak status`,
 * writes live reports, checks for suspects and rewrites the metrics file. Started at the first
 * connection of a process, never before. */
#ifndef PQL_REPORTER_H
#define PQL_REPORTER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Starts the reporter thread (and installs the signal handler) when the settings ask for any of it
 * and it is not running in this process yet. Cheap when already started. Application threads. */
void pql_reporter_ensure(const struct pql_settings *s);

/* At exit: removes the metrics file this process wrote, and the reporter's advertisement. */
void pql_reporter_exit(void);

/* The directory for live JSON reports: PQLEAK_REPORT_DIR, or a private per-user directory
 * (${TMPDIR:-/tmp}/pqleak-UID, created 0700, refused when not ours). False when none is usable. */
bool pql_reporter_live_dir(const struct pql_settings *s, char *dir, size_t len);

#endif
