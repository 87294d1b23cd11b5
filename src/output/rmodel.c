/* The report model (rmodel.h): snapshots, grouping by sorting (linear in practice: 100,000 connections
 * from as many stacks took seconds with a scan per connection), suppression decisions, holders. Takes
 * the registry's, the checkout's and the symbolizer's locks one at a time, never two at once. */
#define _GNU_SOURCE
#include "rmodel.h"

#include "buf.h"
#include "frames.h"
#include "live.h"
#include "log.h"
#include "names.h"
#include "path.h"
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
    return g->stack == c->stack && g->kind == leak_kind(c) && g->tx_stack == c->tx_stack &&
           g->last_stack == c->last_stack;
}

static int group_order(const void *a, const void *b)
{
    const struct pql_group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

int pql_stack_frames(struct pql_symbolizer *sym, uint32_t stack, const struct pql_frame **out, int max)
{
    int n = 0;
    const uintptr_t *pcs = stack ? pql_stack_get(stack, &n) : NULL;
    int m = 0;
    for (int i = 0; pcs && sym && i < n && m < max; i++)
        m += pql_sym_frames(sym, pcs[i], out + m, max - m);
    return m;
}

int pql_rmodel_frames(const struct pql_report *r, uint32_t stack, const struct pql_frame **out, int max)
{
    return pql_stack_frames(r->sym, stack, out, max);
}

int pql_frames_headline(const struct pql_frame *const *frames, int n, bool *own)
{
    struct pql_frame_ref refs[PQL_MAX_FRAMES];
    if (n > PQL_MAX_FRAMES)
        n = PQL_MAX_FRAMES;
    for (int i = 0; i < n; i++)
        refs[i] =
            (struct pql_frame_ref){frames[i]->function, frames[i]->file, frames[i]->module, frames[i]->lang};
    return pql_frame_headline(refs, (size_t)n, own);
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
    if (x->last_stack != y->last_stack)
        return x->last_stack < y->last_stack ? -1 : 1;
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

const struct pql_frame *pql_rmodel_headline(const struct pql_report *r, uint32_t stack, bool *own)
{
    const struct pql_frame *frames[PQL_MAX_FRAMES];
    int h = pql_frames_headline(frames, pql_rmodel_frames(r, stack, frames, PQL_MAX_FRAMES), own);
    return h < 0 ? NULL : frames[h];
}

static bool same_site(const struct pql_frame *a, const struct pql_frame *b)
{
    return a && b && a->function && b->function && !strcmp(a->function, b->function) &&
           ((!a->file && !b->file) || (a->file && b->file && !strcmp(a->file, b->file)));
}

/* The open stack's headline, unless the program's own code used the connections since in another
 * place (a pool's worker, a handler that checked a connection out and kept it): then where they were
 * last used. */
static void find_site(const struct pql_report *r, struct pql_group *g)
{
    bool own_open = false, own_last = false;
    const struct pql_frame *open = pql_rmodel_headline(r, g->stack, &own_open);
    const struct pql_frame *last = g->last_stack ? pql_rmodel_headline(r, g->last_stack, &own_last) : NULL;
    if (last && (own_last || !own_open) && !(own_open && same_site(open, last))) {
        g->site = last;
        g->site_from = g->last_stack == g->tx_stack ? PQL_SITE_TX_STACK : PQL_SITE_LAST_USED;
    } else if (open) {
        g->site = open;
        g->site_from = PQL_SITE_STACK;
    }
}

const char *pql_site_from_name(enum pql_site_from f)
{
    switch (f) {
    case PQL_SITE_STACK:
        return "stack";
    case PQL_SITE_TX_STACK:
        return "tx_stack";
    case PQL_SITE_LAST_USED:
        return "last_used";
    case PQL_SITE_NONE:
        break;
    }
    return NULL;
}

static bool any_frame(const struct pql_rule *rule, const struct pql_frame *const *frames, int n)
{
    for (int j = 0; j < n; j++)
        if (frames[j] &&
            pql_rule_matches_frame(rule, frames[j]->function, frames[j]->file, frames[j]->module))
            return true;
    return false;
}

/* The first rule (in file order) that matches the group, or -1: a leak: rule any frame of its open
 * stack or its site (where a pool's connection was last used: the line the headline names, as the
 * command matches it), a tx: rule any frame of its transaction stack. */
static int match(const struct pql_report *r, const struct pql_group *g)
{
    const struct pql_frame *open[PQL_MAX_FRAMES], *tx[PQL_MAX_FRAMES];
    int nopen = pql_rmodel_frames(r, g->stack, open, PQL_MAX_FRAMES);
    int ntx = g->tx_stack ? pql_rmodel_frames(r, g->tx_stack, tx, PQL_MAX_FRAMES) : 0;
    for (size_t i = 0; i < r->rules->n; i++) {
        const struct pql_rule *rule = &r->rules->v[i];
        bool hit =
            rule->stack == PQL_RULE_TX
                ? any_frame(rule, tx, ntx)
                : any_frame(rule, open, nopen) ||
                      (g->site && pql_rule_matches_frame(rule, g->site->function, g->site->file, NULL));
        if (hit)
            return (int)i;
    }
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
                                                         .last_stack = c->last_stack,
                                                         .first = i,
                                                         .rule = -1,
                                                         .run = k};
        struct pql_group *g = &r->groups[r->ngroups - 1];
        g->count++;
        if (age > g->oldest)
            g->oldest = age;
    }
    qsort(r->groups, r->ngroups, sizeof(*r->groups), group_order);
    for (size_t g = 0; g < r->ngroups; g++)
        find_site(r, &r->groups[g]);
    for (size_t g = 0; r->rules && r->rules->n && g < r->ngroups; g++) {
        r->groups[g].rule = match(r, &r->groups[g]);
        if (r->groups[g].rule >= 0) {
            struct pql_rule *rule = &r->rules->v[r->groups[g].rule];
            rule->hits += (unsigned long)r->groups[g].count;
            rule->groups++;
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
    /* last_ns may be from the coarse clock (live.h), which lags by up to a tick: measured from the
     * precise now, the idle time is never shorter than the real one, so the report's time minus it is
     * never later than the real last use (the fork hand-off rule of the command compares it with a
     * child's use). */
    double idle = r->now_mono - (double)c->last_ns / 1e9;
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
    size_t slots = 3 * r->nconns + 2 * r->nmisuse + 1;
    struct stack_use *u = malloc(slots * sizeof(*u));
    uint32_t *ids = malloc(slots * sizeof(*ids));
    size_t m = 0, k = 0;
    if (!u || !ids) {
        free(u);
        free(ids);
        return NULL;
    }
    for (size_t i = 0; i < 3 * r->nconns; i++) {
        const struct pql_conn *c = &r->conns[i / 3];
        uint32_t id = i % 3 == 0 ? c->stack : i % 3 == 1 ? c->tx_stack : c->last_stack;
        if (id)
            u[m++] = (struct stack_use){id, i};
    }
    for (size_t i = 0; i < 2 * r->nmisuse; i++) {
        uint32_t id = i % 2 ? r->misuse[i / 2].open_stack : r->misuse[i / 2].stack;
        if (id)
            u[m++] = (struct stack_use){id, 3 * r->nconns + i};
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

/* A stack as the reader sees it: its frames' function, file and line (module and offset when the
 * function is unknown), one line each. Two stacks with the same key read the same. */
static char *stack_key(const struct pql_report *r, uint32_t id)
{
    const struct pql_frame *frames[PQL_MAX_FRAMES];
    int n = pql_rmodel_frames(r, id, frames, PQL_MAX_FRAMES);
    struct pql_buf b;
    pql_buf_init(&b);
    pql_buf_puts(&b, "");
    for (int i = 0; i < n; i++) {
        const struct pql_frame *f = frames[i];
        if (!f)
            pql_buf_puts(&b, "?\n");
        else if (f->function)
            pql_buf_printf(&b, "%s\x1f%s\x1f%d\n", f->function, f->file ? f->file : "", f->line);
        else
            pql_buf_printf(&b, "%s+0x%lx\n", f->module ? f->module : "?", (unsigned long)f->offset);
    }
    if (b.failed) {
        pql_buf_free(&b);
        return NULL;
    }
    return b.data;
}

struct keyed {
    char *key;
    uint32_t id, canon;
};

static int by_key(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int by_keyed_id(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static uint32_t canon_of(const struct keyed *v, size_t n, uint32_t id)
{
    struct keyed probe = {NULL, id, 0};
    const struct keyed *k = id ? bsearch(&probe, v, n, sizeof(*v), by_keyed_id) : NULL;
    return k ? k->canon : id;
}

/* Stacks that differ only in addresses (a loop unrolled at -O1 calls PQconnectdb from two places of
 * one source line) read the same: every connection and finding refers to one of them, the smallest id,
 * so that they group as the reader sees them. On out of memory nothing changes. */
static void canonicalize(struct pql_report *r)
{
    size_t n = 0;
    uint32_t *ids = r->sym ? pql_rmodel_stacks(r, &n) : NULL;
    struct keyed *v = ids && n ? calloc(n, sizeof(*v)) : NULL;
    bool ok = v != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        v[i].id = ids[i];
        ok = (v[i].key = stack_key(r, ids[i])) != NULL;
    }
    if (ok) {
        qsort(v, n, sizeof(*v), by_key);
        for (size_t i = 0; i < n; i++)
            v[i].canon = i && !strcmp(v[i].key, v[i - 1].key) ? v[i - 1].canon : v[i].id;
        qsort(v, n, sizeof(*v), by_keyed_id);
        for (size_t i = 0; i < r->nconns; i++) {
            struct pql_conn *c = &r->conns[i];
            c->stack = canon_of(v, n, c->stack);
            c->tx_stack = canon_of(v, n, c->tx_stack);
            c->last_stack = canon_of(v, n, c->last_stack);
        }
        for (size_t i = 0; i < r->nmisuse; i++) {
            r->misuse[i].stack = canon_of(v, n, r->misuse[i].stack);
            r->misuse[i].open_stack = canon_of(v, n, r->misuse[i].open_stack);
        }
    }
    for (size_t i = 0; v && i < n; i++)
        free(v[i].key);
    free(v);
    free(ids);
}

/* The connections the runtime closed at exit (leaks of their own kinds), added to an exit report. */
static void add_retired(struct pql_report *r)
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
    }
    free(gone);
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
    r->forks = atomic_load_explicit(&pql_forks, memory_order_relaxed);
    pql_self_exe(r->program, sizeof(r->program));
    r->nconns = pql_registry_snapshot(&r->conns, &r->counters);
    if (!r->conns) {
        pql_log("out of memory while writing a report");
        return false;
    }
    pql_checkout_counters(&r->waits);
    r->nmisuse = pql_misuse_snapshot(&r->misuse);
    if (!strcmp(trigger, PQL_TRIGGER_EXIT))
        add_retired(r);
    /* Symbolizing costs milliseconds: only when there is something to show. */
    if (r->nconns || r->nmisuse)
        r->sym = pql_sym_acquire();
    canonicalize(r);
    return true;
}

void pql_rmodel_end(struct pql_report *r)
{
    free(r->misuse);
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
