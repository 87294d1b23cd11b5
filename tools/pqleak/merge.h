/* The merged view of many reports: processes, and leak groups keyed by symbolized stack and kind, so
 * the same leak site in processes with different address layouts becomes one group. Filled by
 * reportio.c, marked by suppress.c, read by the printers. Command-line process only. */
#ifndef CLI_MERGE_H
#define CLI_MERGE_H

#include "frame.h"
#include "util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A table that cannot grow ends the command like any other allocation failure. */
#define uthash_fatal(msg) cli_oom()
#include <uthash.h>

struct cli_proc {
    char *key;     /* "pid program": the hash key */
    char *program; /* NULL when unknown */
    long pid;      /* -1 when unknown */
    double time;   /* its exit report's "time", seconds since the epoch; for fork hand-offs */
    bool has_time;
    bool untracked; /* its report followed no commands ("track_queries": false): no last use known */
    UT_hash_handle hh;
};

/* One leaked connection, as its report described it. */
struct cli_conn {
    json_t *obj; /* the report's object minus "id", "stack", "tx_stack" (renumbered on output) */
    struct cli_stack stack, tx, last; /* last: where it was last checked out or used */
    bool has_stack, has_tx, has_last;
    const struct cli_proc *proc;
};

struct cli_group {
    char *key; /* stack key + kind */
    char *kind;
    struct cli_stack stack; /* from the first occurrence */
    struct cli_stack tx;
    bool has_tx;
    long count; /* saturates at LONG_MAX */
    /* The headline the shim chose ("site", "site_from" of the report), else none: the headline of the
     * open stack (cli_group_site). site_from: "stack", "tx_stack" or "last_used". */
    struct cli_frame site;
    bool has_site;
    char *site_from;
    struct cli_vec procs;   /* const struct cli_proc *, distinct, in order of appearance */
    struct cli_vec targets; /* char *, owned: "host:port dbname user", distinct */
    struct cli_vec conns;   /* struct cli_conn *, owned */
    /* A group stays suppressed by the shim only when every occurrence was: one process that ran
     * without the rule must not hide the others. */
    size_t occurrences, shim_suppressed;
    bool suppressed;
    char *rule; /* "leak:PATTERN" that suppressed it, owned */
    bool by_shim;
    UT_hash_handle hh;
};

/* The utilization of one process (or of one already-merged report). */
struct cli_util {
    char *who;  /* "pid program" or the merged report's path */
    int rank;   /* exit reports beat live ones: their counters are final */
    char *time; /* ISO 8601, compares as text */
    json_t *util;
    UT_hash_handle hh;
};

/* A connection used by a process or thread that did not open it (the report's "misuse" list). */
struct cli_misuse {
    char *kind;         /* "fork" or "threads" */
    long connection;    /* its id in the opening process; -1 when unknown */
    long server_pid;    /* -1 when unknown */
    long pid;           /* the process that misused it */
    long opened_by;     /* the process that opened it */
    char *time;         /* ISO 8601, when it was misused; NULL when unknown */
    bool closed;        /* fork: the child closed it rather than queried it */
    long last_use_fork; /* close note: the opener's fork count at its last use; -1 when unknown */
    long opener_fork;   /* fork: which of the opener's forks made the child; -1 when unknown */
    long mono_ns;       /* fork: time as CLOCK_MONOTONIC ns (a close note: the opener's last use); -1 */
    struct cli_stack stack, open_stack;
    struct cli_frame site; /* the report's "site", else the headline of stack */
    bool has_site;
    const struct cli_proc *proc; /* the report it came from */
    bool handed_off;             /* a fork hand-off (findings.c): not a finding */
};

struct cli_set {
    struct cli_proc *proc_map; /* owns the processes */
    struct cli_vec procs;      /* the same, in order of appearance */
    struct cli_group *group_map;
    struct cli_vec groups; /* the same, in order of first appearance */
    struct cli_util *util_map;
    json_t *settings; /* the reports' settings when all agree, else JSON null */
    size_t reports;
    struct cli_vec misuse;   /* struct cli_misuse *, owned */
    struct cli_vec handoffs; /* char *, owned: one summary line per fork hand-off */
    bool finished;           /* cli_set_finish ran */
    bool full_stacks;        /* print every frame (--full-stacks) */
};

/* Frees everything the set holds (not the set itself). */
void cli_set_free(struct cli_set *s);

/* The process (program, pid), added when new. Never NULL. */
const struct cli_proc *cli_set_proc(struct cli_set *s, const char *program, long pid);

/* Adds count leaked connections opened at stack (tx: where their transaction began, or NULL).
 * procs: the processes they leaked in. conns: ownership moves to the set. */
void cli_set_add_leak(struct cli_set *s, const struct cli_stack *stack, const struct cli_stack *tx,
                      const char *kind, long count, bool suppressed, const char *rule,
                      const struct cli_proc *const *procs, size_t nprocs, struct cli_conn **conns,
                      size_t nconns);

/* Records the utilization object of one report; of several for the same who, the exit report (rank 1)
 * or else the latest wins. */
void cli_set_add_util(struct cli_set *s, const char *who, int rank, const char *time, const json_t *util);
void cli_set_add_settings(struct cli_set *s, const json_t *settings);

/* The merged utilization object (new reference): see merge.c for how counters combine. */
json_t *cli_set_utilization(const struct cli_set *s);

/* True when the group fails a gate: not suppressed, not "held" unless strict, and at least one
 * connection (a group of count 0, or whose connections were all handed to a child, holds none). */
bool cli_group_counts(const struct cli_group *g, bool strict);

/* The group of this open stack and kind, or NULL. */
struct cli_group *cli_set_find_group(const struct cli_set *s, const struct cli_stack *stack,
                                     const char *kind);

/* The misuse findings that count (fail the gate, are printed): those that were no fork hand-off. */
size_t cli_set_misuse_count(const struct cli_set *s);

/* True when the merged set fails the gate: a group counts, or a misuse that was no fork hand-off. */
bool cli_set_fails(const struct cli_set *s, bool strict);

/* a + b for counts, saturating at LONG_MAX (and at 0 below). */
long cli_count_add(long a, long b);

void cli_conn_free(struct cli_conn *c);

/* "host:port dbname user" of a report's connection object, "?" for what is unknown; NULL when it has
 * no target. Caller frees. */
char *cli_conn_target(const json_t *conn);

#endif
