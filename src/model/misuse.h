/* Misuse found in this process (a connection used by a forked child of the process that opened it, or
 * by two threads at once), kept as data for the reports: the command fails a run on it like on a leak.
 * Also, in a process that forked, the connections it opened before a fork and closed itself later,
 * with its last use of them (fork events with pid == opened_by: no misuse; they let the command tell
 * a child's close after the parent was done with a connection, as pg_basebackup's, from one that cut
 * a session still in use). Found on the application's threads (rare paths); any thread reads. Not
 * signal-safe. */
#ifndef PQL_MISUSE_H
#define PQL_MISUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum pql_misuse_kind { PQL_MISUSE_FORK, PQL_MISUSE_THREADS };

struct pql_misuse_event {
    enum pql_misuse_kind kind;
    uint64_t conn;         /* the connection's id */
    int server_pid;        /* 0 when unknown */
    pid_t pid;             /* the process that misused it */
    pid_t opened_by;       /* the process that opened it */
    int other_tid;         /* threads: the thread that was using it */
    bool closed;           /* fork: the child closed it (rather than queried it); pid == opened_by: always */
    double time;           /* seconds since the epoch; pid == opened_by: the opener's last use of it */
    uint32_t stack;        /* where it was misused */
    uint32_t open_stack;   /* where it was opened */
    int64_t mono_ns;       /* time as CLOCK_MONOTONIC ns (comparable between processes of one machine) */
    uint8_t last_use_fork; /* pid == opened_by: pql_forks at its last use (live.h); 255: unknown */
    uint8_t opener_fork;   /* fork by a direct child: which of the opener's forks made the child
                            * (pql_born_fork); 0: unknown */
};

/* Registers the fork handler (the list's lock is reset in a child; the parent's events stay the
 * parent's). */
void pql_misuse_setup(void);

/* Keeps a copy of e (dropped when memory runs out: the warning in the log remains). */
void pql_misuse_add(const struct pql_misuse_event *e);

struct pql_conn;

/* Called when this process closes a connection: when it opened it and has forked since, keeps a close
 * note (a fork event with pid == opened_by, time its last use of the connection, closed true, no
 * stack). At most PQL_MISUSE_MAX_NOTES per process. */
#define PQL_MISUSE_MAX_NOTES 1000
void pql_misuse_note_close(const struct pql_conn *rec);

/* Copies this process's events into a new array (*out, caller frees); returns their number (0 with
 * *out NULL when there are none or memory ran out). */
size_t pql_misuse_snapshot(struct pql_misuse_event **out);

#endif
