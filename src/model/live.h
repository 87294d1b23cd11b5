/* Per-connection activity kept current by the query hooks (query.h): transaction status, last
 * activity, where the current transaction began, who is using the connection. The structs are kept
 * with the registry's entries and found through its lock-free hint table. Application threads write; the
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
    _Atomic int64_t last_ns; /* end of the last command, 0 when none: CLOCK_MONOTONIC_COARSE, precise
                              * CLOCK_MONOTONIC once the process has forked (query.c) */
    _Atomic int64_t tx_began_ns;
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
    _Atomic uint8_t use_fork;       /* pql_forks at its last use (opening, else query call) */
};

enum pql_suspect { PQL_SUSPECT_NONE, PQL_SUSPECT_AGE, PQL_SUSPECT_IDLE_TX };

/* Incremented in every forked child: a connection used with another generation was inherited. */
extern _Atomic uint32_t pql_fork_gen;

/* How many times this process has forked (a child inherits its parent's count and goes on from it),
 * saturating at PQL_FORKS_UNKNOWN. Counted before the fork, so the child sees the fork that made it.
 * A connection's use_fork below a child's pql_born_fork means its opener, the child's parent, last
 * used it before that child existed: the exact order the fork hand-off rule needs, which clocks with
 * a tick's resolution cannot give. */
#define PQL_FORKS_UNKNOWN 255
extern _Atomic uint8_t pql_forks;

/* In a forked child: its parent's pid and pql_forks then (which of the parent's forks made it); 0 in
 * a process that is no forked child. */
extern pid_t pql_born_of;
extern uint8_t pql_born_fork;

/* A new zeroed struct, key 0; NULL on out of memory. Never freed: a stale hint or a thread's query cache
 * can only ever point to a struct, whose key then does not match. */
struct pql_live *pql_live_new(void);

/* Makes l the live state of the connection with key: every field reset, the transaction status set to
 * tx (PQTRANS_IDLE for a new connection; PQTRANS_UNKNOWN when no query hook will ever say), the key
 * published last. */
void pql_live_start(struct pql_live *l, uintptr_t key, int tx);

/* The connection is gone: a hint or a query cache holding l misses from now on (key 0). l may be
 * started again for another connection. */
void pql_live_stop(struct pql_live *l);

/* Registers the fork handlers: pql_forks counts forks; in a child the pool lock is reset, the
 * generation advances and pql_born_of/pql_born_fork are set. */
void pql_live_setup(void);

#endif
