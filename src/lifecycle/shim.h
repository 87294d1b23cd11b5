/* The shim's process-wide state: first-use initialisation, settings, fork handling and the exit
 * report. Initialisation happens at the first connection, so a process that never connects is
 * untouched. Any thread; not signal-safe. */
#ifndef PQL_SHIM_H
#define PQL_SHIM_H

#include <stdbool.h>

#include "config.h"

/* Initialises on first call. True when tracking is on: not disabled, not secure-execution, libpq found. */
bool pql_shim_active(void);

/* The settings, valid once pql_shim_active() returned true. */
const struct pql_settings *pql_shim_settings(void);

/* Writes this process's exit report once (later calls do nothing). Returns the exit status the process
 * must end with (PQLEAK_EXITCODE when unsuppressed leaks were found), or -1 to keep its own. */
int pql_shim_exit_report(void);

/* Behind the interposed _exit and _Exit: writes the exit report, then ends the process with status (or
 * PQLEAK_EXITCODE when leaks were found). */
__attribute__((noreturn)) void pql_shim_exit(int status);

#endif
