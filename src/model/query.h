/* The query hooks (query.c): per-call bookkeeping of a connection's live state, lock-free, and the
 * misuse found on the way. The fast path is inline (the interposers run it on every query call): one
 * compare with a one-entry per-thread cache finds the connection's live state (and tells a call libpq
 * makes itself, which goes straight through); one relaxed store marks the call, one clears it; the
 * transaction status and the clock are read only when a command may have completed. Application
 * threads, outermost interposed call only; not signal-safe. */
#ifndef PQL_QUERY_H
#define PQL_QUERY_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "live.h"
#include "proc.h"
#include "real.h"
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

/* The per-thread cache: the key (pql_registry_key) of the connection this thread queried last and its
 * live state, checked against the live state's own key, so that a closed connection (key 0) or a struct
 * reused for another connection (another key) is never taken; and this thread's id, read once when the
 * cache is filled. key is PQL_QUERY_INSIDE while this thread runs an outermost query call (a call libpq
 * makes itself then goes straight to libpq), 0 when empty; neither is the key of any PGconn (the masked
 * value of a non-canonical address). live is never NULL when key is neither. */
#define PQL_QUERY_INSIDE ((uintptr_t)1)
struct pql_query_cache {
    uintptr_t key;
    struct pql_live *live;
    int tid;
};
extern __thread struct pql_query_cache pql_query_tls
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* The slow paths, out of line: the lookup on a cache miss, which fills the cache (and the fork check,
 * which a miss always precedes in a forked child: its cache is emptied at fork), the second-thread
 * finding, and the bookkeeping of a call after which a command may have completed. */
struct pql_live *pql_query_find(const PGconn *conn);
void pql_query_other_thread(const PGconn *conn, struct pql_live *l, int other);

/* The transaction status moved from before to tx (neither active): a transaction began (its stack is
 * captured) or ended. now: the command's end. */
void pql_query_settle(struct pql_live *l, int before, int tx, int64_t now);

/* The fast path of an outermost call: true when this thread's cache holds conn's live state
 * (pql_query_tls.live); cached: the cache's key, as the caller read it. Else pql_query_find decides. */
static inline bool pql_query_hit(const PGconn *conn, uintptr_t cached)
{
    uintptr_t key = pql_registry_key(conn);
    return cached == key && atomic_load_explicit(&pql_query_tls.live->key, memory_order_relaxed) == key;
}

/* Before the call: marks it running on this thread, on the connection (busy_tid) and in the cache (so
 * that libpq's own calls inside go straight through). Misuse found is reported (pql_query_on_misuse)
 * before it returns. Plain loads and stores, no read-modify-write: two threads entering at the very same
 * instant may go unnoticed, but one entering while another waits inside libpq (the case that corrupts)
 * is seen. */
static inline void pql_query_enter(struct pql_live *l, const PGconn *conn)
{
    int other = atomic_load_explicit(&l->busy_tid, memory_order_relaxed);
    if (__builtin_expect(other != 0, 0))
        pql_query_other_thread(conn, l, other);
    atomic_store_explicit(&l->busy_tid, pql_query_tls.tid, memory_order_relaxed);
    pql_query_tls.key = PQL_QUERY_INSIDE;
}

/* After a call that sent a command (ok: libpq took it): the connection is now active. */
static inline void pql_query_sent(struct pql_live *l, int ok)
{
    if (ok)
        atomic_store_explicit(&l->tx, PQTRANS_ACTIVE, memory_order_relaxed);
}

/* After a call in which a command may have ended (a synchronous call, or PQgetResult returning NULL):
 * the transaction status, the time, the fork count of this use; the rare change of transaction out of
 * line. */
static inline void pql_query_completed(struct pql_live *l, PGconn *conn)
{
    int tx = pql_real.PQtransactionStatus(conn);
    int64_t now = pql_coarse_ns();
    atomic_store_explicit(&l->tx, tx, memory_order_relaxed);
    int before = atomic_load_explicit(&l->settled, memory_order_relaxed);
    if (__builtin_expect(tx != before, 0) && tx != PQTRANS_ACTIVE)
        pql_query_settle(l, before, tx, now);
    atomic_store_explicit(&l->last_ns, now, memory_order_relaxed);
    /* A plain store (no compare): the line is written anyway. */
    uint8_t forks = atomic_load_explicit(&pql_forks, memory_order_relaxed);
    atomic_store_explicit(&l->use_fork, forks, memory_order_relaxed);
}

/* After the call (and pql_query_completed when a command may have ended in it: a synchronous call, or
 * PQgetResult returning NULL): the connection is no longer in use, the cache holds it again. The mark is
 * cleared whoever set it last: a second thread that entered meanwhile was found out already (once per
 * connection). */
static inline void pql_query_leave(struct pql_live *l, const PGconn *conn)
{
    atomic_store_explicit(&l->busy_tid, 0, memory_order_relaxed);
    pql_query_tls.key = pql_registry_key(conn);
}

#endif
