/* The text summary (print.h), written after the command and its processes are done. Its lines start
 * with "pqleak: " so they stand out among the command's own output on stderr. Every string from a
 * report goes through cli_safe (escaped: it cannot end a line or reach the terminal as a control
 * sequence). Command-line process only. */
#include "print.h"

#include "names.h"
#include "suppress.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PIDS    8 /* per program in a "where" line; the JSON report has them all */
#define MAX_TARGETS 4

const char *cli_plural(char *buf, size_t size, long n, const char *noun)
{
    const char *suffix = n == 1 ? "" : (strcmp(noun, "process") == 0 ? "es" : "s");
    snprintf(buf, size, "%ld %s%s", n, noun, suffix);
    return buf;
}

/* Which frames are the user's own code in a view of a stack. */
enum user_rule {
    USER_NOT_RUNTIME, /* every frame but a runtime's (status's rule for native stacks) */
    USER_INTERPRETED, /* interpreted-language frames only: the C frames are the interpreter's */
    USER_APP,         /* interpreted frames of the program's own source, not of installed packages */
    USER_OWN,         /* the headline's candidates that are the program's own code (cli_print_stack) */
    USER_ALL,         /* every frame: --full-stacks */
};

static bool interpreted(const struct cli_frame *f)
{
    return f->lang && strcmp(f->lang, "c") != 0;
}

static bool is_user(const struct cli_frame *f, enum user_rule rule, bool script)
{
    switch (rule) {
    case USER_ALL:
        return true;
    case USER_OWN:
        return interpreted(f) == script && cli_frame_kind(f) == PQL_FRAME_APP &&
               !(script && pql_frame_is_test_runner(f->file));
    case USER_APP:
        return cli_frame_is_app(f);
    case USER_INTERPRETED:
        return interpreted(f);
    case USER_NOT_RUNTIME:
        break;
    }
    return !cli_frame_is_runtime(f);
}

/* Prints frames from the innermost, each run of other frames folded into one line (the frame at index
 * keep is always shown), and stops after max_user frames of the user's; returns how many frames were
 * shown. */
static size_t print_frames(FILE *out, const struct cli_stack *st, const char *indent, enum user_rule rule,
                           size_t max_user, long keep)
{
    bool script = false;
    for (size_t i = 0; i < st->n && !script; i++)
        script = interpreted(&st->f[i]);
    size_t users = 0;
    for (size_t i = 0; i < st->n;) {
        if (is_user(&st->f[i], rule, script) || (long)i == keep) {
            char *s = cli_frame_format(&st->f[i]);
            fprintf(out, "%s#%zu %s\n", indent, i, cli_safe(s));
            free(s);
            i++;
            if (++users == max_user)
                return i;
            continue;
        }
        size_t j = i;
        struct cli_vec names = {0};
        for (; j < st->n && !is_user(&st->f[j], rule, script) && (long)j != keep; j++) {
            char buf[256];
            const char *m = pql_frame_origin(st->f[j].file, st->f[j].module, st->f[j].lang, buf, sizeof buf);
            size_t k;
            for (k = 0; k < names.n && strcmp(names.v[k], m) != 0; k++) {
            }
            if (k == names.n)
                cli_vec_push(&names, cli_xstrdup(m));
        }
        fprintf(out, "%s#%zu ... %zu frame%s in ", indent, i, j - i, j - i == 1 ? "" : "s");
        for (size_t k = 0; k < names.n; k++) {
            fprintf(out, "%s%s", k ? ", " : "", cli_safe(names.v[k]));
            free(names.v[k]);
        }
        fputc('\n', out);
        cli_vec_free(&names);
        i = j;
    }
    return st->n;
}

void cli_print_stack(FILE *out, const struct cli_stack *st, const char *indent, bool full)
{
    if (st->n == 0) {
        fprintf(out, "%s(no stack)\n", indent);
        return;
    }
    /* The program's own frames and the headline; libraries, runtimes and test runners folded. */
    print_frames(out, st, indent, full ? USER_ALL : USER_OWN, SIZE_MAX, cli_stack_headline(st, NULL));
}

void cli_print_stack_head(FILE *out, const struct cli_stack *st, const char *indent, size_t user_frames)
{
    if (st->n == 0) {
        fprintf(out, "%s(no stack)\n", indent);
        return;
    }
    /* The program's own source when the stack has any; else its interpreted frames; else C. */
    enum user_rule rule = USER_NOT_RUNTIME;
    for (size_t i = 0; i < st->n && rule != USER_APP; i++)
        if (is_user(&st->f[i], USER_APP, false))
            rule = USER_APP;
        else if (is_user(&st->f[i], USER_INTERPRETED, false))
            rule = USER_INTERPRETED;
    size_t shown = print_frames(out, st, indent, rule, user_frames, -1);
    if (shown < st->n)
        fprintf(out, "%s... %zu more frame%s\n", indent, st->n - shown, st->n - shown == 1 ? "" : "s");
}

/* s, owned, replaced by its escaped copy (cli_safe). */
static char *safe_owned(char *s)
{
    char *r = cli_xstrdup(cli_safe(s));
    free(s);
    return r;
}

const struct cli_frame *cli_group_site_frame(const struct cli_group *g)
{
    return g->has_site ? &g->site : cli_stack_title(&g->stack);
}

char *cli_group_site(const struct cli_group *g)
{
    const struct cli_frame *f = cli_group_site_frame(g);
    return f ? safe_owned(cli_frame_short(f)) : cli_xstrdup("an unknown place (no stack)");
}

const char *cli_group_site_verb(const struct cli_group *g)
{
    if (g->has_site && g->site_from &&
        (strcmp(g->site_from, "last_used") == 0 || strcmp(g->site_from, "tx_stack") == 0))
        return "last used at";
    return "opened at";
}

const struct cli_frame *cli_misuse_site_frame(const struct cli_misuse *m)
{
    if (m->has_site)
        return &m->site;
    return m->stack.n ? &m->stack.f[0] : NULL;
}

char *cli_misuse_site(const struct cli_misuse *m)
{
    const struct cli_frame *f = cli_misuse_site_frame(m);
    return f ? safe_owned(cli_frame_short(f)) : cli_xstrdup("an unknown place (no stack)");
}

size_t cli_misuse_groups(const struct cli_set *set, struct cli_misuse_group **out)
{
    struct cli_misuse_group *g = NULL;
    size_t n = 0;
    for (size_t i = 0; i < set->misuse.n; i++) {
        const struct cli_misuse *m = set->misuse.v[i];
        if (m->handed_off)
            continue;
        char *site = cli_misuse_site(m);
        size_t k = 0;
        while (k < n && (strcmp(g[k].first->kind, m->kind) != 0 || strcmp(g[k].site, site) != 0))
            k++;
        if (k == n) {
            g = cli_xrealloc(g, (n + 1) * sizeof *g);
            g[n++] = (struct cli_misuse_group){.first = m, .site = site};
        } else {
            free(site);
        }
        cli_vec_push(&g[k].members, (void *)m);
    }
    *out = g;
    return n;
}

void cli_misuse_groups_free(struct cli_misuse_group *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(g[i].site);
        cli_vec_free(&g[i].members);
    }
    free(g);
}

/* Appends s to the growing string *buf. */
static void cat(char **buf, const char *s)
{
    size_t a = *buf ? strlen(*buf) : 0, b = strlen(s);
    *buf = cli_xrealloc(*buf, a + b + 1);
    memcpy(*buf + a, s, b + 1);
}

char *cli_group_where(const struct cli_group *g)
{
    char *out = NULL;
    bool *done = cli_xcalloc(g->procs.n, sizeof *done);
    for (size_t i = 0; i < g->procs.n; i++) {
        if (done[i])
            continue;
        const struct cli_proc *p = g->procs.v[i];
        const char *prog = p->program ? p->program : "?";
        /* One program's pids together: a test suite runs the same binary hundreds of times. */
        long pids[MAX_PIDS];
        size_t shown = 0, total = 0;
        for (size_t j = i; j < g->procs.n; j++) {
            const struct cli_proc *q = g->procs.v[j];
            if (done[j] || strcmp(q->program ? q->program : "?", prog) != 0)
                continue;
            done[j] = true;
            total++;
            if (q->pid >= 0 && shown < MAX_PIDS)
                pids[shown++] = q->pid;
        }
        if (out)
            cat(&out, ", ");
        cat(&out, prog);
        char num[64];
        for (size_t k = 0; k < shown; k++) {
            snprintf(num, sizeof num, "%s%ld", k ? ", " : (total == 1 ? " (pid " : " (pids "), pids[k]);
            cat(&out, num);
        }
        if (total > shown) {
            snprintf(num, sizeof num, "%s%zu %s", shown ? " and " : " (", total - shown,
                     shown ? "more" : (total - shown == 1 ? "process" : "processes"));
            cat(&out, num);
        }
        cat(&out, ")");
    }
    free(done);
    return out ? safe_owned(out) : cli_xstrdup("?");
}

static const char *kind_words(const char *kind, bool counted)
{
    if (strcmp(kind, PQL_KIND_UNCLOSED) == 0)
        return "not closed before exit";
    if (strcmp(kind, PQL_KIND_TEARDOWN) == 0)
        return "closed by the language runtime's teardown with work in flight, which was rolled back";
    if (strcmp(kind, PQL_KIND_HELD) == 0)
        return counted ? "closed by the language runtime's teardown while idle; a leak with --strict"
                       : "closed by the language runtime's teardown while idle; a leak only with --strict";
    return "a kind this version does not know";
}

void cli_group_strings(const struct cli_group *g, const char *within, const char *key, struct cli_vec *out)
{
    for (size_t i = 0; i < g->conns.n; i++) {
        const struct cli_conn *c = g->conns.v[i];
        const char *a =
            json_string_value(json_object_get(within ? json_object_get(c->obj, within) : c->obj, key));
        size_t k;
        for (k = 0; a && k < out->n && strcmp(out->v[k], a) != 0; k++) {
        }
        if (a && *a && k == out->n)
            cli_vec_push(out, (void *)a);
    }
}

/* "app, worker": the strings of cli_group_strings joined, or NULL when there are none. Caller frees. */
static char *conn_strings(const struct cli_group *g, const char *within, const char *key)
{
    char *out = NULL;
    struct cli_vec seen = {0};
    cli_group_strings(g, within, key, &seen);
    for (size_t i = 0; i < seen.n; i++) {
        if (out)
            cat(&out, ", ");
        cat(&out, seen.v[i]);
    }
    cli_vec_free(&seen);
    return out;
}

static void print_group(FILE *out, const struct cli_group *g, bool counted, bool full)
{
    char n[64];
    char *site = cli_group_site(g);
    char *where = cli_group_where(g);
    bool held = strcmp(g->kind, PQL_KIND_HELD) == 0;
    fprintf(out, "pqleak: %s %s (%s: %s), %s %s\n", cli_plural(n, sizeof n, g->count, "connection"),
            held ? "held until exit" : "leaked", cli_safe(g->kind), kind_words(g->kind, counted),
            cli_group_site_verb(g), site);
    fprintf(out, "    in: %s\n", where);
    if (g->targets.n) {
        fprintf(out, "    to:");
        for (size_t i = 0; i < g->targets.n && i < MAX_TARGETS; i++)
            fprintf(out, "%s %s", i ? "," : "", cli_safe(g->targets.v[i]));
        if (g->targets.n > MAX_TARGETS)
            fprintf(out, " and %zu more", g->targets.n - MAX_TARGETS);
        fputc('\n', out);
    }
    char *apps = conn_strings(g, PQL_F_TARGET, PQL_F_APPLICATION_NAME);
    if (apps)
        fprintf(out, "    application_name: %s\n", cli_safe(apps));
    free(apps);
    /* Under pytest, the tests that opened the connections and began their transactions. */
    char *tests = conn_strings(g, NULL, PQL_F_TEST), *tx_tests = conn_strings(g, NULL, PQL_F_TX_TEST);
    if (tests)
        fprintf(out, "    test: %s\n", tests);
    if (tx_tests)
        fprintf(out, "    transaction began in test: %s\n", tx_tests);
    free(tests);
    free(tx_tests);
    cli_print_group_stacks(out, g, "    ", full);
    fputc('\n', out);
    free(site);
    free(where);
}

void cli_print_misuse_stacks(FILE *out, const struct cli_misuse *m, const char *indent, bool full)
{
    char *more = cli_xasprintf("%s  ", indent);
    if (m->server_pid >= 0)
        fprintf(out, "%sto: server pid %ld\n", indent, m->server_pid);
    fprintf(out, "%sused at:\n", indent);
    cli_print_stack(out, &m->stack, more, full);
    fprintf(out, "%sopened at:\n", indent);
    cli_print_stack(out, &m->open_stack, more, full);
    free(more);
}

void cli_print_group_stacks(FILE *out, const struct cli_group *g, const char *indent, bool full)
{
    char *more = cli_xasprintf("%s  ", indent);
    fprintf(out, "%sopened at:\n", indent);
    cli_print_stack(out, &g->stack, more, full);
    if (g->has_tx) {
        fprintf(out, "%stransaction began at:\n", indent);
        cli_print_stack(out, &g->tx, more, full);
    }
    /* Where the connection was last checked out or used, when the site names it. */
    if (g->has_site && g->site_from && strcmp(g->site_from, "last_used") == 0) {
        for (size_t i = 0; i < g->conns.n; i++) {
            const struct cli_conn *c = g->conns.v[i];
            if (c->has_last) {
                fprintf(out, "%slast used at:\n", indent);
                cli_print_stack(out, &c->last, more, full);
                break;
            }
        }
    }
    free(more);
}

static const char *misuse_words(const struct cli_misuse *m)
{
    if (strcmp(m->kind, "fork") == 0)
        return m->closed ? "closed by a forked child that did not open it (the parent's session ends too)"
                         : "used by a forked child that did not open it (parent and child share one session)";
    if (strcmp(m->kind, "threads") == 0)
        return "used by two threads at once";
    return "misused in a way this version does not know";
}

/* Whether a fork misuse's opening process followed no commands, so that no fork hand-off could be shown
 * (findings.c). */
static bool untracked_opener(const struct cli_set *set, const struct cli_misuse *m)
{
    if (strcmp(m->kind, "fork") != 0)
        return false;
    for (size_t i = 0; i < set->procs.n; i++) {
        const struct cli_proc *p = set->procs.v[i];
        if (p->pid == m->opened_by && p->untracked)
            return true;
    }
    return false;
}

/* The misuse findings, one block per kind and site, with how many times and in which processes. */
static void print_misuse(FILE *out, const struct cli_set *set, bool full)
{
    struct cli_misuse_group *groups;
    size_t ngroups = cli_misuse_groups(set, &groups);
    for (size_t i = 0; i < ngroups; i++) {
        const struct cli_misuse *m = groups[i].first;
        size_t times = groups[i].members.n;
        char *pids = NULL;
        for (size_t j = 0; j < times && j < MAX_PIDS; j++) {
            const struct cli_misuse *o = groups[i].members.v[j];
            char num[96];
            snprintf(num, sizeof num, "%spid %ld (opened by pid %ld)", pids ? ", " : "", o->pid,
                     o->opened_by);
            cat(&pids, num);
        }
        fprintf(out, "pqleak: connection misuse (%s: %s), used at %s\n", cli_safe(m->kind), misuse_words(m),
                groups[i].site);
        fprintf(out, "    in: %s%s\n", pids ? pids : "?", times > MAX_PIDS ? " and others" : "");
        if (times > 1)
            fprintf(out, "    %zu times\n", times);
        if (untracked_opener(set, m))
            fprintf(
                out,
                "    pid %ld followed no commands (PQLEAK_TRACK_QUERIES=0): whether it had stopped using the "
                "connection before its child did (a fork hand-off) is unknown\n",
                m->opened_by);
        cli_print_misuse_stacks(out, m, "    ", full);
        fputc('\n', out);
        free(pids);
    }
    cli_misuse_groups_free(groups, ngroups);
}

void cli_print_summary(FILE *out, const struct cli_set *set, bool strict)
{
    long leaked = 0, held = 0;
    size_t groups = 0, suppressed = 0, held_groups = 0;
    /* Failing groups first, so the reason for a red build is at the top. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < set->groups.n; i++) {
            const struct cli_group *g = set->groups.v[i];
            bool counted = cli_group_counts(g, strict);
            if (counted != (pass == 0) || g->suppressed || g->count <= 0)
                continue;
            print_group(out, g, counted, set->full_stacks);
        }
    }
    print_misuse(out, set, set->full_stacks);
    for (size_t i = 0; i < set->handoffs.n; i++)
        fprintf(out, "pqleak: fork hand-off: %s\n", cli_safe(set->handoffs.v[i]));
    for (size_t i = 0; i < set->groups.n; i++) {
        const struct cli_group *g = set->groups.v[i];
        bool is_leak = strict || strcmp(g->kind, PQL_KIND_HELD) != 0;
        if (g->suppressed) {
            char n[64];
            char *site = cli_group_site(g);
            char *where = cli_group_where(g);
            fprintf(out, "pqleak: suppressed: %s (%s) %s %s in %s, by %s\n",
                    cli_plural(n, sizeof n, g->count, "connection"), cli_safe(g->kind),
                    cli_group_site_verb(g), site, where,
                    g->rule ? cli_safe(g->rule) : "a rule the report does not name");
            free(site);
            free(where);
        }
        if (g->count <= 0)
            continue; /* nothing left in it (count 0, or handed to a child) */
        if (is_leak) {
            leaked = cli_count_add(leaked, g->count);
            groups++;
            suppressed += g->suppressed;
        } else if (!g->suppressed) {
            held = cli_count_add(held, g->count);
            held_groups++;
        }
    }

    struct cli_rule_use *uses;
    size_t nuses = cli_rule_uses(set, &uses);
    for (size_t i = 0; i < nuses; i++) {
        char a[64], b[64];
        fprintf(out, "pqleak: suppression %s matched %s in %s\n", cli_safe(uses[i].rule),
                cli_plural(a, sizeof a, uses[i].conns, "connection"),
                cli_plural(b, sizeof b, uses[i].groups, "group"));
    }
    cli_rule_uses_free(uses, nuses);

    char a[64], b[64], c[64];
    cli_plural(c, sizeof c, (long)set->procs.n, "process");
    if (groups == 0)
        fprintf(out, "pqleak: no connection leaks in %s", c);
    else if (suppressed)
        fprintf(out, "pqleak: %s leaked in %s (%zu suppressed) across %s",
                cli_plural(a, sizeof a, leaked, "connection"), cli_plural(b, sizeof b, (long)groups, "group"),
                suppressed, c);
    else
        fprintf(out, "pqleak: %s leaked in %s across %s", cli_plural(a, sizeof a, leaked, "connection"),
                cli_plural(b, sizeof b, (long)groups, "group"), c);
    if (held)
        fprintf(out, "; %s held until exit (not counted; --strict counts them)",
                cli_plural(a, sizeof a, held, "connection"));
    long misused = (long)cli_set_misuse_count(set);
    if (misused)
        fprintf(out, "; %s", cli_plural(a, sizeof a, misused, "connection misuse"));
    fputc('\n', out);
}
