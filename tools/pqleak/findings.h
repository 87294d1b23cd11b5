/* What reports say beyond leak groups (issue 12): each group's headline as the shim chose it ("site",
 * "site_from"), connections' "last_stack", the "misuse" list, and the fork hand-off rule that turns a
 * parent's leaked copy plus its child's "misuse" into neither. Called by reportio.c for each report
 * and by the subcommands once all are read. Command-line process only. */
#ifndef CLI_FINDINGS_H
#define CLI_FINDINGS_H

#include "merge.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Report members this file reads (common/names.h will hold them once the shim writes them). */
#define CLI_F_SITE       "site"
#define CLI_F_SITE_FROM  "site_from"
#define CLI_F_LAST_STACK "last_stack"
#define CLI_F_MISUSE     "misuse"
#define CLI_F_OPENED_BY  "opened_by"
#define CLI_F_CLOSED     "closed"
#define CLI_F_OPEN_STACK "open_stack"
#define CLI_F_HANDED_OFF "handed_off"
#define CLI_F_CONNECTION "connection"

/* Checks the members above in a report: a "site" that is an object or null, a known "site_from" or
 * null, stack ids that refer to "stacks", a "misuse" list of well-formed entries. Returns false after
 * writing into msg what is wrong. */
bool cli_findings_check(const json_t *root, char *msg, size_t len);

/* Merges the members above of a checked final (exit or merged) report into set; self is its process
 * (NULL for a merged report). */
void cli_findings_add(struct cli_set *set, const json_t *root, const struct cli_proc *self);

/* Runs once all reports are in: finds fork hand-offs (a child used or closed a connection of its
 * parent's, and the parent did not use it after the child's first use), takes the parent's copy out of
 * its leak group and marks the child's misuse handed_off. Idempotent. */
void cli_set_finish(struct cli_set *set);

/* Seconds since the epoch of an ISO 8601 UTC time as reports write it ("2026-11-30T04:03:50.196Z");
 * false when s is not one. */
bool cli_iso_time(const char *s, double *out);

#endif
