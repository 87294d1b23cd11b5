/* The merged JSON report: schema "pqleak/1" with "trigger": "merged", "pid": null, a "processes" list,
 * and per leak group the processes it occurred in. `pqleak report` reads it back like any report. */
#ifndef CLI_JSONOUT_H
#define CLI_JSONOUT_H

#include "merge.h"

#include <stdio.h>

/* Writes the report to out. Returns 0, or -1 when writing failed (errno set). */
int cli_jsonout_write(FILE *out, const struct cli_set *set);

#endif
