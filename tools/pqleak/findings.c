/* Leak sites, misuse findings and fork hand-offs (findings.h): read from each report after
 * reportio.c validated it, resolved over the whole set by cli_set_finish. Command-line process only. */
#include "findings.h"

#include "names.h"

#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool cli_iso_time(const char *s, double *out)
{
    struct tm tm = {0};
    double sec;
    int n = 0;
    if (!s ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lfZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &sec, &n) != 6 ||
        n == 0 || s[n] != '\0' || sec < 0 || sec >= 61)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_sec = 0;
    *out = (double)timegm(&tm) + sec;
    return true;
}

static bool present(const json_t *x)
{
    return x && !json_is_null(x);
}

static bool bad(char *msg, size_t len, const char *what)
{
    snprintf(msg, len, "%s", what);
    return false;
}

static bool site_ok(const json_t *site)
{
    if (!present(site))
        return true;
    if (!json_is_object(site))
        return false;
    const json_t *fn = json_object_get(site, PQL_F_FUNCTION), *file = json_object_get(site, PQL_F_FILE),
                 *line = json_object_get(site, PQL_F_LINE);
    return (!present(fn) || json_is_string(fn)) && (!present(file) || json_is_string(file)) &&
           (!present(line) || json_is_integer(line));
}

/* obj[name] is missing, null, or the id of an entry of stacks. */
static bool stack_ref_ok(const json_t *stacks, const json_t *obj, const char *name)
{
    enum cli_stack_ref r = cli_stack_ref(stacks, obj, name, NULL);
    return r == CLI_STACK_NONE || r == CLI_STACK_FOUND;
}

static bool opt_int(const json_t *obj, const char *name)
{
    const json_t *x = json_object_get(obj, name);
    return !present(x) || json_is_integer(x);
}

bool cli_findings_check(const json_t *root, char *msg, size_t len)
{
    const json_t *stacks = json_object_get(root, PQL_F_STACKS);
    const json_t *leaks = json_object_get(root, PQL_F_LEAKS);
    for (size_t i = 0; i < json_array_size(leaks); i++) {
        const json_t *l = json_array_get(leaks, i);
        const json_t *from = json_object_get(l, PQL_F_SITE_FROM);
        if (!site_ok(json_object_get(l, PQL_F_SITE)))
            return bad(msg, len, "a leak's \"site\" is not an object of function, file and line");
        if (present(from) && !json_is_string(from))
            return bad(msg, len, "a leak's \"site_from\" is not a string");
    }
    const json_t *conns = json_object_get(root, PQL_F_CONNECTIONS);
    for (size_t i = 0; i < json_array_size(conns); i++)
        if (!stack_ref_ok(stacks, json_array_get(conns, i), PQL_F_LAST_STACK))
            return bad(msg, len, "a connection's \"last_stack\" refers to no entry of \"stacks\"");
    const json_t *misuse = json_object_get(root, PQL_F_MISUSE);
    if (!present(misuse))
        return true;
    if (!json_is_array(misuse))
        return bad(msg, len, "\"misuse\" is not a list");
    for (size_t i = 0; i < json_array_size(misuse); i++) {
        const json_t *m = json_array_get(misuse, i);
        const json_t *kind = json_object_get(m, PQL_F_KIND), *time = json_object_get(m, PQL_F_TIME),
                     *closed = json_object_get(m, PQL_F_CLOSED);
        if (!json_is_object(m) || !json_is_string(kind) || !*json_string_value(kind) ||
            !opt_int(m, PQL_F_SERVER_PID) || !opt_int(m, PQL_F_PID) || !opt_int(m, PQL_F_OPENED_BY) ||
            !opt_int(m, PQL_F_CONNECTION) || (present(time) && !json_is_string(time)) ||
            (present(closed) && !json_is_boolean(closed)) || !stack_ref_ok(stacks, m, PQL_F_STACK) ||
            !stack_ref_ok(stacks, m, PQL_F_OPEN_STACK) || !site_ok(json_object_get(m, PQL_F_SITE)))
            return bad(msg, len, "a \"misuse\" entry is malformed");
    }
    return true;
}

static long int_or(const json_t *obj, const char *name, long dflt)
{
    const json_t *x = json_object_get(obj, name);
    return json_is_integer(x) ? (long)json_integer_value(x) : dflt;
}

static char *str_dup(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s ? cli_xstrdup(s) : NULL;
}

/* A report's {"function","file","line"} into f; false when there is none. */
static bool read_site(const json_t *site, struct cli_frame *f)
{
    if (!json_is_object(site))
        return false;
    *f = (struct cli_frame){0};
    f->function = str_dup(site, PQL_F_FUNCTION);
    f->file = str_dup(site, PQL_F_FILE);
    f->line = int_or(site, PQL_F_LINE, 0);
    if (!f->function && !f->file) {
        cli_frame_free(f);
        return false;
    }
    return true;
}

/* The group's site when the report names none (cli_stack_held_at): none while the headline of the open
 * stack is the program's own code; else, when a connection of the group was last used by the program's
 * own code, there. */
static void infer_site(struct cli_group *g, const json_t *root, const json_t *l)
{
    if (cli_stack_held_at(&g->stack, NULL, NULL))
        return;
    const json_t *ids = json_object_get(l, PQL_F_CONNECTIONS);
    const json_t *conns = json_object_get(root, PQL_F_CONNECTIONS);
    const json_t *stacks = json_object_get(root, PQL_F_STACKS);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_int_t id = json_integer_value(json_array_get(ids, i));
        for (size_t j = 0; j < json_array_size(conns); j++) {
            const json_t *c = json_array_get(conns, j);
            struct cli_stack last;
            if (json_integer_value(json_object_get(c, PQL_F_ID)) != id ||
                !cli_stack_from_report(stacks, c, PQL_F_LAST_STACK, &last))
                continue;
            const struct cli_frame *f = cli_stack_held_at(&g->stack, &last, NULL);
            if (f) {
                cli_frame_copy(&g->site, f);
                g->has_site = true;
                g->site_from = cli_xstrdup("last_used");
            }
            cli_stack_free(&last);
            if (g->has_site)
                return;
        }
    }
}

static void add_sites(struct cli_set *set, const json_t *root)
{
    const json_t *leaks = json_object_get(root, PQL_F_LEAKS);
    for (size_t i = 0; i < json_array_size(leaks); i++) {
        const json_t *l = json_array_get(leaks, i);
        struct cli_stack stack;
        cli_stack_from_report(json_object_get(root, PQL_F_STACKS), l, PQL_F_STACK, &stack);
        struct cli_group *g =
            cli_set_find_group(set, &stack, json_string_value(json_object_get(l, PQL_F_KIND)));
        cli_stack_free(&stack);
        if (!g || g->has_site)
            continue;
        if (read_site(json_object_get(l, PQL_F_SITE), &g->site)) {
            g->has_site = true;
            g->site_from = str_dup(l, PQL_F_SITE_FROM);
        } else {
            infer_site(g, root, l);
        }
    }
}

void cli_findings_add(struct cli_set *set, const json_t *root, const struct cli_proc *self)
{
    if (self) {
        struct cli_proc *p = (struct cli_proc *)self; /* owned by set */
        double t;
        if (cli_iso_time(json_string_value(json_object_get(root, PQL_F_TIME)), &t)) {
            p->time = t;
            p->has_time = true;
        }
        p->untracked =
            json_is_false(json_object_get(json_object_get(root, PQL_F_SETTINGS), PQL_F_TRACK_QUERIES));
    }
    add_sites(set, root);
    const json_t *misuse = json_object_get(root, PQL_F_MISUSE);
    for (size_t i = 0; i < json_array_size(misuse); i++) {
        const json_t *e = json_array_get(misuse, i);
        struct cli_misuse *m = cli_xcalloc(1, sizeof *m);
        m->kind = str_dup(e, PQL_F_KIND);
        m->connection = int_or(e, PQL_F_CONNECTION, -1);
        m->server_pid = int_or(e, PQL_F_SERVER_PID, -1);
        m->pid = int_or(e, PQL_F_PID, self ? self->pid : -1);
        m->opened_by = int_or(e, PQL_F_OPENED_BY, -1);
        m->time = str_dup(e, PQL_F_TIME);
        m->closed = json_is_true(json_object_get(e, PQL_F_CLOSED));
        m->last_use_fork = int_or(e, PQL_F_LAST_USE_FORK, -1);
        m->opener_fork = int_or(e, PQL_F_OPENER_FORK, -1);
        m->mono_ns = int_or(e, PQL_F_MONO_NS, -1);
        m->handed_off = json_is_true(json_object_get(e, CLI_F_HANDED_OFF));
        /* The opener's close note (misuse.h in the shim): its last use of a connection it closed after a
         * fork. Data for the hand-off rule, never a finding. */
        if (strcmp(m->kind ? m->kind : "", "fork") == 0 && m->pid >= 0 && m->pid == m->opened_by)
            m->handed_off = true;
        cli_stack_from_report(json_object_get(root, PQL_F_STACKS), e, PQL_F_STACK, &m->stack);
        cli_stack_from_report(json_object_get(root, PQL_F_STACKS), e, PQL_F_OPEN_STACK, &m->open_stack);
        m->has_site = read_site(json_object_get(e, PQL_F_SITE), &m->site);
        if (!m->has_site) {
            int h = cli_stack_headline(&m->stack, NULL);
            if (h >= 0) {
                cli_frame_copy(&m->site, &m->stack.f[h]);
                m->has_site = true;
            }
        }
        m->proc = self;
        cli_vec_push(&set->misuse, m);
    }
}

/* When a process used a connection, as each report can say it: the fork counts (which of the opener's
 * forks came before it; -1 when unknown), CLOCK_MONOTONIC ns (-1 when unknown), and the ISO time in
 * seconds (to the millisecond). */
struct use_mark {
    long fork, ns;
    double s;
};

/* The smaller of two known values, -1 when either is unknown. */
static long min_known(long a, long b)
{
    return a < 0 || b < 0 ? -1 : a < b ? a : b;
}

/* The children's uses of the parent's connection to server_pid: the earliest (false when there is none).
 * Its fork count is the first of the parent's forks that made one of them. */
static bool first_child_use(const struct cli_set *set, long opened_by, long server_pid,
                            struct use_mark *first)
{
    bool any = false;
    for (size_t i = 0; i < set->misuse.n; i++) {
        const struct cli_misuse *m = set->misuse.v[i];
        double mt;
        if (strcmp(m->kind, "fork") != 0 || m->opened_by != opened_by || m->server_pid != server_pid ||
            m->pid == opened_by || !cli_iso_time(m->time, &mt))
            continue;
        if (!any) {
            *first = (struct use_mark){m->opener_fork, m->mono_ns, mt};
        } else {
            first->fork = min_known(first->fork, m->opener_fork);
            first->ns = min_known(first->ns, m->mono_ns);
            first->s = mt < first->s ? mt : first->s;
        }
        any = true;
    }
    return any;
}

/* Whether the opener's last use of a connection came before a child's use of it. Certain when both
 * reports carry fork counts and its last use came before the fork that made the child. Else from the
 * monotonic clock both reports carry (a process that forked reads the precise clock at each use), else
 * from their times: a millisecond of rounding is then no later use. */
static bool used_before_child(const struct use_mark *last, const struct use_mark *child)
{
    if (last->fork >= 0 && child->fork >= 0 && last->fork < child->fork)
        return true;
    if (last->ns >= 0 && child->ns >= 0)
        return last->ns <= child->ns;
    return last->s <= child->s + 0.001;
}

/* Looks for the parent's leaked copy of m's connection; on a hand-off, takes it out of its group. */
static void resolve(struct cli_set *set, struct cli_misuse *m)
{
    struct use_mark child = {-1, -1, 0};
    if (strcmp(m->kind, "fork") != 0 || m->server_pid < 0 || m->opened_by < 0 ||
        !first_child_use(set, m->opened_by, m->server_pid, &child))
        return;
    for (size_t i = 0; i < set->groups.n; i++) {
        struct cli_group *g = set->groups.v[i];
        for (size_t j = 0; j < g->conns.n; j++) {
            struct cli_conn *c = g->conns.v[j];
            const json_t *idle = json_object_get(c->obj, PQL_F_IDLE_S);
            /* A process that followed no commands (PQLEAK_TRACK_QUERIES=0) knows no last use (its idle
             * time counts from the connect): its copy is never shown handed over before the child's use,
             * so the misuse stays a finding. */
            if (!c->proc || c->proc->pid != m->opened_by || !c->proc->has_time || c->proc->untracked ||
                !json_is_number(idle) || int_or(c->obj, PQL_F_SERVER_PID, -1) != m->server_pid)
                continue;
            /* The parent's last activity on it: its exit report's time minus the idle time. */
            struct use_mark last = {int_or(c->obj, PQL_F_LAST_USE_FORK, -1),
                                    int_or(c->obj, PQL_F_LAST_USE_NS, -1),
                                    c->proc->time - json_number_value(idle)};
            if (!used_before_child(&last, &child))
                return;
            bool closed = false;
            for (size_t k = 0; k < set->misuse.n; k++) {
                const struct cli_misuse *o = set->misuse.v[k];
                closed = closed || (strcmp(o->kind, "fork") == 0 && o->opened_by == m->opened_by &&
                                    o->server_pid == m->server_pid && o->closed);
            }
            char *target = cli_conn_target(c->obj);
            cli_vec_push(&set->handoffs,
                         cli_xasprintf("connection to %s (server pid %ld), opened by pid %ld, handed to "
                                       "child PID %ld, which %s it: not a leak of pid %ld, no misuse",
                                       target ? target : "?", m->server_pid, m->opened_by, m->pid,
                                       closed ? "used and closed" : "used", m->opened_by));
            free(target);
            cli_conn_free(c);
            memmove(&g->conns.v[j], &g->conns.v[j + 1], (g->conns.n - j - 1) * sizeof *g->conns.v);
            g->conns.n--;
            g->count = cli_count_add(g->count, -1);
            for (size_t k = 0; k < set->misuse.n; k++) {
                struct cli_misuse *o = set->misuse.v[k];
                if (strcmp(o->kind, "fork") == 0 && o->opened_by == m->opened_by &&
                    o->server_pid == m->server_pid)
                    o->handed_off = true;
            }
            return;
        }
    }
}

/* The opening process's close note for its connection to server_pid (it closed the connection itself
 * after a fork), or NULL. */
static const struct cli_misuse *close_note(const struct cli_set *set, long opened_by, long server_pid,
                                           double *t)
{
    for (size_t i = 0; i < set->misuse.n; i++) {
        const struct cli_misuse *o = set->misuse.v[i];
        if (strcmp(o->kind, "fork") == 0 && o->pid == opened_by && o->opened_by == opened_by &&
            o->server_pid == server_pid && cli_iso_time(o->time, t))
            return o;
    }
    return NULL;
}

/* A child's close of a connection its parent had stopped using and closed itself (pg_basebackup's
 * child runs the parent's atexit handler, which finishes the parent's main connection): the Terminate
 * it sent ended a session nobody used any more. No finding. */
static void resolve_close(struct cli_set *set, struct cli_misuse *m)
{
    struct use_mark last, child = {m->opener_fork, m->mono_ns, 0};
    const struct cli_misuse *note;
    if (strcmp(m->kind, "fork") != 0 || !m->closed || m->server_pid < 0 || m->pid == m->opened_by ||
        !cli_iso_time(m->time, &child.s) || !(note = close_note(set, m->opened_by, m->server_pid, &last.s)))
        return;
    last.fork = note->last_use_fork;
    last.ns = note->mono_ns;
    if (!used_before_child(&last, &child))
        return;
    m->handed_off = true;
    cli_vec_push(&set->handoffs,
                 cli_xasprintf("connection to server pid %ld, opened by pid %ld, closed by its forked child "
                               "PID %ld (at the child's exit, say) after pid %ld's last use of it; pid %ld "
                               "closed its own copy without using it again: no misuse",
                               m->server_pid, m->opened_by, m->pid, m->opened_by, m->opened_by));
}

void cli_set_finish(struct cli_set *set)
{
    if (set->finished)
        return;
    set->finished = true;
    for (size_t i = 0; i < set->misuse.n; i++) {
        struct cli_misuse *m = set->misuse.v[i];
        if (!m->handed_off)
            resolve(set, m);
        if (!m->handed_off)
            resolve_close(set, m);
    }
}
