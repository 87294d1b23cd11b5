/* Merging leak groups across reports (merge.h): groups are found by a key made of the symbolized open
 * stack and the leak kind; counts add up, processes and targets are collected without repeats.
 * Command-line process only. */
#include "merge.h"

#include "names.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_conn_free(struct cli_conn *c)
{
    if (!c)
        return;
    json_decref(c->obj);
    cli_stack_free(&c->stack);
    cli_stack_free(&c->tx);
    cli_stack_free(&c->last);
    free(c);
}

static void group_free(struct cli_group *g)
{
    free(g->key);
    free(g->kind);
    cli_stack_free(&g->stack);
    cli_stack_free(&g->tx);
    cli_frame_free(&g->site);
    free(g->site_from);
    cli_vec_free(&g->procs);
    for (size_t i = 0; i < g->targets.n; i++)
        free(g->targets.v[i]);
    cli_vec_free(&g->targets);
    for (size_t i = 0; i < g->conns.n; i++)
        cli_conn_free(g->conns.v[i]);
    cli_vec_free(&g->conns);
    free(g->rule);
    free(g);
}

void cli_set_free(struct cli_set *s)
{
    struct cli_proc *p, *ptmp;
    HASH_ITER(hh, s->proc_map, p, ptmp)
    {
        HASH_DEL(s->proc_map, p);
        free(p->key);
        free(p->program);
        free(p);
    }
    cli_vec_free(&s->procs);
    HASH_CLEAR(hh, s->group_map);
    for (size_t i = 0; i < s->groups.n; i++)
        group_free(s->groups.v[i]);
    cli_vec_free(&s->groups);
    struct cli_util *u, *utmp;
    HASH_ITER(hh, s->util_map, u, utmp)
    {
        HASH_DEL(s->util_map, u);
        free(u->who);
        free(u->time);
        json_decref(u->util);
        free(u);
    }
    json_decref(s->settings);
    s->settings = NULL;
    for (size_t i = 0; i < s->misuse.n; i++) {
        struct cli_misuse *m = s->misuse.v[i];
        free(m->kind);
        free(m->time);
        cli_stack_free(&m->stack);
        cli_stack_free(&m->open_stack);
        cli_frame_free(&m->site);
        free(m);
    }
    cli_vec_free(&s->misuse);
    for (size_t i = 0; i < s->handoffs.n; i++)
        free(s->handoffs.v[i]);
    cli_vec_free(&s->handoffs);
}

long cli_count_add(long a, long b)
{
    long r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? LONG_MAX : 0;
    return r < 0 ? 0 : r;
}

const struct cli_proc *cli_set_proc(struct cli_set *s, const char *program, long pid)
{
    /* Keyed by pid and program together: after exec the same pid runs another program, and the same
     * program runs under many pids. */
    char *key = cli_xasprintf("%ld %s", pid, program ? program : "");
    struct cli_proc *p;
    HASH_FIND_STR(s->proc_map, key, p);
    if (p) {
        free(key);
        return p;
    }
    p = cli_xcalloc(1, sizeof *p);
    p->key = key;
    p->program = program ? cli_xstrdup(program) : NULL;
    p->pid = pid;
    HASH_ADD_KEYPTR(hh, s->proc_map, p->key, strlen(p->key), p);
    cli_vec_push(&s->procs, p);
    return p;
}

static void push_distinct_ptr(struct cli_vec *v, void *p)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] == p)
            return;
    cli_vec_push(v, p);
}

static void push_distinct_str(struct cli_vec *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], s) == 0)
            return;
    cli_vec_push(v, cli_xstrdup(s));
}

static const char *member_str(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s ? s : "?";
}

char *cli_conn_target(const json_t *conn)
{
    const json_t *t = json_object_get(conn, PQL_F_TARGET);
    if (!json_is_object(t))
        return NULL;
    return cli_xasprintf("%s:%s %s %s", member_str(t, PQL_F_HOST), member_str(t, PQL_F_PORT),
                         member_str(t, PQL_F_DBNAME), member_str(t, PQL_F_USER));
}

void cli_set_add_leak(struct cli_set *s, const struct cli_stack *stack, const struct cli_stack *tx,
                      const char *kind, long count, bool suppressed, const char *rule,
                      const struct cli_proc *const *procs, size_t nprocs, struct cli_conn **conns,
                      size_t nconns)
{
    char *skey = cli_stack_key(stack);
    char *key = cli_xasprintf("%s\x1d%s", skey, kind);
    free(skey);
    struct cli_group *g;
    HASH_FIND_STR(s->group_map, key, g);
    if (g) {
        free(key);
    } else {
        g = cli_xcalloc(1, sizeof *g);
        g->key = key;
        g->kind = cli_xstrdup(kind);
        cli_stack_copy(&g->stack, stack);
        if (tx) {
            cli_stack_copy(&g->tx, tx);
            g->has_tx = true;
        }
        HASH_ADD_KEYPTR(hh, s->group_map, g->key, strlen(g->key), g);
        cli_vec_push(&s->groups, g);
    }
    g->count = cli_count_add(g->count, count);
    g->occurrences++;
    if (suppressed) {
        g->shim_suppressed++;
        if (!g->rule && rule)
            g->rule = cli_xstrdup(rule);
    }
    g->suppressed = g->by_shim = g->shim_suppressed == g->occurrences;
    if (!g->suppressed) {
        free(g->rule);
        g->rule = NULL;
    }
    for (size_t i = 0; i < nprocs; i++)
        push_distinct_ptr(&g->procs, (void *)procs[i]);
    for (size_t i = 0; i < nconns; i++) {
        char *t = cli_conn_target(conns[i]->obj);
        if (t)
            push_distinct_str(&g->targets, t);
        free(t);
        cli_vec_push(&g->conns, conns[i]);
    }
}

void cli_set_add_util(struct cli_set *s, const char *who, int rank, const char *time, const json_t *util)
{
    if (!json_is_object(util))
        return;
    struct cli_util *u;
    HASH_FIND_STR(s->util_map, who, u);
    if (u) {
        bool newer = rank > u->rank || (rank == u->rank && time && (!u->time || strcmp(time, u->time) >= 0));
        if (!newer)
            return;
        free(u->time);
        json_decref(u->util);
    } else {
        u = cli_xcalloc(1, sizeof *u);
        u->who = cli_xstrdup(who);
        HASH_ADD_KEYPTR(hh, s->util_map, u->who, strlen(u->who), u);
    }
    u->rank = rank;
    u->time = time ? cli_xstrdup(time) : NULL;
    u->util = json_deep_copy(util);
}

void cli_set_add_settings(struct cli_set *s, const json_t *settings)
{
    /* Different processes may run with different settings; then no single object is true. */
    if (!s->settings)
        s->settings = json_is_object(settings) ? json_deep_copy(settings) : json_null();
    else if (!json_equal(s->settings, (json_t *)settings)) {
        json_decref(s->settings);
        s->settings = json_null();
    }
}

/* Peaks, caps and maxima are per-process levels: the merged value is the largest. Everything else
 * numeric is a count or a total (open, *_total, wait_s_total): the merged value is the sum over
 * processes. Each process contributes its final report only (cli_set_add_util), so nothing is counted
 * twice. */
static bool is_level(const char *name)
{
    size_t n = strlen(name);
    return strncmp(name, "peak", 4) == 0 || strcmp(name, PQL_F_CAP) == 0 ||
           (n >= 4 && strcmp(name + n - 4, "_max") == 0) || (n >= 4 && strcmp(name + n - 4, "_pct") == 0);
}

json_t *cli_set_utilization(const struct cli_set *s)
{
    json_t *out = json_object();
    for (const struct cli_util *u = s->util_map; u; u = u->hh.next) {
        for (void *it = json_object_iter(u->util); it; it = json_object_iter_next(u->util, it)) {
            const char *name = json_object_iter_key(it);
            json_t *v = json_object_iter_value(it);
            json_t *cur = json_object_get(out, name);
            if (!json_is_number(v)) {
                if (!cur)
                    json_object_set_new(out, name, json_null());
                continue;
            }
            if (!cur || json_is_null(cur)) {
                json_object_set(out, name, v);
                continue;
            }
            if (!json_is_number(cur))
                continue;
            if (json_is_integer(cur) && json_is_integer(v)) {
                json_int_t a = json_integer_value(cur), b = json_integer_value(v);
                json_object_set_new(out, name, json_integer(is_level(name) ? (a > b ? a : b) : a + b));
            } else {
                double a = json_number_value(cur), b = json_number_value(v);
                json_object_set_new(out, name, json_real(is_level(name) ? fmax(a, b) : a + b));
            }
        }
    }
    return out;
}

bool cli_group_counts(const struct cli_group *g, bool strict)
{
    if (g->suppressed)
        return false;
    if (g->count <= 0)
        return false;
    return strict || strcmp(g->kind, PQL_KIND_HELD) != 0;
}

struct cli_group *cli_set_find_group(const struct cli_set *s, const struct cli_stack *stack, const char *kind)
{
    char *skey = cli_stack_key(stack);
    char *key = cli_xasprintf("%s\x1d%s", skey, kind);
    free(skey);
    struct cli_group *g;
    HASH_FIND_STR(s->group_map, key, g);
    free(key);
    return g;
}

size_t cli_set_misuse_count(const struct cli_set *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->misuse.n; i++)
        n += !((const struct cli_misuse *)s->misuse.v[i])->handed_off;
    return n;
}

bool cli_set_fails(const struct cli_set *s, bool strict)
{
    for (size_t i = 0; i < s->groups.n; i++)
        if (cli_group_counts(s->groups.v[i], strict))
            return true;
    return cli_set_misuse_count(s) > 0;
}
