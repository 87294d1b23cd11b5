/* Suppressions at merge time (suppress.h). The shim applies the same file in each process, read by the
 * same parser (common/rules.c); applying it again here also covers reports written without it, and
 * lets `pqleak report --suppressions` try a baseline on saved reports. Command-line process only. */
#include "suppress.h"

#include <stdlib.h>
#include <string.h>

bool cli_rules_load(struct pql_rules *rules, const char *path)
{
    struct pql_rules_error err;
    if (pql_rules_load(rules, path, &err))
        return true;
    cli_err("%s", err.msg);
    return false;
}

bool cli_rules_load_all(struct pql_rules *rules, const char *const *paths, size_t n, char **text)
{
    *rules = (struct pql_rules){0};
    char *all = cli_xstrdup("");
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        struct pql_rules one;
        if (!cli_rules_load(&one, paths[i])) {
            free(all);
            return false;
        }
        for (size_t r = 0; r < one.n; r++) {
            size_t add = strlen(one.v[r].text);
            all = cli_xrealloc(all, len + add + 2);
            memcpy(all + len, one.v[r].text, add);
            len += add;
            all[len++] = '\n';
            all[len] = '\0';
        }
        pql_rules_free(&one);
    }
    /* The shim refuses a larger file; refuse it here, before anything runs. */
    struct pql_rules_error err;
    if (len > PQL_RULES_FILE_MAX) {
        cli_err("--suppressions: the files hold %zu bytes of rules together, more than %d", len,
                PQL_RULES_FILE_MAX);
    } else if (pql_rules_parse(rules, all, len, "--suppressions", &err)) {
        if (text)
            *text = all;
        else
            free(all);
        return true;
    } else {
        cli_err("%s", err.msg);
    }
    free(all);
    return false;
}

static bool match_stack(const struct pql_rule *rule, const struct cli_stack *st)
{
    for (size_t i = 0; i < st->n; i++) {
        const struct cli_frame *f = &st->f[i];
        if (pql_rule_matches_frame(rule, f->function, f->file, f->module))
            return true;
    }
    return false;
}

/* As the shim matches its own groups (src/output/rmodel.c): a leak: rule any frame of the open stack or
 * the site (a baseline names where a pool's connection was last used when its open stack has no frame
 * of the program's own code), a tx: rule any frame of the transaction stack. */
static bool match_group(const struct pql_rule *rule, const struct cli_group *grp)
{
    if (rule->stack == PQL_RULE_TX)
        return grp->has_tx && match_stack(rule, &grp->tx);
    return match_stack(rule, &grp->stack) ||
           (grp->has_site && pql_rule_matches_frame(rule, grp->site.function, grp->site.file, NULL));
}

void cli_rules_apply(const struct pql_rules *rules, struct cli_set *set)
{
    for (size_t g = 0; g < set->groups.n; g++) {
        struct cli_group *grp = set->groups.v[g];
        if (grp->suppressed)
            continue;
        for (size_t r = 0; r < rules->n; r++) {
            if (match_group(&rules->v[r], grp)) {
                grp->suppressed = true;
                grp->by_shim = false;
                free(grp->rule);
                grp->rule = cli_xstrdup(rules->v[r].text);
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
        char *text = grp->rule && strncmp(r, "leak:", 5) != 0 && strncmp(r, "tx:", 3) != 0
                         ? cli_xasprintf("leak:%s", r)
                         : cli_xstrdup(r);
        size_t i;
        for (i = 0; i < n && strcmp(u[i].rule, text) != 0; i++) {
        }
        if (i == n) {
            u = cli_xrealloc(u, (n + 1) * sizeof *u);
            u[n++] = (struct cli_rule_use){.rule = text};
        } else {
            free(text);
        }
        u[i].conns = cli_count_add(u[i].conns, grp->count);
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
        if (strchr("*?[\\@", *s))
            *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    return out;
}
