/* This process's and this thread's identity, and clocks, cached so that the hot paths make no system
 * call. Any thread; pql_pid, pql_tid and the clocks are async-signal-safe (no lock, no allocation). */
#ifndef PQL_PROC_H
#define PQL_PROC_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* This process's pid and this thread's tid, cached. */
pid_t pql_pid(void);
int pql_tid(void);

/* Seconds on clock id (CLOCK_MONOTONIC for durations, CLOCK_REALTIME for report times). */
double pql_clock_s(clockid_t id);

/* Monotonic time in ns, coarse (a few ms) and cheap: read on every query call. */
int64_t pql_coarse_ns(void);

/* In a forked child: the cached pid and tid are the parent's. Registered by pql_proc_setup. */
void pql_proc_setup(void);

#endif
