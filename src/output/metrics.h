/* The Prometheus text-format metrics file (PQLEAK_METRICS, docs/metrics.md): the values are gathered by
 * the caller, written here whole through the atomic writer. Reporter thread or the exiting thread;
 * not signal-safe. */
#ifndef PQL_METRICS_H
#define PQL_METRICS_H

#include <stdbool.h>

#include "checkout.h"
#include "registry.h"

struct pql_metrics {
    struct pql_counters conns;
    struct pql_wait_counters waits;
    int cap;             /* PQLEAK_MAX_CONNS, 0 when none */
    long suspects;       /* open connections reported as suspects */
    long suspects_total; /* connections ever reported as suspects */
    long leaked;         /* known at exit; 0 before */
};

/* Writes the metrics of this process (labels: program, pid) to path, mode 0644. False with errno set
 * on failure. */
bool pql_metrics_write(const char *path, const char *program, const struct pql_metrics *m);

#endif
