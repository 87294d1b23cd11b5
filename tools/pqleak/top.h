/* `pqleak top`: every connection of every process on this host that runs the shim, who holds it (the
 * live report of each process, asked through probe.h), joined by backend pid with pg_stat_activity of
 * each server they use (topdb.c), printed oldest transaction first (topout.c). Command-line process
 * only; single-threaded. */
#ifndef CLI_TOP_H
#define CLI_TOP_H

#include "args.h"

/* Runs the subcommand with its parsed options (cli_args_top). Returns its exit status
 * (docs/exit-codes.md): the Nagios statuses of `status` (CLI_STATUS_*). */
int cli_top(const struct cli_top_opts *o);

/* Its usage text, printed by `pqleak top --help` and as part of `pqleak --help`. */
extern const char cli_top_usage[];

#endif
