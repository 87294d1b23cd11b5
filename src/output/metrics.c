/* Prometheus text format (metrics.h): HELP, TYPE and one sample per metric, label values escaped. */
#define _GNU_SOURCE
#include "metrics.h"

#include "buf.h"
#include "outfile.h"
#include "proc.h"

static void metric(struct pql_buf *b, const char *program, const char *name, const char *type,
                   const char *help, double v)
{
    pql_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s{program=\"", name, help, name, type, name);
    for (const char *p = program; *p; p++) {
        if (*p == '\\' || *p == '"')
            pql_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            pql_buf_puts(b, "\\n");
        else
            pql_buf_append(b, p, 1);
    }
    pql_buf_printf(b, "\",pid=\"%d\"} %.17g\n", (int)pql_pid(), v);
}

bool pql_metrics_write(const char *path, const char *program, const struct pql_metrics *m)
{
    const struct pql_counters *c = &m->conns;
    const struct pql_wait_counters *w = &m->waits;
    struct pql_buf b;
    pql_buf_init(&b);
    metric(&b, program, "pqleak_connections_open", "gauge", "Connections open now (connected or connecting).",
           (double)c->open);
    metric(&b, program, "pqleak_connections_peak", "gauge", "Most connections open at once.",
           (double)c->peak_open);
    metric(&b, program, "pqleak_connections_cap", "gauge", "PQLEAK_MAX_CONNS, 0 when no cap.", m->cap);
    metric(&b, program, "pqleak_connections_opened_total", "counter", "Connections opened.",
           (double)c->opened_total);
    metric(&b, program, "pqleak_connections_closed_total", "counter", "Connections closed with PQfinish.",
           (double)c->closed_total);
    metric(&b, program, "pqleak_connections_failed_total", "counter", "Connection attempts that failed.",
           (double)c->failed_total);
    metric(&b, program, "pqleak_checkout_waits_total", "counter", "Connects that waited at the cap.",
           (double)w->waits_total);
    metric(&b, program, "pqleak_checkout_wait_seconds_total", "counter", "Seconds spent waiting at the cap.",
           w->wait_s_total);
    metric(&b, program, "pqleak_checkout_timeouts_total", "counter", "Waits that timed out.",
           (double)w->timeouts_total);
    metric(&b, program, "pqleak_checkout_refused_total", "counter", "Connects refused at the cap.",
           (double)w->refused_total);
    metric(&b, program, "pqleak_suspects", "gauge", "Open connections reported as suspects.",
           (double)m->suspects);
    metric(&b, program, "pqleak_suspects_total", "counter", "Connections reported as suspects.",
           (double)m->suspects_total);
    metric(&b, program, "pqleak_leaked_connections", "gauge", "Connections leaked (known at exit; 0 before).",
           (double)m->leaked);
    bool ok = pql_outfile_write(path, 0644, &b);
    pql_buf_free(&b);
    return ok;
}
