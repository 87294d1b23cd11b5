/* Per-connection activity kept current by the query interposers: transaction status, last activity,
 * where the current transaction began, who is using the connection. The query path is lock-free
 * (atomic loads and stores on a pooled struct found through a shared hint table) and captures a
 * stack only when a transaction begins. Application threads; the reporter thread only reads. */
#ifndef PQL_LIVE_H
#define PQL_LIVE_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Cache-line aligned: each connection's state is written on every query call, by its own thread; two
 * connections sharing a line would make two threads fight over it. */
struct __attribute__((aligned(64))) pql_live {
    _Atomic uintptr_t key;      /* masked PGconn, 0 while the struct is free */
    _Atomic uint32_t fork_gen;  /* the process generation that opened the connection */
    _Atomic int in_call;        /* a query call is running on it (best effort: plain stores) */
    _Atomic int last_tid;       /* thread of the last (or running) query call */
    _Atomic int64_t last_ns;    /* last activity (CLOCK_MONOTONIC_COARSE) */
    _Atomic int tx;             /* last PGTransactionStatusType seen */
    _Atomic int settled;        /* last status outside a running command */
    _Atomic uint32_t tx_stack;  /* where the current transaction began, 0 when none */
    _Atomic int64_t tx_began_ns;
    _Atomic int suspect;        /* enum pql_suspect, set once by the reporter thread */
    _Atomic bool warned_fork, warned_threads;
    _Atomic bool ended_in_teardown; /* a transaction was ended by the runtime's teardown (Perl's DBI
                                       rolls back before closing): its work was rolled back */
    struct pql_live *next_free; /* pool, under the pool lock */
};

enum pql_suspect { PQL_SUSPECT_NONE, PQL_SUSPECT_AGE, PQL_SUSPECT_IDLE_TX };

/* Incremented in every forked child: a connection used with another generation was inherited. */
extern _Atomic uint32_t pql_fork_gen;

/* Turned on once the shim is active; the query interposers do nothing before. */
extern _Atomic bool pql_live_on;

/* Takes a zeroed struct from the pool for conn (never freed: a stale hint can only ever point to a
 * struct, whose key then does not match). NULL on out of memory. */
struct pql_live *pql_live_get(const PGconn *conn, uintptr_t key);
void pql_live_put(struct pql_live *l);

/* This process's pid and this thread's tid, cached (no system call on the hot paths). */
pid_t pql_pid(void);
int pql_tid(void);

/* Monotonic time in ns, coarse (a few ms) and cheap: read on every query call. */
int64_t pql_live_now_ns(void);

/* Around a query call, outermost only. begin returns NULL when conn is not tracked. */
struct pql_live *pql_query_begin(PGconn *conn);
void pql_query_end(struct pql_live *l, PGconn *conn);

/* In a forked child: the thread-id cache and pool lock are the parent's. */
void pql_live_fork_child(void);

#endif
