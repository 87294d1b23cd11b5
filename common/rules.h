/* Suppression rules, the one parser and matcher for the shim and the command: one rule a line,
 * "leak:PATTERN" (the open stack and the group's site) or "tx:PATTERN" (the transaction stack), PATTERN a
 * glob matched against a frame's function, source file and module, or "FUNCTION@FILE" for a function in
 * a file. No global state: thread-safe, but not for signal handlers (it allocates). */
#ifndef PQL_RULES_H
#define PQL_RULES_H

#include <stdbool.h>
#include <stddef.h>

/* Which stack of a leak group a rule is matched against. */
enum pql_rule_stack {
    PQL_RULE_LEAK, /* "leak:": any frame of the open stack, or the group's site (its headline frame) */
    PQL_RULE_TX    /* "tx:": any frame of the stack where the group's transaction began (tx_stack) */
};

struct pql_rule {
    char *text;          /* "leak:PATTERN" or "tx:PATTERN": the canonical form, as reports name the rule */
    const char *pattern; /* PATTERN: points into text */
    enum pql_rule_stack stack;
    /* PATTERN split at its first '@' outside a bracket expression and not escaped: the function's glob
     * and the file's (or module's); both NULL when PATTERN has no such '@'. */
    const char *function, *file;
    unsigned long hits;   /* for the caller to count with (connections); 0 after parsing */
    unsigned long groups; /* for the caller to count with (groups); 0 after parsing */
};

/* The rules of one file, in file order. text and pattern of every rule live in the allocation of v:
 * pql_rules_free releases everything. */
struct pql_rules {
    struct pql_rule *v;
    size_t n;
};

#define PQL_RULES_MSG_MAX   512     /* a message: the origin, a line number and up to 200 bytes of it */
#define PQL_RULES_FILE_MAX  1048576 /* bytes: a larger suppressions file is refused */
#define PQL_RULES_QUOTE_MAX 200     /* bytes of an offending line quoted in a message, once escaped */

struct pql_rules_error {
    int line;                    /* 1-based line of the file, 0 when the error is not about a line */
    char msg[PQL_RULES_MSG_MAX]; /* one line, no newline; control bytes of the input escaped (\xNN) */
};

/* The syntax, one line at a time (lines end with '\n'; white space is ' ', \t, \n, \v, \f, \r):
 *  - a '#' at the start of the line or after white space starts a comment, to the end of the line
 *    ("leak:a#b" keeps its '#'; "leak:a #b" is "leak:a");
 *  - what remains, without surrounding white space, is either empty (the line is skipped) or
 *    "leak:" or "tx:" followed by a pattern; white space after the colon is not part of the pattern;
 *  - a pattern with an '@' (not escaped as "\@", not inside "[...]") is FUNCTION@FILE: both parts must
 *    be non-empty.
 * Anything else is malformed: a prefix without a pattern, another prefix, "@FILE" or "FUNCTION@", a NUL
 * byte.
 *
 * One error policy: a text with any malformed line is rejected whole, so that a typo never silently
 * drops a rule (a CI gate must fail closed). */

/* Parses len bytes of text (origin names it in messages: a file name). *r is overwritten (free an
 * earlier set first). Returns true with the rules in *r (none for an empty text), or false with *r
 * empty and, when err is not NULL, err->msg saying what is wrong:
 *   "ORIGIN:LINE: not a suppression rule: \"TEXT\" (expected leak:PATTERN or tx:PATTERN)"
 *   "ORIGIN: cannot read suppressions: out of memory" */
bool pql_rules_parse(struct pql_rules *r, const char *text, size_t len, const char *origin,
                     struct pql_rules_error *err);

/* Reads and parses the file at path, never blocking and never reading past PQL_RULES_FILE_MAX: only
 * a regular file is read (a FIFO, device, socket or directory is an error saying so). Returns as
 * pql_rules_parse; a file that cannot be read gives
 *   "PATH: cannot read suppressions: REASON" (err->line 0). */
bool pql_rules_load(struct pql_rules *r, const char *path, struct pql_rules_error *err);

/* True when the glob pattern (fnmatch, no flags) matches function, file or module, each whole or its
 * last path component ("server.c" matches "/src/app/server.c"). NULL strings never match; a NULL
 * pattern matches nothing. */
bool pql_rule_matches(const char *pattern, const char *function, const char *file, const char *module);

/* True when the rule matches one frame: for FUNCTION@FILE, its function matches FUNCTION and its file or
 * module FILE (each as above); else as pql_rule_matches with the whole pattern. Which stack's frames to
 * try is the caller's (rule->stack). */
bool pql_rule_matches_frame(const struct pql_rule *rule, const char *function, const char *file,
                            const char *module);

/* Releases the rules and leaves *r empty; an empty *r is fine. */
void pql_rules_free(struct pql_rules *r);

#endif
