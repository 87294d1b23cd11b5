/* Suppression files: one "leak:PATTERN" a line, '#' comments, globs matched with fnmatch. */
#include "suppress.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool add_rule(struct pql_rules *r, const char *pat, size_t len)
{
    struct pql_rule *v = realloc(r->v, (r->n + 1) * sizeof(*v));
    if (!v)
        return false;
    r->v = v;
    char *p = strndup(pat, len);
    if (!p)
        return false;
    r->v[r->n].pattern = p;
    r->v[r->n].hits = 0;
    r->n++;
    return true;
}

bool pql_rules_parse(struct pql_rules *r, const char *text, const char *origin, pql_supp_warn_fn warn)
{
    int lineno = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        const char *b = line, *e = line + len;
        while (b < e && isspace((unsigned char)*b))
            b++;
        /* "leak:foo  # why": a '#' after white space starts a comment, as at the start of a line. */
        for (const char *h = b + 1; h < e; h++) {
            if (*h == '#' && isspace((unsigned char)h[-1])) {
                e = h;
                break;
            }
        }
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (b < e && *b != '#') {
            /* "leak:  foo" is the rule "foo", as the command reads it: white space after the colon is
             * not part of the pattern, which would then never match. */
            const char *p = e - b > 5 && !strncmp(b, "leak:", 5) ? b + 5 : NULL;
            while (p && p < e && isspace((unsigned char)*p))
                p++;
            if (p && p < e) {
                if (!add_rule(r, p, (size_t)(e - p)))
                    return false;
            } else if (warn) {
                char msg[512];
                snprintf(msg, sizeof(msg),
                         "%s:%d: '%.*s' is not a suppression rule (expected leak:PATTERN); ignored", origin,
                         lineno, (int)(e - b > 200 ? 200 : e - b), b);
                warn(msg);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return true;
}

bool pql_rules_load(struct pql_rules *r, const char *path, pql_supp_warn_fn warn)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        if (warn) {
            char msg[1200];
            snprintf(msg, sizeof(msg), "PQLEAK_SUPPRESSIONS='%s' cannot be read (%s); using no suppressions",
                     path, strerror(errno));
            warn(msg);
        }
        return true;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    bool ok = mem != NULL;
    char chunk[4096];
    size_t n;
    while (ok && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ok = fwrite(chunk, 1, n, mem) == n;
    fclose(f);
    if (mem)
        fclose(mem);
    if (ok)
        ok = pql_rules_parse(r, text ? text : "", path, warn);
    free(text);
    return ok;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool glob(const char *pattern, const char *s)
{
    return s && (fnmatch(pattern, s, 0) == 0 || fnmatch(pattern, base_name(s), 0) == 0);
}

bool pql_rule_matches_frame(const char *pattern, const struct pql_frame *f)
{
    return glob(pattern, f->function) || glob(pattern, f->file) || glob(pattern, f->module);
}

int pql_rules_match(const struct pql_rules *r, const struct pql_frame *const *frames, int n)
{
    for (size_t i = 0; i < r->n; i++)
        for (int j = 0; j < n; j++)
            if (frames[j] && pql_rule_matches_frame(r->v[i].pattern, frames[j]))
                return (int)i;
    return -1;
}

void pql_rules_free(struct pql_rules *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].pattern);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}
