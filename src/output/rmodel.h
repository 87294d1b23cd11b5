/* The report model: what a report says, before any wording. A snapshot of the registry and counters,
 * leaked connections grouped by (open stack, kind, transaction stack) with each group's suppression
 * decision, and the holders of checkout slots for refusal messages. Text (text.h) and JSON (json.h)
 * only print it. Runs on the reporting thread (exit, reporter thread, a refused connect); never in
 * signal context. */
#ifndef PQL_RMODEL_H
#define PQL_RMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkout.h"
#include "config.h"
#include "misuse.h"
#include "registry.h"
#include "rules.h"
#include "symbolize.h"

/* Which stack a group's site (its headline) comes from. */
enum pql_site_from { PQL_SITE_NONE, PQL_SITE_STACK, PQL_SITE_TX_STACK, PQL_SITE_LAST_USED };

struct pql_group {
    uint32_t stack;
    const char *kind;    /* "unclosed", "teardown" or "held" */
    uint32_t tx_stack;   /* where the abandoned transaction began (teardown leaks) */
    uint32_t last_stack; /* where the connections were last checked out or used */
    /* The line to fix: the headline of the open stack, or of where the connections were last used when
     * the open stack has no frame of the program's own or other code of the program used them since. */
    enum pql_site_from site_from;
    const struct pql_frame *site; /* NULL with PQL_SITE_NONE; owned by the symbolizer */
    long count;
    size_t first;  /* index of the first connection in the snapshot */
    int rule;      /* index of the suppressing rule, -1 when not suppressed */
    double oldest; /* seconds open, the longest in the group */
    size_t run;    /* where its connections start in order[] */
};

struct pql_report {
    const char *trigger; /* "exit", "signal" or "suspect" */
    const struct pql_settings *settings;
    struct pql_conn *conns; /* this process's connections, in opening order */
    size_t nconns;
    struct pql_counters counters;
    struct pql_wait_counters waits;
    struct pql_group *groups; /* exit reports: largest first */
    size_t ngroups;
    size_t *order; /* connection indexes, grouped: each group's are consecutive, in opening order */
    struct pql_misuse_event *misuse; /* this process's misuse findings */
    size_t nmisuse;
    struct pql_rules *rules;
    struct pql_symbolizer *sym; /* NULL when there is nothing to symbolize */
    double now_wall, now_mono;
    int64_t now_coarse_ns;
    uint8_t forks; /* pql_forks now: the connections' last_use_fork is written when it is not 0 */
    char program[1024];
    /* Exit reports, set by pql_rmodel_group: */
    long leaked;     /* unsuppressed connections that count as leaks */
    long suppressed; /* suppressed by a rule */
    long held;       /* held until exit, not counted (PQLEAK_STRICT=0) */
    int leak_groups; /* groups that count */
};

/* Takes the snapshot a report is made of; an exit report's includes the connections the runtime
 * closed at exit (leaks of their own kinds). False when out of memory (nothing to free then). */
bool pql_rmodel_begin(struct pql_report *r, const char *trigger, const struct pql_settings *settings,
                      struct pql_rules *rules);
void pql_rmodel_end(struct pql_report *r);

/* Groups the leaked connections, applies the suppressions (counting rule hits) and sets the totals.
 * False when out of memory. */
bool pql_rmodel_group(struct pql_report *r);

/* True when the group counts as a leak: not suppressed, and not held unless PQLEAK_STRICT. */
bool pql_rmodel_counts(const struct pql_report *r, const struct pql_group *g);

/* A stack's frames, symbolized by sym (inlined functions expanded), innermost first; at most max stored
 * in out. Returns the count: 0 for no stack, no symbolizer or no memory. */
int pql_stack_frames(struct pql_symbolizer *sym, uint32_t stack, const struct pql_frame **out, int max);

/* The index of the headline frame (common/frames.h) among frames, own set when it is the program's own
 * code; -1 when there is none. */
int pql_frames_headline(const struct pql_frame *const *frames, int n, bool *own);

/* pql_stack_frames with the report's symbolizer. */
int pql_rmodel_frames(const struct pql_report *r, uint32_t stack, const struct pql_frame **out, int max);

/* Seconds since the connection's last activity (since it opened, when never used). */
double pql_rmodel_idle_s(const struct pql_report *r, const struct pql_conn *c);

/* Every stack the report refers to (the connections' open, transaction and last-use stacks, the
 * misuse findings' stacks), each once, in order of first appearance; *n set to the count. NULL when
 * out of memory (caller frees). */
uint32_t *pql_rmodel_stacks(const struct pql_report *r, size_t *n);

/* The connections grouped by open stack, for live reports: order[] holds connection indexes sorted
 * by (stack, opening order); runs[] the start of each stack's run in order[], runs ordered by their
 * first connection. Returns the number of runs; false/0 with *order NULL when out of memory. */
size_t pql_rmodel_runs(const struct pql_report *r, size_t **order, size_t **runs);

/* Who holds checkout slots, grouped by open stack, largest group first (at most PQL_HOLDER_GROUPS). */
#define PQL_HOLDER_GROUPS 5
struct pql_holders {
    struct {
        uint32_t stack;
        long count;
        double oldest; /* seconds */
    } g[PQL_HOLDER_GROUPS];
    size_t n;
    long rest;          /* connections held from other places */
    size_t rest_groups; /* how many other places */
};

/* The holders of every slot (bucket 0) or of one per-target bucket's. */
void pql_rmodel_holders(struct pql_holders *h, uint32_t bucket);

/* The headline frame of a stack (common/frames.h), own set when it is the program's own code; NULL
 * when the stack has none. */
const struct pql_frame *pql_rmodel_headline(const struct pql_report *r, uint32_t stack, bool *own);

const char *pql_site_from_name(enum pql_site_from f); /* "stack", "tx_stack", "last_used", NULL */

/* Names used by both writers. */
const char *pql_tx_name(int tx);           /* "idle", "active", "intrans", "inerror", "unknown" */
const char *pql_suspect_name(int suspect); /* "age", "idle_tx", NULL */
const char *pql_conn_tx_name(const struct pql_conn *c);

#endif
