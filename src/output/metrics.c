/* Prometheus text format (metrics.h): HELP, TYPE and the samples of each metric family, label values
 * escaped; no two families share a name once a counter's "_total" or a histogram's "_bucket", "_sum"
 * and "_count" are taken off (OpenMetrics parsers refuse that). The service label's default is read
 * from /proc/self once. */
#define _GNU_SOURCE
#include "metrics.h"

#include "buf.h"
#include "names.h"
#include "outfile.h"
#include "path.h"
#include "script.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- the service label ---- */

static char default_service[256];
static pthread_once_t service_once = PTHREAD_ONCE_INIT;

static void find_default_service(void)
{
    char exe[1024];
    pql_self_exe(exe, sizeof(exe));
    const char *name = pql_base_name(exe);
    char cmdline[4096];
    char *args[64];
    int nargs = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
        close(fd);
        cmdline[n > 0 ? n : 0] = '\0';
        for (ssize_t o = 0; o < n && nargs < (int)(sizeof(args) / sizeof(args[0]));
             o += (ssize_t)strlen(cmdline + o) + 1)
            args[nargs++] = cmdline + o;
    }
    const char *script = nargs > 1 ? pql_script_arg(name, args + 1, nargs - 1) : NULL;
    if (script && *pql_base_name(script))
        name = pql_base_name(script);
    snprintf(default_service, sizeof(default_service), "%.255s", *name ? name : "unknown");
}

/* ---- the text ---- */

/* The labels every sample carries, escaped once per write: service="...",program="...",pid="N". */
struct labels {
    const char *common;
};

static void label_value(struct pql_buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            pql_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            pql_buf_puts(b, "\\n");
        else
            pql_buf_append(b, p, 1);
    }
}

static void family(struct pql_buf *b, const char *name, const char *type, const char *help)
{
    pql_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void common_labels(struct pql_buf *b, const char *service, const char *program)
{
    pql_buf_puts(b, "service=\"");
    label_value(b, service);
    pql_buf_puts(b, "\",program=\"");
    label_value(b, program);
    pql_buf_printf(b, "\",pid=\"%d\"", (int)pql_pid());
}

/* One sample: NAME{service="...",program="...",pid="...",EXTRA} VALUE; extra is "" or 'key="value"'. */
static void sample(struct pql_buf *b, const struct labels *l, const char *name, const char *extra, double v)
{
    pql_buf_printf(b, "%s{%s%s%s} %.17g\n", name, l->common, *extra ? "," : "", extra, v);
}

static void metric(struct pql_buf *b, const struct labels *l, const char *name, const char *type,
                   const char *help, double v)
{
    family(b, name, type, help);
    sample(b, l, name, "", v);
}

static const char *const state_names[PQL_MS_N] = {"idle", "active", "idle in transaction",
                                                  "idle in transaction (aborted)"};

static void states(struct pql_buf *b, const struct labels *l, const struct pql_metrics *m)
{
    family(b, "pqleak_connections_in_state", "gauge",
           "Connected connections by state, named as pg_stat_activity.state.");
    for (int i = 0; i < PQL_MS_N; i++) {
        char extra[64];
        snprintf(extra, sizeof(extra), "state=\"%s\"", state_names[i]);
        sample(b, l, "pqleak_connections_in_state", extra, (double)m->in_state[i]);
    }
}

static void wait_histogram(struct pql_buf *b, const struct labels *l, const struct pql_wait_counters *w)
{
    const char *name = "pqleak_checkout_wait_duration_seconds";
    family(b, name, "histogram", "Seconds each ended wait at the cap lasted.");
    long cumulative = 0;
    char bucket[128], extra[64];
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    for (int i = 0; i <= PQL_WAIT_BUCKETS; i++) {
        cumulative += w->waited[i];
        if (i < PQL_WAIT_BUCKETS)
            snprintf(extra, sizeof(extra), "le=\"%g\"", pql_wait_bounds[i]);
        else
            snprintf(extra, sizeof(extra), "le=\"+Inf\"");
        sample(b, l, bucket, extra, (double)cumulative);
    }
    char sum[128], count[128];
    snprintf(sum, sizeof(sum), "%s_sum", name);
    snprintf(count, sizeof(count), "%s_count", name);
    sample(b, l, sum, "", w->wait_s_total);
    sample(b, l, count, "", (double)cumulative);
}

void pql_metrics_count(const struct pql_conn *rec, struct pql_live *live, void *arg)
{
    (void)live; /* rec carries the live fields */
    struct pql_metrics *m = arg;
    m->suspects += rec->suspect != 0;
    if (rec->state != PQL_OK)
        return;
    if (rec->active)
        m->in_state[PQL_MS_ACTIVE]++;
    else if (rec->tx_status == PQTRANS_IDLE)
        m->in_state[PQL_MS_IDLE]++;
    else if (rec->tx_status == PQTRANS_INTRANS)
        m->in_state[PQL_MS_IDLE_IN_TX]++;
    else if (rec->tx_status == PQTRANS_INERROR)
        m->in_state[PQL_MS_IDLE_IN_TX_ABORTED]++;
}

/* The file this process wrote (%p expanded), if it wrote one: only that file is removed at exit. The
 * reporter thread writes and the exit path removes: one lock orders them, and once removed the file is
 * never written again (a write finishing after the removal would serve a dead process's numbers). */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static bool wrote, removed;
static char wrote_path[PQL_PATH_MAX + 256];

/* A fork while the reporter thread wrote would leave the child's copy of the lock held for good; and the
 * file written so far is the parent's. */
static void fork_child(void)
{
    pthread_mutex_init(&file_lock, NULL);
    wrote = false;
}

static bool write_file(const char *file, struct pql_buf *b)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
    pthread_mutex_lock(&file_lock);
    bool ok = removed || pql_outfile_write(file, 0644, b);
    if (ok && !removed) {
        memcpy(wrote_path, file, sizeof(wrote_path));
        wrote = true;
    }
    pthread_mutex_unlock(&file_lock);
    return ok;
}

bool pql_metrics_write(const char *path, const char *service, const char *program,
                       const struct pql_metrics *m)
{
    /* A forked child of a process that tracks connections, given the same file (no %p), leaves that
     * file to its parent: it would overwrite the parent's numbers with its own and remove the file at
     * its exit while the parent lives on. */
    if (atomic_load_explicit(&pql_fork_gen, memory_order_relaxed) > 0 && !strstr(path, "%p"))
        return true;
    char file[sizeof(wrote_path)];
    if (pql_expand_pid(file, sizeof(file), path, (int)pql_pid()) < 0) {
        errno = ENAMETOOLONG;
        return false;
    }
    pthread_once(&service_once, find_default_service);
    struct pql_buf common;
    pql_buf_init(&common);
    common_labels(&common, *service ? service : default_service, program);
    if (common.failed || !common.data) {
        pql_buf_free(&common);
        errno = ENOMEM;
        return false;
    }
    const struct labels l = {common.data};
    const struct pql_counters *c = &m->conns;
    const struct pql_wait_counters *w = &m->waits;
    struct pql_buf b;
    pql_buf_init(&b);
    metric(&b, &l, "pqleak_connections_open", "gauge", "Connections open now (connected or connecting).",
           (double)c->open);
    metric(&b, &l, "pqleak_connections_peak", "gauge", "Most connections open at once.",
           (double)c->peak_open);
    metric(&b, &l, "pqleak_connections_cap", "gauge", "PQLEAK_MAX_CONNS, 0 when no cap.", m->cap);
    states(&b, &l, m);
    metric(&b, &l, "pqleak_connections_opened_total", "counter", "Connections opened.",
           (double)c->opened_total);
    metric(&b, &l, "pqleak_connections_closed_total", "counter", "Connections closed with PQfinish.",
           (double)c->closed_total);
    metric(&b, &l, "pqleak_connections_failed_total", "counter", "Connection attempts that failed.",
           (double)c->failed_total);
    metric(&b, &l, "pqleak_checkout_waiting", "gauge", "Threads waiting at the cap now.", (double)w->waiting);
    metric(&b, &l, "pqleak_checkout_waits_total", "counter", "Connects that waited at the cap.",
           (double)w->waits_total);
    metric(&b, &l, "pqleak_checkout_wait_seconds_total", "counter", "Seconds spent waiting at the cap.",
           w->wait_s_total);
    wait_histogram(&b, &l, w);
    metric(&b, &l, "pqleak_checkout_timeouts_total", "counter", "Waits that timed out.",
           (double)w->timeouts_total);
    metric(&b, &l, "pqleak_checkout_refused_total", "counter", "Connects refused at the cap.",
           (double)w->refused_total);
    metric(&b, &l, "pqleak_suspects_open", "gauge", "Open connections reported as suspects.",
           (double)m->suspects);
    metric(&b, &l, "pqleak_suspects_total", "counter", "Connections reported as suspects.",
           (double)m->suspects_total);
    bool ok = write_file(file, &b);
    pql_buf_free(&b);
    pql_buf_free(&common);
    return ok;
}

void pql_metrics_remove(void)
{
    pthread_mutex_lock(&file_lock);
    removed = true;
    if (wrote)
        unlink(wrote_path);
    wrote = false;
    pthread_mutex_unlock(&file_lock);
}
