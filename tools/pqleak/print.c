/* The text summary (print.h), written after the command and its processes are done. Its lines start
 * with "pqleak: " so they stand out among the command's own output on stderr. Command-line process
 * only. */
#include "print.h"

#include "names.h"
#include "suppress.h"

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
    USER_NOT_RUNTIME, /* every frame but a runtime's (cli_print_stack's rule) */
    USER_INTERPRETED, /* interpreted-language frames only: the C frames are the interpreter's */
    USER_APP,         /* interpreted frames of the program's own source, not of installed packages */
};

static bool is_user(const struct cli_frame *f, enum user_rule rule)
{
    switch (rule) {
    case USER_APP:
        return cli_frame_is_app(f);
    case USER_INTERPRETED:
        return f->lang && strcmp(f->lang, "c") != 0;
    case USER_NOT_RUNTIME:
        break;
    }
    return !cli_frame_is_runtime(f);
}

/* Prints frames from the innermost, each run of other frames folded into one line, and stops after
 * max_user frames of the user's; returns how many frames were shown. */
static size_t print_frames(FILE *out, const struct cli_stack *st, const char *indent, enum user_rule rule,
                           size_t max_user)
{
    size_t users = 0;
    for (size_t i = 0; i < st->n;) {
        if (is_user(&st->f[i], rule)) {
            char *s = cli_frame_format(&st->f[i]);
            fprintf(out, "%s#%zu %s\n", indent, i, s);
            free(s);
            i++;
            if (++users == max_user)
                return i;
            continue;
        }
        size_t j = i;
        struct cli_vec names = {0};
        for (; j < st->n && !is_user(&st->f[j], rule); j++) {
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
            fprintf(out, "%s%s", k ? ", " : "", (const char *)names.v[k]);
            free(names.v[k]);
        }
        fputc('\n', out);
        cli_vec_free(&names);
        i = j;
    }
    return st->n;
}

void cli_print_stack(FILE *out, const struct cli_stack *st, const char *indent)
{
    if (st->n == 0) {
        fprintf(out, "%s(no stack)\n", indent);
        return;
    }
    print_frames(out, st, indent, USER_NOT_RUNTIME, SIZE_MAX);
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
        if (is_user(&st->f[i], USER_APP))
            rule = USER_APP;
        else if (is_user(&st->f[i], USER_INTERPRETED))
            rule = USER_INTERPRETED;
    size_t shown = print_frames(out, st, indent, rule, user_frames);
    if (shown < st->n)
        fprintf(out, "%s... %zu more frame%s\n", indent, st->n - shown, st->n - shown == 1 ? "" : "s");
}

char *cli_group_site(const struct cli_group *g)
{
    size_t u = cli_stack_first_user(&g->stack);
    if (u < g->stack.n)
        return cli_frame_short(&g->stack.f[u]);
    if (g->stack.n)
        return cli_frame_short(&g->stack.f[0]);
    return cli_xstrdup("an unknown place (no stack)");
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
    return out ? out : cli_xstrdup("?");
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

static void print_group(FILE *out, const struct cli_group *g, bool counted)
{
    char n[64];
    char *site = cli_group_site(g);
    char *where = cli_group_where(g);
    bool held = strcmp(g->kind, PQL_KIND_HELD) == 0;
    fprintf(out, "pqleak: %s %s (%s: %s), opened at %s\n", cli_plural(n, sizeof n, g->count, "connection"),
            held ? "held until exit" : "leaked", g->kind, kind_words(g->kind, counted), site);
    fprintf(out, "    in: %s\n", where);
    if (g->targets.n) {
        fprintf(out, "    to:");
        for (size_t i = 0; i < g->targets.n && i < MAX_TARGETS; i++)
            fprintf(out, "%s %s", i ? "," : "", (const char *)g->targets.v[i]);
        if (g->targets.n > MAX_TARGETS)
            fprintf(out, " and %zu more", g->targets.n - MAX_TARGETS);
        fputc('\n', out);
    }
    fprintf(out, "    opened at:\n");
    cli_print_stack(out, &g->stack, "      ");
    if (g->has_tx) {
        fprintf(out, "    transaction began at:\n");
        cli_print_stack(out, &g->tx, "      ");
    }
    fputc('\n', out);
    free(site);
    free(where);
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
            if (counted != (pass == 0) || g->suppressed)
                continue;
            print_group(out, g, counted);
        }
    }
    for (size_t i = 0; i < set->groups.n; i++) {
        const struct cli_group *g = set->groups.v[i];
        bool is_leak = strict || strcmp(g->kind, PQL_KIND_HELD) != 0;
        if (g->suppressed) {
            char n[64];
            char *site = cli_group_site(g);
            char *where = cli_group_where(g);
            fprintf(out, "pqleak: suppressed: %s (%s) opened at %s in %s, by %s\n",
                    cli_plural(n, sizeof n, g->count, "connection"), g->kind, site, where,
                    g->rule ? g->rule : "a rule the report does not name");
            free(site);
            free(where);
        }
        if (is_leak) {
            leaked += g->count;
            groups++;
            suppressed += g->suppressed;
        } else if (!g->suppressed) {
            held += g->count;
            held_groups++;
        }
    }

    struct cli_rule_use *uses;
    size_t nuses = cli_rule_uses(set, &uses);
    for (size_t i = 0; i < nuses; i++) {
        char a[64], b[64];
        fprintf(out, "pqleak: suppression %s matched %s in %s\n", uses[i].rule,
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
    fputc('\n', out);
}
