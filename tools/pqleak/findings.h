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

/* Report members this file reads are in common/names.h (PQL_F_SITE, PQL_F_MISUSE, ...); this one only
 * merged reports carry: */
#define CLI_F_HANDED_OFF "handed_off"

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
