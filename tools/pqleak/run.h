/* `pqleak run`: runs a command with the shim preloaded into it and every process it starts, then
 * merges their reports into one summary and one exit status. */
#ifndef CLI_RUN_H
#define CLI_RUN_H

#include "args.h"

/* Runs o->command to the end and returns the status pqleak should exit with: the command's own when
 * it failed (128+N when signal N killed it), else 2 when a report could not be read or an output
 * written, else o->exitcode when unsuppressed leaks were found, else 0; with o->no_fail, always the
 * command's. Before running anything: 2 when the shim, the suppressions or an output path is unusable;
 * 127 when the command is not found and 126 when it cannot be executed. */
int cli_run(const struct cli_run_opts *o);

#endif
