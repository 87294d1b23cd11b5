/* Suppressions at merge time (suppress.h). The shim applies the same file in each process; applying it
 * again here also covers reports written without it, and lets `pqleak report --suppressions` try a
 * baseline on saved reports. Command-line process only. */
#include "suppress.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_rules_free(struct cli_rules *rules)
{
    for (size_t i = 0; i < rules->n; i++)
        free(rules->r[i].text);
    free(rules->r);
    rules->r = NULL;
    rules->n = 0;
}

/* Cuts a comment: '#' at the start or after white space (a '#' inside a pattern stays). */
static void cut_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

bool cli_rules_load(struct cli_rules *rules, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        cli_err("%s: cannot read suppressions: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    bool ok = true;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        cut_comment(line);
        char *s = trim(line);
        if (!*s)
            continue;
        char *pat = strncmp(s, "leak:", 5) == 0 ? trim(s + 5) : NULL;
        if (!pat || !*pat) {
            cli_err("%s:%ld: not a suppression rule: \"%.200s\" (expected leak:PATTERN)", path, lineno, s);
            ok = false;
            break;
        }
        /* Keep the rule in the canonical "leak:PATTERN" form so hit counts match the shim's marks. */
        char *text = cli_xasprintf("leak:%s", pat);
        rules->r = cli_xrealloc(rules->r, (rules->n + 1) * sizeof *rules->r);
        rules->r[rules->n].text = text;
        rules->r[rules->n].pattern = text + 5;
        rules->n++;
    }
    if (ok && ferror(fp)) {
        cli_err("%s: cannot read suppressions: %s", path, strerror(errno));
        ok = false;
    }
    free(line);
    fclose(fp);
    if (!ok)
        cli_rules_free(rules);
    return ok;
}

static bool match_str(const char *pattern, const char *s)
{
    if (!s)
        return false;
    if (fnmatch(pattern, s, 0) == 0)
        return true;
    const char *base = strrchr(s, '/');
    return base && fnmatch(pattern, base + 1, 0) == 0;
}

static bool match_stack(const char *pattern, const struct cli_stack *st)
{
    for (size_t i = 0; i < st->n; i++) {
        const struct cli_frame *f = &st->f[i];
        if (match_str(pattern, f->function) || match_str(pattern, f->file) || match_str(pattern, f->module))
            return true;
    }
    return false;
}

void cli_rules_apply(const struct cli_rules *rules, struct cli_set *set)
{
    for (size_t g = 0; g < set->groups.n; g++) {
        struct cli_group *grp = set->groups.v[g];
        if (grp->suppressed)
            continue;
        for (size_t r = 0; r < rules->n; r++) {
            if (match_stack(rules->r[r].pattern, &grp->stack)) {
                grp->suppressed = true;
                grp->by_shim = false;
                free(grp->rule);
                grp->rule = cli_xstrdup(rules->r[r].text);
                break;
            }
        }
    }
}

size_t cli_rule_uses(const struct cli_set *set, struct cli_rule_use **out)
{
    struct cli_rule_use *u = NULL;
    size_t n = 0;
    for (size_t g = 0; g < set->groups.n; g++) {
        const struct cli_group *grp = set->groups.v[g];
        if (!grp->suppressed)
            continue;
        /* The shim may name a rule by its pattern alone; show every rule the same way. */
        const char *r = grp->rule ? grp->rule : "(rule not named)";
        char *text = grp->rule && strncmp(r, "leak:", 5) != 0 ? cli_xasprintf("leak:%s", r) : cli_xstrdup(r);
        size_t i;
        for (i = 0; i < n && strcmp(u[i].rule, text) != 0; i++) {
        }
        if (i == n) {
            u = cli_xrealloc(u, (n + 1) * sizeof *u);
            u[n++] = (struct cli_rule_use){.rule = text};
        } else {
            free(text);
        }
        u[i].conns += grp->count;
        u[i].groups++;
    }
    *out = u;
    return n;
}

void cli_rule_uses_free(struct cli_rule_use *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(u[i].rule);
    free(u);
}

char *cli_glob_escape(const char *s)
{
    char *out = cli_xmalloc(2 * strlen(s) + 1), *p = out;
    for (; *s; s++) {
        if (strchr("*?[\\", *s))
            *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    return out;
}
