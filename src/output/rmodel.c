/* The report model (rmodel.h): snapshots, grouping by sorting (linear in practice: 100,000 connections
 * from as many stacks took seconds with a scan per connection), suppression decisions, holders. Takes
 * the registry's, the checkout's and the symbolizer's locks one at a time, never two at once. */
#define _GNU_SOURCE
#include "rmodel.h"

#include "live.h"
#include "log.h"
#include "proc.h"
#include "stack.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *leak_kind(const struct pql_conn *c)
{
    return c->leak_kind == PQL_LEAK_TEARDOWN ? "teardown"
           : c->leak_kind == PQL_LEAK_HELD   ? "held"
                                             : "unclosed";
}

/* Held connections (closed idle by a runtime at exit) count only in strict mode. */
bool pql_rmodel_counts(const struct pql_report *r, const struct pql_group *g)
{
    return g->rule < 0 && (strcmp(g->kind, "held") != 0 || r->settings->strict);
}

static bool in_group(const struct pql_group *g, const struct pql_conn *c)
{
    return g->stack == c->stack && g->kind == leak_kind(c) && g->tx_stack == c->tx_stack;
}

static int group_order(const void *a, const void *b)
{
    const struct pql_group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

int pql_rmodel_frames(const struct pql_report *r, uint32_t stack, const struct pql_frame **out, int max)
{
    int n = 0;
    const uintptr_t *pcs = stack ? pql_stack_get(stack, &n) : NULL;
    if (!pcs || !r->sym)
        return 0;
    int m = 0;
    for (int i = 0; i < n && m < max; i++)
        m += pql_sym_frames(r->sym, pcs[i], out + m, max - m);
    return m;
}

static int kind_rank(const struct pql_conn *c)
{
    return (int)c->leak_kind;
}

/* Orders connection indexes by group (open stack, kind, transaction stack), then by opening order. */
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

/* The first rule (in file order) that matches any frame of the stack, or -1. */
static int match(const struct pql_rules *rules, const struct pql_frame *const *frames, int n)
{
    for (size_t i = 0; i < rules->n; i++)
        for (int j = 0; j < n; j++)
            if (frames[j] && pql_rule_matches(rules->v[i].pattern, frames[j]->function, frames[j]->file,
                                              frames[j]->module))
                return (int)i;
    return -1;
}

bool pql_rmodel_group(struct pql_report *r)
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
            r->groups[r->ngroups++] = (struct pql_group){.stack = c->stack,
                                                         .kind = leak_kind(c),
                                                         .tx_stack = c->tx_stack,
                                                         .first = i,
                                                         .rule = -1,
                                                         .run = k};
        struct pql_group *g = &r->groups[r->ngroups - 1];
        g->count++;
        if (age > g->oldest)
            g->oldest = age;
    }
    qsort(r->groups, r->ngroups, sizeof(*r->groups), group_order);
    if (r->rules && r->rules->n) {
        const struct pql_frame *frames[PQL_MAX_FRAMES];
        for (size_t g = 0; g < r->ngroups; g++) {
            int n = pql_rmodel_frames(r, r->groups[g].stack, frames, PQL_MAX_FRAMES);
            r->groups[g].rule = match(r->rules, frames, n);
            if (r->groups[g].rule >= 0)
                r->rules->v[r->groups[g].rule].hits += (unsigned long)r->groups[g].count;
        }
    }
    for (size_t g = 0; g < r->ngroups; g++) {
        const struct pql_group *gr = &r->groups[g];
        if (gr->rule >= 0) {
            r->suppressed += gr->count;
        } else if (pql_rmodel_counts(r, gr)) {
            r->leaked += gr->count;
            r->leak_groups++;
        } else {
            r->held += gr->count;
        }
    }
    return true;
}

double pql_rmodel_idle_s(const struct pql_report *r, const struct pql_conn *c)
{
    if (!c->last_ns)
        return r->now_mono - c->opened_mono;
    double idle = (double)(r->now_coarse_ns - c->last_ns) / 1e9;
    return c->active || idle < 0 ? 0 : idle;
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

uint32_t *pql_rmodel_stacks(const struct pql_report *r, size_t *n)
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

size_t pql_rmodel_runs(const struct pql_report *r, size_t **order_out, size_t **runs_out)
{
    size_t *order = malloc((r->nconns ? r->nconns : 1) * sizeof(*order));
    struct stack_use *runs = malloc((r->nconns ? r->nconns : 1) * sizeof(*runs));
    size_t *starts = malloc((r->nconns ? r->nconns : 1) * sizeof(*starts));
    size_t nruns = 0;
    *order_out = NULL;
    *runs_out = NULL;
    if (!order || !runs || !starts) {
        free(order);
        free(runs);
        free(starts);
        return 0;
    }
    for (size_t i = 0; i < r->nconns; i++)
        order[i] = i;
    qsort_r(order, r->nconns, sizeof(*order), by_stack, r->conns);
    for (size_t k = 0; k < r->nconns; k++)
        if (!k || r->conns[order[k]].stack != r->conns[order[k - 1]].stack)
            runs[nruns++] = (struct stack_use){(uint32_t)k, order[k]}; /* start in order, first index */
    qsort(runs, nruns, sizeof(*runs), by_pos);
    for (size_t g = 0; g < nruns; g++)
        starts[g] = runs[g].id;
    free(runs);
    *order_out = order;
    *runs_out = starts;
    return nruns;
}

bool pql_rmodel_begin(struct pql_report *r, const char *trigger, const struct pql_settings *settings,
                      struct pql_rules *rules)
{
    memset(r, 0, sizeof(*r));
    r->trigger = trigger;
    r->settings = settings;
    r->rules = rules;
    r->now_wall = pql_clock_s(CLOCK_REALTIME);
    r->now_mono = pql_clock_s(CLOCK_MONOTONIC);
    r->now_coarse_ns = pql_coarse_ns();
    ssize_t n = readlink("/proc/self/exe", r->program, sizeof(r->program) - 1);
    r->program[n > 0 ? n : 0] = '\0';
    r->nconns = pql_registry_snapshot(&r->conns, &r->counters);
    if (!r->conns) {
        pql_log("out of memory while writing a report");
        return false;
    }
    pql_checkout_counters(&r->waits);
    /* Symbolizing costs milliseconds: only when there is something to show. */
    if (r->nconns)
        r->sym = pql_sym_acquire();
    return true;
}

void pql_rmodel_add_retired(struct pql_report *r)
{
    struct pql_conn *gone;
    size_t ngone = pql_registry_retired(&gone);
    if (!ngone)
        return;
    struct pql_conn *all = realloc(r->conns, (r->nconns + ngone) * sizeof(*all));
    if (all) {
        memcpy(all + r->nconns, gone, ngone * sizeof(*gone));
        r->conns = all;
        r->nconns += ngone;
        if (!r->sym)
            r->sym = pql_sym_acquire();
    }
    free(gone);
}

void pql_rmodel_end(struct pql_report *r)
{
    pql_sym_release(r->sym);
    free(r->groups);
    free(r->order);
    free(r->conns);
}

void pql_rmodel_holders(struct pql_holders *h, uint32_t bucket)
{
    memset(h, 0, sizeof(*h));
    struct pql_counters counters;
    struct pql_conn *conns;
    size_t n = pql_registry_snapshot(&conns, &counters);
    struct pql_group *groups = conns ? calloc(n ? n : 1, sizeof(*groups)) : NULL;
    size_t ngroups = 0;
    double now = pql_clock_s(CLOCK_MONOTONIC);
    for (size_t i = 0; groups && i < n; i++) {
        const struct pql_conn *c = &conns[i];
        if (!c->slot.held || (bucket && c->slot.target != bucket))
            continue;
        size_t g;
        for (g = 0; g < ngroups && groups[g].stack != c->stack; g++)
            ;
        if (g == ngroups)
            groups[ngroups++] = (struct pql_group){.stack = c->stack, .kind = "held", .first = i, .rule = -1};
        groups[g].count++;
        if (now - c->opened_mono > groups[g].oldest)
            groups[g].oldest = now - c->opened_mono;
    }
    if (groups) {
        qsort(groups, ngroups, sizeof(*groups), group_order);
        h->n = ngroups < PQL_HOLDER_GROUPS ? ngroups : PQL_HOLDER_GROUPS;
        for (size_t g = 0; g < h->n; g++) {
            h->g[g].stack = groups[g].stack;
            h->g[g].count = groups[g].count;
            h->g[g].oldest = groups[g].oldest;
        }
        for (size_t g = h->n; g < ngroups; g++)
            h->rest += groups[g].count;
        h->rest_groups = ngroups - h->n;
    }
    free(groups);
    free(conns);
}

const char *pql_tx_name(int tx)
{
    switch (tx) {
    case PQTRANS_IDLE:
        return "idle";
    case PQTRANS_ACTIVE:
        return "active";
    case PQTRANS_INTRANS:
        return "intrans";
    case PQTRANS_INERROR:
        return "inerror";
    default:
        return "unknown";
    }
}

const char *pql_conn_tx_name(const struct pql_conn *c)
{
    return c->state == PQL_OK ? pql_tx_name(c->active ? PQTRANS_ACTIVE : c->tx_status) : "unknown";
}

const char *pql_suspect_name(int s)
{
    return s == PQL_SUSPECT_AGE ? "age" : s == PQL_SUSPECT_IDLE_TX ? "idle_tx" : NULL;
}
