/* Reports as a whole: the exit report of a process and live reports (signal, suspect), each built from
 * the report model and written as text to the log and JSON to a directory. Called on the exiting
 * thread or the reporter thread; never from a signal handler. */
#ifndef PQL_REPORT_H
#define PQL_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "rules.h"

struct pql_report_result {
    long leaked;    /* unsuppressed leaked connections */
    int json_errno; /* nonzero: a JSON report was due in PQLEAK_REPORT_DIR and could not be written */
};

/* Writes the exit report of this process: every connection it opened and never passed to PQfinish is
 * a leak. Text goes to the log when there are unsuppressed leaks (and settings->text_report, or when
 * the JSON could not be written); JSON goes to settings->report_dir when set. rules may be NULL; their
 * hit counts are updated. */
struct pql_report_result pql_report_exit(const struct pql_settings *settings, struct pql_rules *rules);

/* Writes a live report of every open connection (trigger "signal" or "suspect"): text to the log when
 * text is true, JSON into dir when dir is non-NULL, its path copied to path. Returns true when the JSON
 * was written. */
bool pql_report_live(const struct pql_settings *settings, const char *trigger, const char *dir, bool text,
                     char *path, size_t pathlen);

#endif
