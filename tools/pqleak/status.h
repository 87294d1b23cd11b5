/* `pqleak status PID`: asks a running process for a live report and prints it like a Nagios plugin
 * (first line "PQLEAK OK - ...", exit 0/1/2/3). Command-line process only. */
#ifndef CLI_STATUS_H
#define CLI_STATUS_H

#include "args.h"

/* Runs the subcommand and returns its exit status: CLI_STATUS_OK, _WARNING or _CRITICAL from the
 * report's utilization (WARNING at least when a connection is a suspect), CLI_STATUS_UNKNOWN after one
 * line saying why no report could be had. Strings of the report are escaped (cli_safe). Never
 * sends a signal to a process that does not show the shim's signal handler. */
int cli_status(const struct cli_status_opts *o);

#endif
