/* The text summary of a merged set: each leak group with its count, kind, processes, targets and stack
 * (runtime frames folded), suppressions used with hit counts, and one totals line. */
#ifndef CLI_PRINT_H
#define CLI_PRINT_H

#include "merge.h"

#include <stdbool.h>
#include <stdio.h>

/* Writes the summary to out. strict: "held" groups count as leaks. */
void cli_print_summary(FILE *out, const struct cli_set *set, bool strict);

/* Writes the stack, one frame a line, each line starting with indent. Shown: the program's own frames
 * (in a stack with interpreted frames, its own source lines; else its native frames) and the headline
 * (cli_stack_headline); each run of other frames (libpq, libc, interpreters, installed libraries, test
 * runners such as pytest, pluggy, unittest) becomes one "... N frames in A, B" line. full: every frame.
 * Shared with the JUnit writer. */
void cli_print_stack(FILE *out, const struct cli_stack *st, const char *indent, bool full);

/* The "opened at:", "transaction began at:" and "last used at:" stacks of a group, headings starting
 * with indent and frames two columns further. */
void cli_print_group_stacks(FILE *out, const struct cli_group *g, const char *indent, bool full);

/* The innermost frames of a stack, up to and including the user_frames-th frame of the user's own
 * code, the others folded into "... N frames in A, B" lines, then one "... N more frames" line for the
 * rest. In a stack with interpreted-language frames (Python), the user's code is the program's own
 * source files (cli_frame_is_app): the C frames of the interpreter and its drivers and the frames of
 * installed packages are folded; when no frame is the program's own, its interpreted frames are
 * shown. For one-glance views such as `pqleak status`. */
void cli_print_stack_head(FILE *out, const struct cli_stack *st, const char *indent, size_t user_frames);

/* "3 connections" / "1 connection": n and the noun, pluralized. Returns buf. */
const char *cli_plural(char *buf, size_t size, long n, const char *noun);

/* One-line title of a group: "leak_site_a (app.c:12)": the site the report names ("site"), else the
 * headline of its open stack (cli_stack_headline), else its innermost frame. Caller frees. */
char *cli_group_site(const struct cli_group *g);
/* The frame cli_group_site names, or NULL when the group has no stack. */
const struct cli_frame *cli_group_site_frame(const struct cli_group *g);

/* "last used at" when the group's site is where its connections were last checked out or used
 * ("site_from" "tx_stack" or "last_used"), else "opened at". */
const char *cli_group_site_verb(const struct cli_group *g);

/* A misuse finding's server, then its "used at:" and "opened at:" stacks, headings starting with indent
 * and frames two columns further. Shared with the JUnit writer. */
void cli_print_misuse_stacks(FILE *out, const struct cli_misuse *m, const char *indent, bool full);

/* One-line title of a misuse finding: its site, else its innermost frame. Caller frees. */
char *cli_misuse_site(const struct cli_misuse *m);
/* The frame cli_misuse_site names, or NULL. */
const struct cli_frame *cli_misuse_site_frame(const struct cli_misuse *m);

/* The misuse findings that count (no fork hand-off), grouped by kind and site (cli_misuse_site): one
 * block of the summary, one JUnit test case each. */
struct cli_misuse_group {
    const struct cli_misuse *first; /* its first finding, in the set's order */
    char *site;                     /* cli_misuse_site(first), owned */
    struct cli_vec members;         /* const struct cli_misuse *, first included, in the set's order */
};
/* The groups in order of their first finding into *out (free with cli_misuse_groups_free); returns how
 * many. */
size_t cli_misuse_groups(const struct cli_set *set, struct cli_misuse_group **out);
void cli_misuse_groups_free(struct cli_misuse_group *g, size_t n);

/* Pushes to out the distinct non-empty strings of member key of the group's connections (of their
 * member within, such as "target", or of the connection itself when within is NULL: "test",
 * "tx_test"), in order of appearance; borrowed from the reports. Shared with the JUnit writer. */
void cli_group_strings(const struct cli_group *g, const char *within, const char *key, struct cli_vec *out);

/* "app (pids 1, 2), psql (pid 3)". Caller frees. */
char *cli_group_where(const struct cli_group *g);

#endif
