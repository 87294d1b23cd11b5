/* The Prometheus text-format metrics file (PQLEAK_METRICS, docs/metrics.md): the values are gathered by
 * the caller (pql_metrics_count over the registry, the counters), written here whole through the atomic
 * writer to the path with %p expanded, and removed at exit. Reporter thread or the exiting thread;
 * not signal-safe. */
#ifndef PQL_METRICS_H
#define PQL_METRICS_H

#include <stdbool.h>

#include "checkout.h"
#include "live.h"
#include "registry.h"

/* Connected connections by what they are doing, named as pg_stat_activity's "state" column. */
enum pql_metric_state { PQL_MS_IDLE, PQL_MS_ACTIVE, PQL_MS_IDLE_IN_TX, PQL_MS_IDLE_IN_TX_ABORTED, PQL_MS_N };

struct pql_metrics {
    struct pql_counters conns;
    struct pql_wait_counters waits;
    int cap;                 /* PQLEAK_MAX_CONNS, 0 when none */
    long in_state[PQL_MS_N]; /* connected connections by state */
    long suspects;           /* open connections reported as suspects */
    long suspects_total;     /* connections ever reported as suspects */
};

/* For pql_registry_each: counts rec (a record with its live fields) into the struct pql_metrics at m. */
void pql_metrics_count(const struct pql_conn *rec, struct pql_live *live, void *m);

/* Writes the metrics of this process (labels: service, program, pid) to path with %p replaced by the
 * pid, mode 0644. service: the label's value, or "" for the default (the program's base name; for an
 * interpreter, the script's or module's). False with errno set on failure. */
bool pql_metrics_write(const char *path, const char *service, const char *program,
                       const struct pql_metrics *m);

/* Removes the file this process last wrote, if it did write one, and writes none after: at exit, so that
 * a collector does not serve a dead process's numbers. A forked child that never wrote leaves its
 * parent's file alone. */
void pql_metrics_remove(void);

#endif
