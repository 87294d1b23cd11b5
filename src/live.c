/* Live connection state: a pool of never-freed structs and the query hooks that keep them current.
 * pql_query_begin/end run on every query call of the application: no lock, a coarse clock read and a
 * few relaxed atomics; a stack is captured only when a transaction begins, and misuse (a connection
 * used by a forked child, or by two threads at once) is reported once per connection. */
#define _GNU_SOURCE
#include "live.h"

#include "log.h"
#include "misuse.h"
#include "real.h"
#include "registry.h"
#include "runtime.h"
#include "shim.h"
#include "stack.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic uint32_t pql_fork_gen;
_Atomic bool pql_live_on;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic pid_t my_pid;
static struct pql_live *pool;
static __thread int my_tid __attribute__((tls_model("initial-exec")));

int64_t pql_live_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A new zeroed struct, carved from blocks of 64: one aligned allocation per block instead of one per
 * connection saves each record the allocator's header and alignment padding (never freed either way). */
static struct pql_live *live_alloc(void)
{
    static struct pql_live *block;
    static size_t used = 64;
    struct pql_live *l = NULL;
    pthread_mutex_lock(&pool_lock);
    if (used == 64) {
        void *p = NULL;
        if (posix_memalign(&p, 64, 64 * sizeof(*block)) == 0) {
            memset(p, 0, 64 * sizeof(*block));
            block = p;
            used = 0;
        }
    }
    if (used < 64)
        l = &block[used++];
    pthread_mutex_unlock(&pool_lock);
    return l;
}

struct pql_live *pql_live_get(const PGconn *conn, uintptr_t key)
{
    (void)conn;
    pthread_mutex_lock(&pool_lock);
    struct pql_live *l = pool;
    if (l)
        pool = l->next_free;
    pthread_mutex_unlock(&pool_lock);
    if (!l && !(l = live_alloc()))
        return NULL;
    atomic_store_explicit(&l->fork_gen, atomic_load(&pql_fork_gen), memory_order_relaxed);
    atomic_store_explicit(&l->in_call, 0, memory_order_relaxed);
    atomic_store_explicit(&l->last_tid, 0, memory_order_relaxed);
    atomic_store_explicit(&l->last_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&l->tx, PQTRANS_IDLE, memory_order_relaxed);
    atomic_store_explicit(&l->settled, PQTRANS_IDLE, memory_order_relaxed);
    atomic_store_explicit(&l->tx_stack, 0, memory_order_relaxed);
    atomic_store_explicit(&l->tx_began_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&l->suspect, PQL_SUSPECT_NONE, memory_order_relaxed);
    atomic_store_explicit(&l->warned_fork, false, memory_order_relaxed);
    atomic_store_explicit(&l->warned_threads, false, memory_order_relaxed);
    atomic_store_explicit(&l->ended_in_teardown, false, memory_order_relaxed);
    atomic_store_explicit(&l->key, key, memory_order_release);
    return l;
}

void pql_live_put(struct pql_live *l)
{
    atomic_store_explicit(&l->key, 0, memory_order_release);
    pthread_mutex_lock(&pool_lock);
    l->next_free = pool;
    pool = l;
    pthread_mutex_unlock(&pool_lock);
}

int pql_tid(void)
{
    if (!my_tid)
        my_tid = gettid();
    return my_tid;
}

pid_t pql_pid(void)
{
    pid_t p = atomic_load_explicit(&my_pid, memory_order_relaxed);
    if (!p) {
        p = getpid();
        atomic_store_explicit(&my_pid, p, memory_order_relaxed);
    }
    return p;
}

/* The rare path: the record, then the report. */
static void misuse(const PGconn *conn, enum pql_misuse kind, int other_tid)
{
    struct pql_conn rec;
    if (pql_registry_get(conn, &rec))
        pql_misuse_report(&rec, kind, other_tid);
}

struct pql_live *pql_query_begin(PGconn *conn)
{
    if (!conn || !atomic_load_explicit(&pql_live_on, memory_order_relaxed))
        return NULL;
    struct pql_live *l = pql_registry_live(conn);
    if (!l)
        return NULL;
    int me = pql_tid();
    if (atomic_load_explicit(&l->fork_gen, memory_order_relaxed) !=
            atomic_load_explicit(&pql_fork_gen, memory_order_relaxed) &&
        !atomic_exchange(&l->warned_fork, true))
        misuse(conn, PQL_MISUSE_FORK, 0);
    /* Plain loads and stores, no read-modify-write: two threads entering at the very same instant may go
     * unnoticed, but one entering while another waits inside libpq (the case that corrupts) is seen. */
    int other = atomic_load_explicit(&l->last_tid, memory_order_relaxed);
    if (atomic_load_explicit(&l->in_call, memory_order_relaxed) && other != me &&
        !atomic_exchange(&l->warned_threads, true))
        misuse(conn, PQL_MISUSE_THREADS, other);
    atomic_store_explicit(&l->last_tid, me, memory_order_relaxed);
    atomic_store_explicit(&l->in_call, 1, memory_order_relaxed);
    return l;
}

void pql_query_end(struct pql_live *l, PGconn *conn)
{
    if (!l)
        return;
    int tx = pql_real.PQtransactionStatus(conn);
    int64_t now = pql_live_now_ns();
    atomic_store_explicit(&l->tx, tx, memory_order_relaxed);
    int before = atomic_load_explicit(&l->settled, memory_order_relaxed);
    if (tx != PQTRANS_ACTIVE && tx != before) {
        atomic_store_explicit(&l->settled, tx, memory_order_relaxed);
        if (tx == PQTRANS_IDLE || tx == PQTRANS_UNKNOWN) {
            /* Once per transaction: a runtime's teardown rolling back forgotten work (DBI's DESTROY
             * does) keeps the transaction's stack for the exit report. */
            if ((before == PQTRANS_INTRANS || before == PQTRANS_INERROR) && pql_runtime_in_teardown())
                atomic_store_explicit(&l->ended_in_teardown, true, memory_order_relaxed);
            else
                atomic_store_explicit(&l->tx_stack, 0, memory_order_relaxed);
        } else if (before == PQTRANS_IDLE) {
            /* A transaction began in this call: remember where (the culprit when it is never ended). */
            uintptr_t frames[PQL_MAX_FRAMES];
            int n = pql_stack_capture(frames, pql_shim_settings()->stack_depth);
            atomic_store_explicit(&l->tx_stack, pql_stack_intern(frames, n), memory_order_relaxed);
            atomic_store_explicit(&l->tx_began_ns, now, memory_order_relaxed);
        }
    }
    atomic_store_explicit(&l->last_ns, now, memory_order_relaxed);
    /* The thread that ran this call last is the one now; a later caller overwrote it only on misuse. */
    if (atomic_load_explicit(&l->last_tid, memory_order_relaxed) == pql_tid())
        atomic_store_explicit(&l->in_call, 0, memory_order_relaxed);
}

void pql_live_fork_child(void)
{
    pthread_mutex_init(&pool_lock, NULL);
    my_tid = 0;
    atomic_store(&my_pid, 0);
    atomic_fetch_add(&pql_fork_gen, 1);
}
