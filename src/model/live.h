/* Per-connection activity kept current by the query hooks (query.h): transaction status, last
 * activity, where the current transaction began, who is using the connection. The structs come from a
 * pool and are found through the registry's lock-free hint table. Application threads write; the
 * reporter thread only reads. Not signal-safe. */
#ifndef PQL_LIVE_H
#define PQL_LIVE_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One cache line each: a connection's state is written on every query call, by its own thread; two
 * connections sharing a line would make two threads fight over it. */
struct __attribute__((aligned(64))) pql_live {
    _Atomic uintptr_t key;   /* masked PGconn (pql_registry_key), 0 while the struct is free */
    _Atomic int64_t last_ns; /* end of the last command (CLOCK_MONOTONIC_COARSE), 0 when none */
    _Atomic int64_t tx_began_ns;
    struct pql_live *next_free;  /* pool, under the pool lock */
    _Atomic uint32_t fork_gen;   /* the process generation that opened the connection */
    _Atomic int busy_tid;        /* thread running a query call on it, 0 when none (best effort: plain
                                  * stores) */
    _Atomic int tx;              /* last PGTransactionStatusType seen */
    _Atomic int settled;         /* last status outside a running command */
    _Atomic uint32_t tx_stack;   /* where the current transaction began, 0 when none */
    _Atomic uint32_t last_stack; /* where the last transaction began, kept after it ended: where the
                                  * connection was last checked out or used */
    _Atomic uint8_t suspect;     /* enum pql_suspect, set once by the reporter thread */
    _Atomic bool warned_fork, warned_threads;
    _Atomic uint16_t tx_test;       /* the test running when it began (testname.h), 0 when none */
    _Atomic bool ended_in_teardown; /* a transaction was ended by the runtime's teardown (Perl's DBI
                                       rolls back before closing): its work was rolled back */
};

enum pql_suspect { PQL_SUSPECT_NONE, PQL_SUSPECT_AGE, PQL_SUSPECT_IDLE_TX };

/* Incremented in every forked child: a connection used with another generation was inherited. */
extern _Atomic uint32_t pql_fork_gen;

/* Takes a zeroed struct from the pool for conn (never freed: a stale hint can only ever point to a
 * struct, whose key then does not match). NULL on out of memory. */
struct pql_live *pql_live_get(const PGconn *conn, uintptr_t key);
void pql_live_put(struct pql_live *l);

/* Registers the fork handler: in a child the pool lock is reset and the generation advances. */
void pql_live_setup(void);

#endif
