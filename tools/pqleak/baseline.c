/* Baseline suppressions (baseline.h). A rule names a group's headline when it is the program's own
 * code (common/frames.h, the rule of the summary and the shim), else where its connections were last
 * used, else the headline library frame, each said in a comment: its function in its source file
 * ("FUNCTION@FILE", glob-escaped, the file's base name) when both are known, so that the same name in
 * another file stays a leak; else its function, else its source file, else its module. Rules match any
 * frame, so a name every stack passes through (main, a Python "<module>") would suppress everything:
 * such frames are named by their file instead. Bytes a rule line cannot hold become glob wildcards
 * (rule_glob): a newline in a function name or path can never start a line of its own, and the file
 * reads back as the same rules. Comments quote names escaped (cli_safe). Command-line process only. */
#include "baseline.h"

#include "escape.h"
#include "merge.h"
#include "path.h"
#include "print.h"
#include "suppress.h"

#include <stdlib.h>
#include <string.h>

struct rule {
    char *text;
    char *site; /* "function (file:line)" of the frame named, with how it was chosen; owned */
    long conns;
    struct cli_vec programs; /* const char *, borrowed from the set, distinct */
    enum pick { PICK_OWN, PICK_LAST_USED, PICK_LIBRARY, PICK_RUNTIME } pick;
};

/* The frame a rule should name, or NULL when the stack is empty: the group's headline as the summary
 * names it (cli_group_site: the report's site, else the headline of the open stack) when it is the
 * program's own code or where its connections were last used; else the headline library frame (a
 * driver's, libpqxx's); else the innermost frame outside the shim. */
static const struct cli_frame *pick_frame(const struct cli_group *g, enum pick *pick)
{
    bool own;
    int h = cli_stack_headline(&g->stack, &own);
    if (g->has_site && g->site_from && strcmp(g->site_from, "stack") != 0) {
        *pick = PICK_LAST_USED;
        return &g->site;
    }
    if (h >= 0) {
        *pick = own ? PICK_OWN : PICK_LIBRARY;
        /* The report's site is the same frame, when it names one; it lacks the module. */
        return &g->stack.f[h];
    }
    if (g->has_site) {
        *pick = PICK_LIBRARY;
        return &g->site;
    }
    *pick = PICK_RUNTIME;
    for (size_t i = 0; i < g->stack.n; i++)
        if (!pql_module_is_shim(g->stack.f[i].module))
            return &g->stack.f[i];
    return g->stack.n ? &g->stack.f[0] : NULL;
}

static bool is_everywhere(const char *function)
{
    return strcmp(function, "main") == 0 || function[0] == '<';
}

/* The glob of a name, for a rule line: glob-escaped (cli_glob_escape). The rule syntax
 * (common/rules.h) ends a line at '\n', trims white space around the pattern and starts a comment at
 * " #": a control byte, and a space at either end or before '#', becomes '?' (one byte, one character
 * in any locale); a C1 control or invalid UTF-8 becomes '*' (one character in a UTF-8 locale, one or
 * more bytes in the C locale). A space inside a C++ name stays. Caller frees. */
static char *rule_glob(const char *name)
{
    char *esc = cli_glob_escape(name);
    size_t len = strlen(esc), o = 0;
    char *out = cli_xmalloc(len + 1);
    for (size_t i = 0; i < len;) {
        bool escape;
        size_t n = pql_escape_unit(esc, len, i, false, &escape);
        char c = esc[i];
        if (escape)
            out[o++] = (unsigned char)c < 0x80 ? '?' : '*';
        else if (c == ' ' && (i == 0 || i + 1 == len || esc[i + 1] == '#'))
            out[o++] = '?';
        else
            for (size_t k = 0; k < n; k++)
                out[o++] = esc[i + k];
        i += n;
    }
    out[o] = '\0';
    free(esc);
    return out;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* The rule naming frame f, or NULL when f has no name at all. A function with a source file is
 * "leak:FUNCTION@FILE", FILE the file's base name: the same function name in another file is not
 * covered. Else one field: a name every stack passes through (main, <module>) gives way to its file;
 * no function, the file; neither, the module. Caller frees. */
static char *rule_for(const struct cli_frame *f)
{
    const char *fn = nonempty(f->function), *file = nonempty(f->file);
    const char *base = file ? nonempty(pql_base_name(file)) : NULL;
    if (fn && base && !is_everywhere(fn)) {
        char *gfn = rule_glob(fn), *gbase = rule_glob(base);
        char *r = cli_xasprintf("leak:%s@%s", gfn, gbase);
        free(gfn);
        free(gbase);
        return r;
    }
    const char *what = fn;
    if (!what || (is_everywhere(what) && file))
        what = file;
    /* A library's file name ("pqxx/connection.cxx") is as narrow as its function; its module never. */
    if (!what)
        what = nonempty(f->module);
    if (!what)
        return NULL;
    char *glob = rule_glob(what);
    char *r = cli_xasprintf("leak:%s", glob);
    free(glob);
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
        if (g->suppressed || g->count <= 0)
            continue; /* nothing to cover: count 0, or handed to a child */
        enum pick pick;
        const struct cli_frame *f = pick_frame(g, &pick);
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
            rules[nrules++] = (struct rule){.text = text, .site = cli_frame_short(f), .pick = pick};
        } else {
            free(text);
        }
        rules[r].conns = cli_count_add(rules[r].conns, g->count);
        if (pick > rules[r].pick)
            rules[r].pick = pick;
        covered = cli_count_add(covered, g->count);
        for (size_t p = 0; p < g->procs.n; p++) {
            const struct cli_proc *proc = g->procs.v[p];
            push_program(&rules[r].programs, proc->program ? pql_base_name(proc->program) : "?");
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
            fprintf(out, "%s%s", p ? ", " : "", cli_safe(rules[r].programs.v[p]));
        fputc('\n', out);
        switch (rules[r].pick) {
        case PICK_OWN:
            fprintf(out, "# opened at %s\n", cli_safe(rules[r].site));
            break;
        case PICK_LAST_USED:
            fprintf(out,
                    "# last used at %s (where it was opened names no code of yours, or other code used it "
                    "later)\n",
                    cli_safe(rules[r].site));
            break;
        case PICK_LIBRARY:
            fprintf(out,
                    "# no frame of your own code in this stack: the rule names the library frame %s, and "
                    "hides every leak through it; narrow it if you can\n",
                    cli_safe(rules[r].site));
            break;
        case PICK_RUNTIME:
            fprintf(
                out,
                "# warning: no frame of your own code or a library's in this stack; this rule is broad\n");
            break;
        }
        fprintf(out, "%s\n", rules[r].text);
        free(rules[r].text);
        free(rules[r].site);
        cli_vec_free(&rules[r].programs);
    }
    free(rules);
    size_t misuse = cli_set_misuse_count(set);
    if (misuse)
        fprintf(out, "\n# %zu connection misuse finding(s) in these reports: no rule covers misuse; fix it\n",
                misuse);
    return uncovered;
}
