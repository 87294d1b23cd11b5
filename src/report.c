/* Builds a report from a registry snapshot: groups leaked connections by open stack and kind,
 * symbolizes each stack once, applies suppressions, then writes text to the log and JSON to the
 * report directory (temp file + rename, O_EXCL|O_NOFOLLOW, mode 0600). Runs on the reporting thread. */
#define _GNU_SOURCE
#include "report.h"

#include "buf.h"
#include "checkout.h"
#include "log.h"
#include "live.h"
#include "pyframes.h"
#include "registry.h"
#include "stack.h"
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct group {
    uint32_t stack;
    const char *kind;
    uint32_t tx_stack; /* where the abandoned transaction began (teardown leaks) */
    long count;
    size_t first;  /* index of the first connection in the snapshot */
    int rule;      /* -1 when not suppressed */
    double oldest; /* seconds open, the longest in the group */
    size_t run;    /* where its connections start in report.order (exit reports) */
};

struct report {
    const char *trigger;
    const struct pql_settings *settings;
    struct pql_conn *conns;
    size_t nconns;
    struct pql_counters counters;
    struct group *groups;
    size_t ngroups;
    size_t *order; /* connection indexes, grouped: each group's are consecutive, in opening order */
    struct pql_rules *rules;
    struct pql_symbolizer *sym;
    double now_wall, now_mono;
    int64_t now_coarse_ns;
    char program[1024];
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *leak_kind(const struct pql_conn *c)
{
    return c->leak_kind == PQL_LEAK_TEARDOWN ? "teardown" : c->leak_kind == PQL_LEAK_HELD ? "held" : "unclosed";
}

/* Held connections (closed idle by a runtime at exit) count only in strict mode. */
static bool counts(const struct report *r, const struct group *g)
{
    return g->rule < 0 && (strcmp(g->kind, "held") != 0 || r->settings->strict);
}

static bool in_group(const struct group *g, const struct pql_conn *c)
{
    return g->stack == c->stack && g->kind == leak_kind(c) && g->tx_stack == c->tx_stack;
}

static int group_order(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Symbolizes a stack into frames (NULL entries where memory ran out); returns the count. */
static int frames_of(struct report *r, uint32_t stack, const struct pql_frame **out, int max)
{
    int n = 0;
    const uintptr_t *pcs = stack ? pql_stack_get(stack, &n) : NULL;
    if (!pcs || !r->sym)
        return 0;
    if (n > max)
        n = max;
    for (int i = 0; i < n; i++)
        out[i] = pql_sym_frame(r->sym, pcs[i]);
    return n;
}

/* Orders connection indexes by group (open stack, kind, transaction stack), then by opening order: a
 * sort instead of a scan of every group for every connection, which took seconds with 100,000
 * connections from as many stacks. */
static int kind_rank(const struct pql_conn *c)
{
    return (int)c->leak_kind;
}

static int by_group(const void *a, const void *b, void *conns)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const struct pql_conn *x = (const struct pql_conn *)conns + i, *y = (const struct pql_conn *)conns + j;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    if (kind_rank(x) != kind_rank(y))
        return kind_rank(x) < kind_rank(y) ? -1 : 1;
    if (x->tx_stack != y->tx_stack)
        return x->tx_stack < y->tx_stack ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int by_stack(const void *a, const void *b, void *conns)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint32_t x = ((const struct pql_conn *)conns)[i].stack, y = ((const struct pql_conn *)conns)[j].stack;
    if (x != y)
        return x < y ? -1 : 1;
    return i < j ? -1 : i > j;
}

static bool build_groups(struct report *r)
{
    r->groups = calloc(r->nconns ? r->nconns : 1, sizeof(*r->groups));
    r->order = malloc((r->nconns ? r->nconns : 1) * sizeof(*r->order));
    if (!r->groups || !r->order)
        return false;
    for (size_t i = 0; i < r->nconns; i++)
        r->order[i] = i;
    qsort_r(r->order, r->nconns, sizeof(*r->order), by_group, r->conns);
    for (size_t k = 0; k < r->nconns; k++) {
        size_t i = r->order[k];
        const struct pql_conn *c = &r->conns[i];
        double age = r->now_mono - c->opened_mono;
        if (!r->ngroups || !in_group(&r->groups[r->ngroups - 1], c))
            r->groups[r->ngroups++] = (struct group){.stack = c->stack, .kind = leak_kind(c), .tx_stack = c->tx_stack,
                                                     .first = i, .rule = -1, .run = k};
        struct group *g = &r->groups[r->ngroups - 1];
        g->count++;
        if (age > g->oldest)
            g->oldest = age;
    }
    qsort(r->groups, r->ngroups, sizeof(*r->groups), group_order);
    if (r->rules && r->rules->n) {
        const struct pql_frame *frames[PQL_MAX_FRAMES];
        for (size_t g = 0; g < r->ngroups; g++) {
            int n = frames_of(r, r->groups[g].stack, frames, PQL_MAX_FRAMES);
            r->groups[g].rule = pql_rules_match(r->rules, frames, n);
            if (r->groups[g].rule >= 0)
                r->rules->v[r->groups[g].rule].hits += (unsigned)r->groups[g].count;
        }
    }
    return true;
}

/* ---- text ---- */

static void text_target(struct pql_buf *b, const struct pql_target *t)
{
    const char *sep = "";
    const char *names[] = {"host", "port", "dbname", "user", "application_name"};
    const char *vals[] = {t->host, t->port, t->dbname, t->user, t->appname};
    for (int i = 0; i < 5; i++) {
        if (!*vals[i])
            continue;
        pql_buf_printf(b, "%s%s=%s", sep, names[i], vals[i]);
        sep = " ";
    }
    if (!*sep)
        pql_buf_puts(b, "(unknown target)");
}

static void describe_site(struct pql_buf *b, struct pql_symbolizer *sym, uint32_t stack);

static void text_frame(struct pql_buf *b, int i, const struct pql_frame *f)
{
    if (!strcmp(f->lang, "python"))
        pql_buf_printf(b, "    #%d %-14s", i, "(python)");
    else
        pql_buf_printf(b, "    #%d 0x%lx", i, (unsigned long)f->pc);
    pql_buf_printf(b, " in %s", f->function ? f->function : "??");
    if (f->file)
        pql_buf_printf(b, " %s:%d", f->file, f->line);
    if (f->module)
        pql_buf_printf(b, " (%s+0x%lx)", f->module, (unsigned long)f->offset);
    pql_buf_puts(b, "\n");
}

void pql_report_stack_text(struct pql_buf *b, struct pql_symbolizer *sym, uint32_t stack)
{
    int n = 0;
    const uintptr_t *pcs = stack ? pql_stack_get(stack, &n) : NULL;
    for (int i = 0; pcs && sym && i < n; i++) {
        const struct pql_frame *f = pql_sym_frame(sym, pcs[i]);
        if (f)
            text_frame(b, i, f);
    }
    if (!pcs || !n)
        pql_buf_puts(b, "    (no stack)\n");
}

static const char *kind_text(const char *kind)
{
    if (!strcmp(kind, "teardown"))
        return "teardown: closed by the runtime at exit inside a transaction, its work rolled back";
    if (!strcmp(kind, "held"))
        return "held: closed idle by the runtime at exit";
    return "unclosed";
}

static void text_report(struct report *r, long leaked)
{
    struct pql_buf b;
    pql_buf_init(&b);
    int pid = (int)getpid();
    pql_buf_printf(&b, "\n==%d==pqleak: ERROR: %ld connection%s leaked (never closed with PQfinish by the program)\n",
                   pid, leaked, leaked == 1 ? "" : "s");
    long suppressed = 0, held = 0;
    size_t shown = 0;
    for (size_t g = 0; g < r->ngroups; g++) {
        const struct group *gr = &r->groups[g];
        if (gr->rule >= 0) {
            suppressed += gr->count;
            continue;
        }
        if (!counts(r, gr)) {
            held += gr->count;
            continue;
        }
        shown++;
        const struct pql_conn *c = &r->conns[gr->first];
        pql_buf_printf(&b, "\nLeak of %ld connection%s (%s%s) to ", gr->count, gr->count == 1 ? "" : "s",
                       kind_text(gr->kind), c->state == PQL_OK ? "" : c->state == PQL_BAD ? ", failed to connect"
                                                                           : ", still connecting");
        text_target(&b, &c->target);
        pql_buf_printf(&b, ", open %.1f s, opened by ", gr->oldest);
        describe_site(&b, r->sym, gr->stack);
        pql_buf_puts(&b, ":\n");
        pql_report_stack_text(&b, r->sym, gr->stack);
        if (gr->tx_stack) {
            pql_buf_puts(&b, "  its transaction began in ");
            describe_site(&b, r->sym, gr->tx_stack);
            pql_buf_puts(&b, ":\n");
            pql_report_stack_text(&b, r->sym, gr->tx_stack);
        }
    }
    if (held)
        pql_buf_printf(&b, "\nAlso %ld connection%s held until exit (closed idle by the runtime; PQLEAK_STRICT=1 counts "
                       "them)\n", held, held == 1 ? "" : "s");
    if (suppressed && r->rules) {
        pql_buf_printf(&b, "\nSuppressed: %ld connection%s\n", suppressed, suppressed == 1 ? "" : "s");
        for (size_t i = 0; i < r->rules->n; i++)
            if (r->rules->v[i].hits)
                pql_buf_printf(&b, "  %u leak:%s\n", r->rules->v[i].hits, r->rules->v[i].pattern);
    }
    pql_buf_printf(&b, "\nSUMMARY: pqleak: %ld connection%s leaked in %zu group%s (%s, pid %d)\n", leaked,
                   leaked == 1 ? "" : "s", shown, shown == 1 ? "" : "s", r->program, pid);
    if (!b.failed)
        pql_log_write(b.data, b.len);
    pql_buf_free(&b);
}

/* ---- JSON ---- */

static void json_target(struct pql_buf *b, const struct pql_target *t)
{
    pql_buf_puts(b, "{\"host\": ");
    pql_buf_json_str(b, *t->host ? t->host : NULL);
    pql_buf_puts(b, ", \"port\": ");
    pql_buf_json_str(b, *t->port ? t->port : NULL);
    pql_buf_puts(b, ", \"dbname\": ");
    pql_buf_json_str(b, *t->dbname ? t->dbname : NULL);
    pql_buf_puts(b, ", \"user\": ");
    pql_buf_json_str(b, *t->user ? t->user : NULL);
    pql_buf_puts(b, ", \"application_name\": ");
    pql_buf_json_str(b, *t->appname ? t->appname : NULL);
    pql_buf_puts(b, "}");
}

static void json_time(struct pql_buf *b, double wall)
{
    time_t s = (time_t)wall;
    struct tm tm;
    gmtime_r(&s, &tm);
    char ts[64];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    pql_buf_printf(b, "\"%s.%03dZ\"", ts, (int)((wall - (double)s) * 1000) % 1000);
}

static void json_utilization(struct pql_buf *b, const struct report *r)
{
    const struct pql_counters *c = &r->counters;
    int cap = r->settings->max_conns;
    pql_buf_printf(b, "{\"open\": %ld, \"peak_open\": %ld, \"cap\": %d, \"utilization_pct\": ", c->open,
                   c->peak_open, cap);
    if (cap > 0)
        pql_buf_json_num(b, 100.0 * (double)c->open / cap);
    else
        pql_buf_puts(b, "null");
    pql_buf_printf(b, ", \"opened_total\": %ld, \"closed_total\": %ld, \"failed_total\": %ld", c->opened_total,
                   c->closed_total, c->failed_total);
    pql_buf_printf(b, ", \"waits_total\": %ld, \"wait_s_total\": ", c->waits_total);
    pql_buf_json_num(b, c->wait_s_total);
    pql_buf_puts(b, ", \"wait_s_max\": ");
    pql_buf_json_num(b, c->wait_s_max);
    pql_buf_printf(b, ", \"timeouts_total\": %ld, \"refused_total\": %ld}", c->timeouts_total, c->refused_total);
}

static const char *tx_name(int tx)
{
    switch (tx) {
    case PQTRANS_IDLE: return "idle";
    case PQTRANS_ACTIVE: return "active";
    case PQTRANS_INTRANS: return "intrans";
    case PQTRANS_INERROR: return "inerror";
    default: return "unknown";
    }
}

static const char *suspect_name(int s)
{
    return s == PQL_SUSPECT_AGE ? "age" : s == PQL_SUSPECT_IDLE_TX ? "idle_tx" : NULL;
}

/* Seconds since the connection's last activity (since it opened, when never used). */
static double idle_s(const struct report *r, const struct pql_conn *c)
{
    if (!c->last_ns)
        return r->now_mono - c->opened_mono;
    double idle = (double)(r->now_coarse_ns - c->last_ns) / 1e9;
    return c->active || idle < 0 ? 0 : idle;
}

static void json_id(struct pql_buf *b, uint32_t id)
{
    if (id)
        pql_buf_printf(b, "%u", id);
    else
        pql_buf_puts(b, "null");
}

static void json_connection(struct pql_buf *b, const struct report *r, const struct pql_conn *c)
{
    pql_buf_printf(b, "{\"id\": %llu, \"status\": \"%s\", \"target\": ", (unsigned long long)c->id,
                   c->state == PQL_OK ? "ok" : "bad");
    json_target(b, &c->target);
    pql_buf_puts(b, ", \"server_pid\": ");
    if (c->server_pid)
        pql_buf_printf(b, "%d", c->server_pid);
    else
        pql_buf_puts(b, "null");
    pql_buf_puts(b, ", \"client_port\": ");
    if (c->client_port)
        pql_buf_printf(b, "%d", c->client_port);
    else
        pql_buf_puts(b, "null");
    pql_buf_puts(b, ", \"age_s\": ");
    pql_buf_json_num(b, r->now_mono - c->opened_mono);
    pql_buf_puts(b, ", \"idle_s\": ");
    pql_buf_json_num(b, idle_s(r, c));
    pql_buf_printf(b, ", \"tx_status\": \"%s\", \"thread\": %d, \"suspect\": ",
                   c->state == PQL_OK ? tx_name(c->active ? PQTRANS_ACTIVE : c->tx_status) : "unknown", (int)c->tid);
    pql_buf_json_str(b, suspect_name(c->suspect));
    pql_buf_puts(b, ", \"stack\": ");
    json_id(b, c->stack);
    pql_buf_puts(b, ", \"tx_stack\": ");
    json_id(b, c->tx_stack);
    pql_buf_puts(b, "}");
}

static void json_stack(struct pql_buf *b, struct report *r, uint32_t id)
{
    const struct pql_frame *frames[PQL_MAX_FRAMES];
    int n = frames_of(r, id, frames, PQL_MAX_FRAMES);
    pql_buf_printf(b, "\"%u\": [", id);
    const char *sep = "";
    for (int i = 0; i < n; i++) {
        const struct pql_frame *f = frames[i];
        if (!f)
            continue;
        pql_buf_printf(b, "%s\n    {\"function\": ", sep);
        pql_buf_json_str(b, f->function);
        pql_buf_puts(b, ", \"file\": ");
        pql_buf_json_str(b, f->file);
        pql_buf_puts(b, ", \"line\": ");
        if (f->line > 0)
            pql_buf_printf(b, "%d", f->line);
        else
            pql_buf_puts(b, "null");
        pql_buf_puts(b, ", \"module\": ");
        pql_buf_json_str(b, f->module);
        pql_buf_puts(b, ", \"offset\": ");
        if (f->module)
            pql_buf_printf(b, "\"0x%lx\"", (unsigned long)f->offset);
        else
            pql_buf_puts(b, "null");
        pql_buf_printf(b, ", \"lang\": \"%s\"}", f->lang);
        sep = ",";
    }
    pql_buf_puts(b, "]");
}

/* A stack id and where it first appears: (connection index * 2 + 1 for a transaction stack). */
struct stack_use {
    uint32_t id;
    size_t pos;
};

static int by_id_pos(const void *a, const void *b)
{
    const struct stack_use *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int by_pos(const void *a, const void *b)
{
    const struct stack_use *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Every stack the connections refer to (open and transaction stacks), each once, in order of first
 * appearance; *n set to the count. NULL when out of memory. Sorting, not a scan of the ids seen for
 * every id: linear in practice, n log n at worst. */
static uint32_t *stacks_once(const struct report *r, size_t *n)
{
    struct stack_use *u = malloc((2 * r->nconns + 1) * sizeof(*u));
    uint32_t *ids = malloc((2 * r->nconns + 1) * sizeof(*ids));
    size_t m = 0, k = 0;
    if (!u || !ids) {
        free(u);
        free(ids);
        return NULL;
    }
    for (size_t i = 0; i < 2 * r->nconns; i++) {
        uint32_t id = i % 2 ? r->conns[i / 2].tx_stack : r->conns[i / 2].stack;
        if (id)
            u[m++] = (struct stack_use){id, i};
    }
    qsort(u, m, sizeof(*u), by_id_pos);
    for (size_t i = 0; i < m; i++)
        if (!i || u[i].id != u[i - 1].id)
            u[k++] = u[i];
    qsort(u, k, sizeof(*u), by_pos);
    for (size_t i = 0; i < k; i++)
        ids[i] = u[i].id;
    free(u);
    *n = k;
    return ids;
}

static void json_report(struct pql_buf *b, struct report *r, bool with_leaks)
{
    pql_buf_puts(b, "{\"schema\": \"pqleak/1\", \"trigger\": ");
    pql_buf_json_str(b, r->trigger);
    pql_buf_printf(b, ", \"pid\": %d, \"program\": ", (int)getpid());
    pql_buf_json_str(b, r->program);
    pql_buf_puts(b, ", \"time\": ");
    json_time(b, r->now_wall);
    pql_buf_puts(b, ",\n \"settings\": {");
    pql_settings_json(r->settings, b);
    pql_buf_puts(b, "},\n \"utilization\": ");
    json_utilization(b, r);
    pql_buf_puts(b, ",\n \"connections\": [");
    for (size_t i = 0; i < r->nconns; i++) {
        pql_buf_puts(b, i ? ",\n  " : "\n  ");
        json_connection(b, r, &r->conns[i]);
    }
    pql_buf_puts(b, "]");
    if (with_leaks) {
        pql_buf_puts(b, ",\n \"leaks\": [");
        for (size_t g = 0; g < r->ngroups; g++) {
            const struct group *gr = &r->groups[g];
            pql_buf_puts(b, g ? ",\n  {\"stack\": " : "\n  {\"stack\": ");
            if (gr->stack)
                pql_buf_printf(b, "%u", gr->stack);
            else
                pql_buf_puts(b, "null");
            pql_buf_puts(b, ", \"tx_stack\": ");
            json_id(b, gr->tx_stack);
            pql_buf_printf(b, ", \"count\": %ld, \"connections\": [", gr->count);
            for (long k = 0; k < gr->count; k++)
                pql_buf_printf(b, "%s%llu", k ? ", " : "",
                               (unsigned long long)r->conns[r->order[gr->run + (size_t)k]].id);
            pql_buf_printf(b, "], \"kind\": \"%s\", \"suppressed\": %s, \"rule\": ", gr->kind,
                           gr->rule >= 0 ? "true" : "false");
            if (gr->rule >= 0) {
                char rule[1100];
                snprintf(rule, sizeof(rule), "leak:%s", r->rules->v[gr->rule].pattern);
                pql_buf_json_str(b, rule);
            } else {
                pql_buf_puts(b, "null");
            }
            pql_buf_puts(b, "}");
        }
        pql_buf_puts(b, "]");
    }
    /* Every stack a connection refers to (open and transaction stacks), each once. */
    pql_buf_puts(b, ",\n \"stacks\": {");
    const char *sep = "\n  ";
    size_t nseen = 0;
    uint32_t *seen = stacks_once(r, &nseen);
    for (size_t i = 0; i < nseen; i++) {
        pql_buf_puts(b, sep);
        json_stack(b, r, seen[i]);
        sep = ",\n  ";
    }
    if (!seen)
        b->failed = true;
    free(seen);
    pql_buf_puts(b, "}}\n");
}

static atomic_uint report_seq;

/* Writes text whole into dir under a name of its own (copied to path); false (errno set) on failure. */
static bool write_file(const char *dir, const char *trigger, const struct pql_buf *b, char *path, size_t pathlen)
{
    if (b->failed) {
        errno = ENOMEM;
        return false;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return false;
    unsigned seq = atomic_fetch_add(&report_seq, 1);
    char tmp[PQL_PATH_MAX + 64], final[PQL_PATH_MAX + 64];
    snprintf(tmp, sizeof(tmp), "%s/.pqleak-%d-%u.tmp", dir, (int)getpid(), seq);
    snprintf(final, sizeof(final), "%s/pqleak-%d-%s-%u.json", dir, (int)getpid(), trigger, seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    const char *p = b->data;
    size_t left = b->len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            close(fd);
            unlink(tmp);
            errno = e;
            return false;
        }
        p += n;
        left -= (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return false;
    }
    if (path)
        snprintf(path, pathlen, "%s", final);
    return true;
}

/* Takes the snapshot a report is made of. False when out of memory (nothing to free then). */
static bool report_begin(struct report *r, const char *trigger, const struct pql_settings *settings,
                         struct pql_rules *rules)
{
    memset(r, 0, sizeof(*r));
    r->trigger = trigger;
    r->settings = settings;
    r->rules = rules;
    r->now_wall = clock_s(CLOCK_REALTIME);
    r->now_mono = clock_s(CLOCK_MONOTONIC);
    r->now_coarse_ns = pql_live_now_ns();
    ssize_t n = readlink("/proc/self/exe", r->program, sizeof(r->program) - 1);
    r->program[n > 0 ? n : 0] = '\0';
    r->nconns = pql_registry_snapshot(&r->conns, &r->counters);
    if (!r->conns) {
        pql_log("out of memory while writing a report");
        return false;
    }
    pql_checkout_counters(&r->counters);
    /* Symbolizing costs milliseconds: only when there is something to show. */
    if (r->nconns)
        r->sym = pql_sym_acquire();
    return true;
}

static void report_end(struct report *r)
{
    pql_sym_release(r->sym);
    free(r->groups);
    free(r->order);
    free(r->conns);
}

struct pql_report_result pql_report_exit(const struct pql_settings *settings, struct pql_rules *rules)
{
    struct pql_report_result res = {0, 0, 0, false};
    struct report r;
    if (!report_begin(&r, "exit", settings, rules))
        return res;
    /* Connections the runtime closed at exit are leaks of their own kinds. */
    struct pql_conn *gone;
    size_t ngone = pql_registry_retired(&gone);
    if (ngone) {
        struct pql_conn *all = realloc(r.conns, (r.nconns + ngone) * sizeof(*all));
        if (all) {
            memcpy(all + r.nconns, gone, ngone * sizeof(*gone));
            r.conns = all;
            r.nconns += ngone;
            if (!r.sym)
                r.sym = pql_sym_acquire();
        }
        free(gone);
    }
    /* A process that never opened a connection (a forked child, say) writes nothing. */
    if (r.counters.opened_total == 0 && r.counters.refused_total == 0)
        goto out;
    if (!build_groups(&r)) {
        pql_log("out of memory while writing the exit report");
        goto out;
    }
    for (size_t g = 0; g < r.ngroups; g++) {
        if (r.groups[g].rule >= 0) {
            res.suppressed += r.groups[g].count;
        } else if (counts(&r, &r.groups[g])) {
            res.leaked += r.groups[g].count;
            res.groups++;
        }
    }
    bool text = res.leaked > 0 && settings->text_report;
    if (*settings->report_dir) {
        struct pql_buf b;
        pql_buf_init(&b);
        json_report(&b, &r, true);
        res.json_written = write_file(settings->report_dir, r.trigger, &b, NULL, 0);
        if (!res.json_written) {
            pql_log("cannot write a report in PQLEAK_REPORT_DIR='%s' (%s); the report goes to the log instead",
                    settings->report_dir, strerror(errno));
            text = res.leaked > 0;
        }
        pql_buf_free(&b);
    }
    if (text)
        text_report(&r, res.leaked);
out:
    report_end(&r);
    return res;
}

static void text_live(struct report *r)
{
    struct pql_buf b;
    pql_buf_init(&b);
    const struct pql_counters *c = &r->counters;
    pql_buf_printf(&b, "\n==%d==pqleak: live report (%s): %ld connection%s open, peak %ld", (int)getpid(), r->trigger,
                   c->open, c->open == 1 ? "" : "s", c->peak_open);
    if (r->settings->max_conns > 0)
        pql_buf_printf(&b, ", cap %d (%.0f%%)", r->settings->max_conns, 100.0 * (double)c->open / r->settings->max_conns);
    pql_buf_printf(&b, "; %ld opened, %ld closed, %ld failed; %ld waits (%.1f s, longest %.1f s), %ld timeouts, "
                   "%ld refused\n",
                   c->opened_total, c->closed_total, c->failed_total, c->waits_total, c->wait_s_total, c->wait_s_max,
                   c->timeouts_total, c->refused_total);
    /* Grouped by open stack, in opening order of each group's first connection: the connections sorted
     * by (stack, opening order), then the runs taken in the order of their first connection. */
    size_t *order = malloc((r->nconns ? r->nconns : 1) * sizeof(*order));
    struct stack_use *runs = malloc((r->nconns ? r->nconns : 1) * sizeof(*runs));
    size_t nruns = 0;
    if (!order || !runs)
        b.failed = true;
    for (size_t i = 0; order && runs && i < r->nconns; i++)
        order[i] = i;
    if (order && runs) {
        qsort_r(order, r->nconns, sizeof(*order), by_stack, r->conns);
        for (size_t k = 0; k < r->nconns; k++)
            if (!k || r->conns[order[k]].stack != r->conns[order[k - 1]].stack)
                runs[nruns++] = (struct stack_use){(uint32_t)k, order[k]}; /* start in order, first index */
        qsort(runs, nruns, sizeof(*runs), by_pos);
    }
    for (size_t g = 0; g < nruns; g++) {
        size_t start = runs[g].id, end = start;
        uint32_t stack = r->conns[order[start]].stack;
        while (end < r->nconns && r->conns[order[end]].stack == stack)
            end++;
        long count = (long)(end - start);
        pql_buf_printf(&b, "\n%ld connection%s opened at:\n", count, count == 1 ? "" : "s");
        pql_report_stack_text(&b, r->sym, stack);
        for (size_t j = start; j < end; j++) {
            const struct pql_conn *k = &r->conns[order[j]];
            pql_buf_printf(&b, "  #%llu %s ", (unsigned long long)k->id, k->state == PQL_OK ? "ok" : "failed");
            text_target(&b, &k->target);
            if (k->server_pid)
                pql_buf_printf(&b, ", server pid %d", k->server_pid);
            if (k->client_port)
                pql_buf_printf(&b, ", client port %d", k->client_port);
            pql_buf_printf(&b, ", open %.1f s, idle %.1f s, %s, thread %d", r->now_mono - k->opened_mono, idle_s(r, k),
                           k->state == PQL_OK ? tx_name(k->active ? PQTRANS_ACTIVE : k->tx_status) : "unknown",
                           (int)k->tid);
            if (suspect_name(k->suspect))
                pql_buf_printf(&b, ", SUSPECT (%s)", suspect_name(k->suspect));
            pql_buf_puts(&b, "\n");
            if (k->tx_stack) {
                pql_buf_printf(&b, "    its transaction began %.1f s ago at:\n",
                               (double)(r->now_coarse_ns - k->tx_began_ns) / 1e9);
                pql_report_stack_text(&b, r->sym, k->tx_stack);
            }
        }
    }
    free(order);
    free(runs);
    if (!b.failed)
        pql_log_write(b.data, b.len);
    pql_buf_free(&b);
}

bool pql_report_live(const struct pql_settings *settings, const char *trigger, const char *dir, bool text,
                     char *path, size_t pathlen)
{
    struct report r;
    if (!report_begin(&r, trigger, settings, NULL))
        return false;
    if (text)
        text_live(&r);
    bool ok = false;
    if (dir) {
        struct pql_buf b;
        pql_buf_init(&b);
        json_report(&b, &r, false);
        ok = write_file(dir, trigger, &b, path, pathlen);
        if (!ok)
            pql_log("cannot write a live report in '%s' (%s)", dir, strerror(errno));
        pql_buf_free(&b);
    }
    report_end(&r);
    return ok;
}

static bool system_module(const char *module);

/* Frames that say nothing about who opened a connection: libpq, libc and the shim; for Python frames,
 * the standard library and installed packages. */
static bool library_frame(const struct pql_frame *f)
{
    if (!strcmp(f->lang, "python"))
        return !f->file || !strncmp(f->file, "/usr/lib/python3", 16) || strstr(f->file, "/site-packages/") ||
               strstr(f->file, "/dist-packages/") || f->file[0] == '<';
    return system_module(f->module);
}

static bool system_module(const char *module)
{
    static const char *const prefixes[] = {"libpq.so", "libc.so", "ld-linux", "libpthread", "libpqleak"};
    const char *base = module ? strrchr(module, '/') : NULL;
    base = base ? base + 1 : module;
    if (!base)
        return true;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (!strncmp(base, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

/* "handle_request (app.c:42) <- main (app.c:60)": the innermost two frames of the program itself. In a
 * Python program those are Python frames: extension modules' C frames are libraries there. */
static void describe_site(struct pql_buf *b, struct pql_symbolizer *sym, uint32_t stack)
{
    int n = 0, shown = 0;
    const uintptr_t *pcs = stack ? pql_stack_get(stack, &n) : NULL;
    bool python = false;
    for (int i = 0; pcs && i < n && !python; i++)
        python = (pcs[i] & PQL_PYFRAME_TAG) != 0;
    for (int i = 0; pcs && sym && i < n && shown < 2; i++) {
        if (python && !(pcs[i] & PQL_PYFRAME_TAG))
            continue;
        const struct pql_frame *f = pql_sym_frame(sym, pcs[i]);
        if (!f || library_frame(f))
            continue;
        pql_buf_printf(b, "%s%s", shown ? " <- " : "", f->function ? f->function : "??");
        if (f->file) {
            const char *base = strrchr(f->file, '/');
            pql_buf_printf(b, " (%s:%d)", base ? base + 1 : f->file, f->line);
        } else if (f->module) {
            const char *base = strrchr(f->module, '/');
            pql_buf_printf(b, " (%s+0x%lx)", base ? base + 1 : f->module, (unsigned long)f->offset);
        }
        shown++;
    }
    if (!shown)
        pql_buf_puts(b, "an unknown site");
}

void pql_report_holders(char *msg, size_t len, uint32_t bucket)
{
    struct pql_counters counters;
    struct pql_conn *conns;
    size_t n = pql_registry_snapshot(&conns, &counters);
    struct group *groups = conns ? calloc(n ? n : 1, sizeof(*groups)) : NULL;
    size_t ngroups = 0;
    double now = clock_s(CLOCK_MONOTONIC);
    for (size_t i = 0; groups && i < n; i++) {
        const struct pql_conn *c = &conns[i];
        if (!c->slot.held || (bucket && c->slot.target != bucket))
            continue;
        size_t g;
        for (g = 0; g < ngroups && groups[g].stack != c->stack; g++)
            ;
        if (g == ngroups)
            groups[ngroups++] = (struct group){c->stack, "held", 0, 0, i, -1, 0, 0};
        groups[g].count++;
        if (now - c->opened_mono > groups[g].oldest)
            groups[g].oldest = now - c->opened_mono;
    }
    struct pql_buf b;
    pql_buf_init(&b);
    if (groups) {
        qsort(groups, ngroups, sizeof(*groups), group_order);
        struct pql_symbolizer *sym = ngroups ? pql_sym_acquire() : NULL;
        size_t shown = ngroups < 5 ? ngroups : 5;
        for (size_t g = 0; g < shown; g++) {
            pql_buf_printf(&b, "; %ld held by ", groups[g].count);
            describe_site(&b, sym, groups[g].stack);
            pql_buf_printf(&b, ", oldest %.*f s", groups[g].oldest < 10 ? 1 : 0, groups[g].oldest);
        }
        long rest = 0;
        for (size_t g = shown; g < ngroups; g++)
            rest += groups[g].count;
        if (rest)
            pql_buf_printf(&b, "; %ld more held from %zu other places", rest, ngroups - shown);
        pql_sym_release(sym);
    }
    pql_buf_puts(&b, "\n");
    if (!b.failed && len > 0)
        snprintf(msg, len, "%s", b.data);
    pql_buf_free(&b);
    free(groups);
    free(conns);
}
