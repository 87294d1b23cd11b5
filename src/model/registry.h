/* Connection records and utilization counters: one record per PGconn from open until PQfinish, under
 * one mutex. The PGconn pointer is stored masked, so that LeakSanitizer running alongside still sees
 * an unreferenced PGconn as a leak. Any thread; not signal-safe. */
#ifndef PQL_REGISTRY_H
#define PQL_REGISTRY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "checkout.h"
#include "live.h"
#include "target.h"

enum pql_state { PQL_CONNECTING, PQL_OK, PQL_BAD };

/* How a connection ended up leaked: never closed, or closed by a language runtime's teardown while
 * in a transaction or a query (its work was rolled back), or while idle (held until exit). */
enum pql_leak_kind { PQL_LEAK_UNCLOSED, PQL_LEAK_TEARDOWN, PQL_LEAK_HELD };

struct pql_conn {
    uint64_t id;
    pid_t pid;          /* process that opened it: a forked child reports only its own */
    pid_t tid;          /* thread that opened it */
    double opened_wall; /* seconds since the epoch */
    double opened_mono; /* CLOCK_MONOTONIC seconds */
    enum pql_state state;
    int server_pid; /* 0 when unknown */
    uint32_t stack; /* open stack id, 0 when none */
    struct pql_target target;
    struct pql_slot slot;
    bool refused;    /* a refusal made by pqleak, not a real connection attempt */
    int client_port; /* local TCP port (pg_stat_activity.client_port), 0 for a unix socket */
    /* Copied from the live state by snapshots: */
    int tx_status;       /* PGTransactionStatusType */
    bool active;         /* a query call is running on it */
    int64_t last_ns;     /* end of the last command (live.h's clock), 0 when never used */
    uint32_t tx_stack;   /* where the current transaction began, 0 when none */
    uint32_t last_stack; /* where the last transaction began (kept after it ended), 0 when none */
    int64_t tx_began_ns;
    int suspect;            /* enum pql_suspect */
    int leak_kind;          /* enum pql_leak_kind: set on connections retired by a runtime's teardown */
    bool ended_in_teardown; /* its transaction was rolled back by the runtime's teardown */
    bool warned_fork;       /* its use in a forked child was reported already */
    uint8_t use_fork;       /* pql_forks at its last use (live.h) */
    uint16_t test, tx_test; /* the test (testname.h) running at its open and at its transaction's begin */
};

struct pql_counters {
    long open; /* connected or connecting, not yet finished */
    long peak_open;
    long opened_total, closed_total, failed_total;
};

/* Its last use as CLOCK_MONOTONIC ns: the end of its last command, else its opening. */
static inline int64_t pql_conn_last_use_ns(const struct pql_conn *c)
{
    return c->last_ns ? c->last_ns : (int64_t)(c->opened_mono * 1e9);
}

/* The key of conn's record and live state: the pointer XORed with a constant that sets the top bits, so
 * that the stored key is never a valid user-space pointer. */
static inline uintptr_t pql_registry_key(const PGconn *conn)
{
    return (uintptr_t)conn ^ ((uintptr_t)0xa5c3000000000000ull | 0x5a5a5a5aull);
}

/* Adds a record for conn (a copy of *rec; its id is assigned; its tx_status is where the live state's
 * starts). Returns the id, 0 on out of memory. */
uint64_t pql_registry_add(const PGconn *conn, const struct pql_conn *rec);

/* Sets the state (counting failures and open connections), server pid and target of conn's record.
 * target may be NULL to keep it. When the connection failed while holding a checkout slot, the slot is
 * moved to *released (else released->held is false). Returns false when conn is not tracked. */
bool pql_registry_set_state(const PGconn *conn, enum pql_state state, int server_pid,
                            const struct pql_target *target, struct pql_slot *released);

/* Removes conn's record, copying it to *out when out is non-NULL. With kind PQL_LEAK_TEARDOWN or
 * PQL_LEAK_HELD the record is kept aside for the exit report (see pql_registry_retired). Returns false
 * when not tracked. */
bool pql_registry_remove(const PGconn *conn, struct pql_conn *out, enum pql_leak_kind kind);

/* Copies the records this process's runtime teardown closed into a new array (*out, caller frees);
 * returns their number (0 with *out NULL when there are none or memory ran out). */
size_t pql_registry_retired(struct pql_conn **out);

/* Copies conn's record (with its live fields) to *out; false when conn is not tracked. */
bool pql_registry_get(const PGconn *conn, struct pql_conn *out);

/* The live state of conn, found without a lock when the shared hint table has it; NULL when conn is not
 * tracked. */
struct pql_live *pql_registry_live(const PGconn *conn);

/* Calls fn on every record of this process with its live state, under the registry lock: fn must be
 * quick and must not call back into the registry. */
void pql_registry_each(void (*fn)(const struct pql_conn *rec, struct pql_live *live, void *arg), void *arg);

/* Copies every record opened by this process into a new array (*out, to be freed by the caller) in
 * opening order, and the counters into *c. Returns the number of records; on out of memory *out is
 * NULL and 0 is returned. */
size_t pql_registry_snapshot(struct pql_conn **out, struct pql_counters *c);

/* Copies the counters alone (no records). */
void pql_registry_counters(struct pql_counters *c);

/* Registers the fork handlers: the lock is held across fork (the child needs consistent records);
 * the child forgets the parent's counters, and the records stay, owned by the parent's pid. */
void pql_registry_setup(void);

#endif
