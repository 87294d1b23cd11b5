/* Suppression rules at merge time: the file format of docs/suppressions.md, read by the one parser the shim
 * uses too (common/rules.h), matching against every frame of a group's open stack, and hit counts per
 * rule. Command-line process only. */
#ifndef CLI_SUPPRESS_H
#define CLI_SUPPRESS_H

#include "merge.h"
#include "rules.h"

#include <stdbool.h>
#include <stddef.h>

/* Reads rules from path (pql_rules_load). Returns false after printing its one line naming path (and
 * line number) when the file cannot be read or any line is malformed; *rules is then empty. */
bool cli_rules_load(struct pql_rules *rules, const char *path);

/* Reads the n files of paths in order (each checked as cli_rules_load does) into one list, as if they
 * were one file: several --suppressions add up, as Valgrind's do. When text is not NULL, *text gets
 * that file (one "leak:PATTERN" or "tx:PATTERN" line a rule; caller frees) for the shim to read. Returns
 * false after printing one line; *rules is then empty. */
bool cli_rules_load_all(struct pql_rules *rules, const char *const *paths, size_t n, char **text);

/* Marks every group not yet suppressed that a rule matches (pql_rule_matches_frame): a leak: rule a
 * frame of its open stack or its site, a tx: rule a frame of its transaction stack; the first matching
 * rule wins. */
void cli_rules_apply(const struct pql_rules *rules, struct cli_set *set);

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

/* s with the glob characters * ? [ \ and the rules' @ escaped, so the pattern matches s literally.
 * Caller frees. */
char *cli_glob_escape(const char *s);

#endif
