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
#include "registry.h"

/* What a query call found wrong with the use of its connection; each is found once per connection. */
struct pql_misuse {
    bool forked;   /* used in a forked child of the process that opened it */
    int other_tid; /* used while this thread was using it too; 0 when not */
};

/* Turns the hooks on (they do nothing before) with the settings' stack depth; or off for good with
 * PQLEAK_TRACK_QUERIES=0 or PQLEAK_DISABLE=1: then each thread's first query call marks its cache
 * (below) so that every later one costs what a nested call does. */
void pql_query_setup(const struct pql_settings *s);

/* Who hears of misuse, called by the slow paths below before the query call goes on (the fast path
 * carries no finding back to the interposer). Set once, before the first connection. */
void pql_query_on_misuse(void (*fn)(PGconn *conn, const struct pql_misuse *m));

/* The per-thread cache: the key (pql_registry_key) of the connection this thread queried last and its
 * live state, checked against the live state's own key, so that a closed connection (key 0) or a struct
 * reused for another connection (another key) is never taken; and this thread's id, read once when the
 * cache is filled. While this thread runs an outermost query call, the key has PQL_QUERY_INSIDE set (a
 * call libpq makes itself then goes straight to libpq): no PGconn's key has it, malloc's pointers being
 * aligned. Left at PQL_QUERY_INSIDE alone outside any call, it sends every call of the thread straight
 * to libpq (the hooks turned off). 0 when empty. live is never NULL once key is not 0. The fast path keeps
 * nothing in registers across the call into libpq: the key and the live state are read back from here. */
#define PQL_QUERY_INSIDE ((uintptr_t)1)
struct pql_query_cache {
    uintptr_t key;
    struct pql_live *live;
    int tid;
};
extern __thread struct pql_query_cache pql_query_tls
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* The slow path's lookup on a cache miss, out of line: fills the cache (and makes the fork check, which
 * a miss always precedes in a forked child: its cache is emptied at fork). NULL when the call goes
 * straight to libpq: the hooks not on (with them off, the cache is marked so), the connection not
 * tracked. */
struct pql_live *pql_query_find(const PGconn *conn);

/* True inside an outermost query call of this thread (cached: the cache's key, as the caller read it). */
static inline bool pql_query_nested(uintptr_t cached)
{
    return cached & PQL_QUERY_INSIDE;
}

/* The fast path of an outermost call: true when this thread's cache holds conn's live state
 * (pql_query_tls.live) and no other thread is marked in a call on it. Else the slow path decides
 * (pql_query_find, pql_query_mark). */
static inline bool pql_query_hit(const PGconn *conn, uintptr_t cached)
{
    uintptr_t key = pql_registry_key(conn);
    const struct pql_live *l = pql_query_tls.live;
    return cached == key && atomic_load_explicit(&l->key, memory_order_relaxed) == key &&
           !atomic_load_explicit(&l->busy_tid, memory_order_relaxed);
}

/* Before the call on the cached connection, the connection found unmarked: marks the call running on
 * this thread, on the connection (busy_tid) and in the cache (so that libpq's own calls inside go
 * straight through). Plain loads and stores, no read-modify-write on shared memory: two threads entering
 * at the very same instant may go unnoticed, but one entering while another waits inside libpq (the case
 * that corrupts) is seen. */
static inline void pql_query_enter(void)
{
    atomic_store_explicit(&pql_query_tls.live->busy_tid, pql_query_tls.tid, memory_order_relaxed);
    pql_query_tls.key |= PQL_QUERY_INSIDE;
}

/* The slow path's pql_query_enter: finds out another thread marked in a call on conn (reported through
 * pql_query_on_misuse, once per connection) before marking it. */
void pql_query_mark(const PGconn *conn);

/* After a call that sent a command (ok: libpq took it): the connection is now active. */
static inline void pql_query_sent(int ok)
{
    if (ok)
        atomic_store_explicit(&pql_query_tls.live->tx, PQTRANS_ACTIVE, memory_order_relaxed);
}

/* After a call in which a command may have ended (a synchronous call, or PQgetResult returning NULL),
 * on the cached connection: the transaction status, the time, the fork count of this use. Out of line:
 * it keeps the fast path's frame small. frame: the interposer's frame address (unwind.h), where the
 * stack of a transaction that began in the call starts (the interposer's caller), so that the walk
 * need not step through the shim's frames. */
void pql_query_completed(const void *frame);

/* After the call (and pql_query_completed when a command may have ended in it): the connection is no
 * longer in use, the cache holds it again. The mark is cleared whoever set it last: a second thread that
 * entered meanwhile was found out already (once per connection). */
static inline void pql_query_leave(void)
{
    pql_query_tls.key &= ~PQL_QUERY_INSIDE;
    atomic_store_explicit(&pql_query_tls.live->busy_tid, 0, memory_order_relaxed);
}

#endif
