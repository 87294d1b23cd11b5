/* Suppression rules ("leak:PATTERN", glob) matched against symbolized frames at report time.
 * Loaded on the reporting thread; not signal-safe. */
#ifndef PQL_SUPPRESS_H
#define PQL_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "symbolize.h"

struct pql_rule {
    char *pattern; /* without the "leak:" prefix */
    unsigned hits; /* connections suppressed by this rule */
};

struct pql_rules {
    struct pql_rule *v;
    size_t n;
};

typedef void (*pql_supp_warn_fn)(const char *line);

/* Parses suppressions text. Malformed lines are skipped with one warning each naming origin:line.
 * Returns false only when out of memory. */
bool pql_rules_parse(struct pql_rules *r, const char *text, const char *origin, pql_supp_warn_fn warn);

/* Loads a file; an unreadable file gives one warning and no rules. */
bool pql_rules_load(struct pql_rules *r, const char *path, pql_supp_warn_fn warn);

/* True when a pattern matches the frame's function, source file or module path, or the base name of
 * the file or module. */
bool pql_rule_matches_frame(const char *pattern, const struct pql_frame *f);

/* Index of the first rule matching any of the n frames, or -1. */
int pql_rules_match(const struct pql_rules *r, const struct pql_frame *const *frames, int n);

void pql_rules_free(struct pql_rules *r);

#endif
