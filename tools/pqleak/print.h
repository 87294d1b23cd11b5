/* The text summary of a merged set: each leak group with its count, kind, processes, targets and stack
 * (runtime frames folded), suppressions used with hit counts, and one totals line. */
#ifndef CLI_PRINT_H
#define CLI_PRINT_H

#include "merge.h"

#include <stdbool.h>
#include <stdio.h>

/* Writes the summary to out. strict: "held" groups count as leaks. */
void cli_print_summary(FILE *out, const struct cli_set *set, bool strict);

/* Writes the stack, one frame a line, each line starting with indent; consecutive runtime frames become
 * one "... N frames in libA, libB" line. Shared with the JUnit writer. */
void cli_print_stack(FILE *out, const struct cli_stack *st, const char *indent);

/* The innermost frames of a stack, up to and including the user_frames-th frame of the user's own
 * code, the others folded into "... N frames in A, B" lines, then one "... N more frames" line for the
 * rest. In a stack with interpreted-language frames (Python), the user's code is the program's own
 * source files (cli_frame_is_app): the C frames of the interpreter and its drivers and the frames of
 * installed packages are folded; when no frame is the program's own, its interpreted frames are
 * shown. For one-glance views such as `pqleak status`. */
void cli_print_stack_head(FILE *out, const struct cli_stack *st, const char *indent, size_t user_frames);

/* "3 connections" / "1 connection": n and the noun, pluralized. Returns buf. */
const char *cli_plural(char *buf, size_t size, long n, const char *noun);

/* One-line title of a group: "leak_site_a (app.c:12)", the innermost frame of the user's code. Caller
 * frees. */
char *cli_group_site(const struct cli_group *g);

/* "app (pids 1, 2), psql (pid 3)". Caller frees. */
char *cli_group_where(const struct cli_group *g);

#endif
