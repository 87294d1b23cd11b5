/* The query hooks (query.c): per-call bookkeeping of a connection's live state, lock-free, and the
 * misuse found on the way. The fast path is inline (the interposers run it on every query call): a
 * one-entry per-thread cache finds the connection's live state, one relaxed store marks the call, one
 * clears it; the transaction status is read only when a command may have completed. Application
 * threads, outermost interposed call only; not signal-safe. */
#ifndef PQL_QUERY_H
#define PQL_QUERY_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "live.h"
#include "proc.h"
#include "registry.h"

/* What a query call found wrong with the use of its connection; each is found once per connection. */
struct pql_misuse {
    bool forked;   /* used in a forked child of the process that opened it */
    int other_tid; /* used while this thread was using it too; 0 when not */
};

/* Turns the hooks on (they do nothing before) with the settings' stack depth. */
void pql_query_setup(const struct pql_settings *s);

/* Who hears of misuse, called by the slow paths below before the query call goes on (the fast path
 * carries no finding back to the interposer). Set once, before the first connection. */
void pql_query_on_misuse(void (*fn)(PGconn *conn, const struct pql_misuse *m));

/* The last connection this thread queried and its live state: checked against the live state's key, so
 * a closed connection (key 0) or a struct reused for another connection (another key) is never taken. */
struct pql_query_cache {
    const PGconn *conn;
    struct pql_live *live;
};
extern __thread struct pql_query_cache pql_query_tls
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* The slow paths, out of line: the lookup on a cache miss (and the fork check, which a miss always
 * precedes in a forked child: its cache is emptied at fork), the second-thread finding, and the
 * bookkeeping of a call after which a command may have completed. */
struct pql_live *pql_query_find(const PGconn *conn);
void pql_query_other_thread(const PGconn *conn, struct pql_live *l, int other);
void pql_query_completed(struct pql_live *l, PGconn *conn);

/* Before a query call: the live state of conn (NULL when not tracked), the call marked as running on
 * this thread, whose id goes to *me for pql_query_end (read once per call). Misuse found is reported
 * (pql_query_on_misuse) before it returns. */
static inline struct pql_live *pql_query_begin(const PGconn *conn, int *me)
{
    struct pql_live *l = pql_query_tls.live;
    if (__builtin_expect(!l || pql_query_tls.conn != conn ||
                             atomic_load_explicit(&l->key, memory_order_relaxed) != pql_registry_key(conn),
                         0))
        l = pql_query_find(conn);
    if (!l)
        return NULL;
    *me = pql_tid();
    /* Plain loads and stores, no read-modify-write: two threads entering at the very same instant may go
     * unnoticed, but one entering while another waits inside libpq (the case that corrupts) is seen. */
    int other = atomic_load_explicit(&l->busy_tid, memory_order_relaxed);
    if (__builtin_expect(other != 0 && other != *me, 0))
        pql_query_other_thread(conn, l, other);
    atomic_store_explicit(&l->busy_tid, *me, memory_order_relaxed);
    return l;
}

/* After a call that sent a command (ok: libpq took it): the connection is now active. */
static inline void pql_query_sent(struct pql_live *l, int ok)
{
    if (l && ok)
        atomic_store_explicit(&l->tx, PQTRANS_ACTIVE, memory_order_relaxed);
}

/* After every query call: completed is true when a command may have ended in it (a synchronous call, or
 * PQgetResult returning NULL); only then is the transaction status read. me: as pql_query_begin gave. */
static inline void pql_query_end(struct pql_live *l, PGconn *conn, bool completed, int me)
{
    if (!l)
        return;
    if (completed)
        pql_query_completed(l, conn);
    /* The thread that ran this call last is the one now; a later caller overwrote it only on misuse. */
    if (atomic_load_explicit(&l->busy_tid, memory_order_relaxed) == me)
        atomic_store_explicit(&l->busy_tid, 0, memory_order_relaxed);
}

#endif
