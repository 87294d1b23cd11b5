/* Suppression rules at merge time: the file format of INTERFACE.md (one "leak:PATTERN" glob a line,
 * '#' comments), matching against every frame of a group's open stack, and hit counts per rule.
 * Command-line process only. */
#ifndef CLI_SUPPRESS_H
#define CLI_SUPPRESS_H

#include "merge.h"

#include <stdbool.h>
#include <stddef.h>

struct cli_rule {
    char *text;    /* "leak:PATTERN" as written (trimmed) */
    char *pattern; /* PATTERN: points into text */
};

struct cli_rules {
    struct cli_rule *r;
    size_t n;
};

/* Reads rules from path into an empty *rules. Returns false after printing one line naming path (and
 * line number) when the file cannot be read or a line is neither a rule, a comment nor blank; *rules
 * is then empty. */
bool cli_rules_load(struct cli_rules *rules, const char *path);
void cli_rules_free(struct cli_rules *rules);

/* Marks every group not yet suppressed whose open stack has a frame (function, source file or module
 * path, each whole or its last path component) matching a rule; the first matching rule wins. */
void cli_rules_apply(const struct cli_rules *rules, struct cli_set *set);

/* One rule that suppressed something, from this file or from the shim's own marks. */
struct cli_rule_use {
    char *rule;  /* "leak:PATTERN", owned */
    long conns;  /* connections it suppressed */
    long groups; /* leak groups it suppressed */
};

/* The rules used by the suppressed groups of set, in order of first use. Returns the count; *out is
 * owned by the caller (cli_rule_uses_free). */
size_t cli_rule_uses(const struct cli_set *set, struct cli_rule_use **out);
void cli_rule_uses_free(struct cli_rule_use *u, size_t n);

/* s with the glob characters * ? [ \ escaped, so the pattern matches s literally. Caller frees. */
char *cli_glob_escape(const char *s);

#endif
