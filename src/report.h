/* Report writers: the LeakSanitizer-style text report and the JSON report ("schema": "pqleak/1").
 * Called on the exiting thread (or, later, the reporter thread); never from a signal handler. */
#ifndef PQL_REPORT_H
#define PQL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "suppress.h"

struct pql_report_result {
    long leaked;     /* unsuppressed leaked connections */
    long suppressed; /* suppressed leaked connections */
    int groups;      /* unsuppressed leak groups */
    bool json_written;
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

struct pql_buf;
struct pql_symbolizer;
/* Appends a stack's frames, one "    #N 0xPC in function file:line (module+offset)" line each. */
void pql_report_stack_text(struct pql_buf *b, struct pql_symbolizer *sym, uint32_t stack);

/* Appends to msg (NUL-terminated, at most len bytes) who holds the open connections, grouped by open
 * stack, largest group first: "; 28 held by handle_request (app.c:42) <- main (app.c:60), oldest
 * 41 s", ending with a newline as libpq's messages do. bucket != 0 limits it to the connections of one
 * per-target cap bucket. Symbolizes: for refusals only, never on the normal connect path. */
void pql_report_holders(char *msg, size_t len, uint32_t bucket);

#endif
