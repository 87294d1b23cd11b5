/* Baseline suppressions (baseline.h). A rule names the innermost frame of the user's own code: its
 * function when known (a glob-escaped literal), else its source file, else its module. Rules match any
 * frame, so a name every stack passes through (main, a Python "<module>") would suppress everything:
 * such frames are named by their file instead. Command-line process only. */
#include "baseline.h"

#include "print.h"
#include "suppress.h"

#include <stdlib.h>
#include <string.h>

struct rule {
    char *text;
    long conns;
    struct cli_vec programs; /* const char *, borrowed from the set, distinct */
    bool broad;              /* no frame of the user's own code: the rule names a runtime frame */
};

static bool is_python(const struct cli_frame *f)
{
    return f->lang && strcmp(f->lang, "python") == 0;
}

/* Python code installed as a library (psycopg2 and the like, the standard library) is not the user's:
 * common/frames.h, the list the summary and the shim use too. */
static bool is_python_library(const struct cli_frame *f)
{
    return cli_frame_kind(f) == PQL_FRAME_LIBRARY;
}

/* The frame a rule should name, or NULL when the stack is empty; *broad when it is no user frame. */
static const struct cli_frame *pick_frame(const struct cli_stack *st, bool *broad)
{
    *broad = false;
    /* In an interpreter, the native frames nearest libpq belong to the driver (psycopg2's C module,
     * say); the user's code is the innermost Python frame outside installed libraries. */
    const struct cli_frame *py = NULL;
    for (size_t i = 0; i < st->n; i++) {
        if (!is_python(&st->f[i]))
            continue;
        if (!is_python_library(&st->f[i]))
            return &st->f[i];
        if (!py)
            py = &st->f[i];
    }
    if (py)
        return py;
    size_t u = cli_stack_first_user(st);
    if (u < st->n)
        return &st->f[u];
    *broad = true;
    /* Only runtime frames: the innermost one outside the shim is libpq's entry point. */
    for (size_t i = 0; i < st->n; i++)
        if (!pql_module_is_shim(st->f[i].module))
            return &st->f[i];
    return st->n ? &st->f[0] : NULL;
}

static bool is_everywhere(const char *function)
{
    return strcmp(function, "main") == 0 || function[0] == '<';
}

static char *rule_for(const struct cli_frame *f)
{
    const char *what = f->function;
    if (!what || (is_everywhere(what) && f->file))
        what = f->file;
    if (!what)
        what = f->module;
    if (!what)
        return NULL;
    char *esc = cli_glob_escape(what);
    char *r = cli_xasprintf("leak:%s", esc);
    free(esc);
    return r;
}

static void push_program(struct cli_vec *v, const char *p)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], p) == 0)
            return;
    cli_vec_push(v, (void *)p);
}

size_t cli_baseline_write(FILE *out, const struct cli_set *set)
{
    struct rule *rules = NULL;
    size_t nrules = 0, uncovered = 0;
    long covered = 0;
    for (size_t i = 0; i < set->groups.n; i++) {
        const struct cli_group *g = set->groups.v[i];
        if (g->suppressed)
            continue;
        bool broad;
        const struct cli_frame *f = pick_frame(&g->stack, &broad);
        char *text = f ? rule_for(f) : NULL;
        if (!text) {
            char n[64];
            char *where = cli_group_where(g);
            fprintf(out, "# %s leaked by %s: no stack, no rule can cover it\n",
                    cli_plural(n, sizeof n, g->count, "connection"), where);
            cli_err("%s leaked by %s have no stack; no suppression rule can cover them",
                    cli_plural(n, sizeof n, g->count, "connection"), where);
            free(where);
            uncovered++;
            continue;
        }
        size_t r;
        for (r = 0; r < nrules && strcmp(rules[r].text, text) != 0; r++) {
        }
        if (r == nrules) {
            rules = cli_xrealloc(rules, (nrules + 1) * sizeof *rules);
            rules[nrules++] = (struct rule){.text = text};
        } else {
            free(text);
        }
        rules[r].conns += g->count;
        rules[r].broad = rules[r].broad || broad;
        covered += g->count;
        for (size_t p = 0; p < g->procs.n; p++) {
            const struct cli_proc *proc = g->procs.v[p];
            push_program(&rules[r].programs, proc->program ? cli_basename(proc->program) : "?");
        }
    }
    char a[64], b[64], c[64];
    fprintf(out, "# pqleak suppressions: a baseline of %s (%s leaked), from the reports of %s.\n",
            cli_plural(a, sizeof a, (long)nrules, "leak site"),
            cli_plural(b, sizeof b, covered, "connection"),
            cli_plural(c, sizeof c, (long)set->procs.n, "process"));
    fprintf(out, "# Use: pqleak run --suppressions FILE -- COMMAND (fails only on new leak sites).\n");
    for (size_t r = 0; r < nrules; r++) {
        fprintf(out, "\n# %ld connection(s) leaked by ", rules[r].conns);
        for (size_t p = 0; p < rules[r].programs.n; p++)
            fprintf(out, "%s%s", p ? ", " : "", (const char *)rules[r].programs.v[p]);
        fputc('\n', out);
        if (rules[r].broad)
            fprintf(out, "# warning: no frame of your own code in this stack; this rule is broad\n");
        fprintf(out, "%s\n", rules[r].text);
        free(rules[r].text);
        cli_vec_free(&rules[r].programs);
    }
    free(rules);
    return uncovered;
}
