/* The query hooks' slow paths (the fast path is inline in query.h): finding a connection's live state
 * on a miss of the per-thread cache, the misuse findings (a connection used by a forked child, or by
 * two threads at once), returned once per connection for the caller to report, and the bookkeeping of
 * a completed command: transaction status, last activity (the coarse clock; the precise one once the
 * process has forked), and a stack captured only when a transaction begins. Application threads; not
 * signal-safe. */
#define _GNU_SOURCE
#include "query.h"

#include "proc.h"
#include "real.h"
#include "runtime.h"
#include "stack.h"
#include "testname.h"
#include "unwind.h"

/* QUERY_UNSET until the shim starts (calls go straight through, the cache left alone); QUERY_OFF with
 * PQLEAK_TRACK_QUERIES=0 or PQLEAK_DISABLE=1: a thread's first call sets its cache's key to
 * PQL_QUERY_INSIDE for good, so every later call takes the nested call's path straight to libpq. */
enum { QUERY_UNSET, QUERY_ON, QUERY_OFF };
static _Atomic int mode;
static int stack_depth;

__thread struct pql_query_cache pql_query_tls __attribute__((tls_model("initial-exec")));

/* Never any connection's (key 0): what the cache points to when a fork happens inside a query call. */
static struct pql_live no_live;

/* The child's only thread is the forking one: emptying its cache sends its first query on each
 * connection through pql_query_find, where an inherited connection is found out. A fork inside a query
 * call (a notice processor's) stays inside it: the call's end puts its key back, and no_live makes
 * that key miss all the same. */
static void fork_child(void)
{
    if (!(pql_query_tls.key & PQL_QUERY_INSIDE))
        pql_query_tls.key = 0;
    pql_query_tls.live = &no_live;
}

void pql_query_setup(const struct pql_settings *s)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    if (!s->track_queries || s->disable) {
        atomic_store(&mode, QUERY_OFF);
        return;
    }
    stack_depth = s->stack_depth;
    pql_atfork_once(&once, NULL, NULL, fork_child);
    atomic_store(&mode, QUERY_ON);
}

static void (*misuse_fn)(PGconn *conn, const struct pql_misuse *m);

void pql_query_on_misuse(void (*fn)(PGconn *conn, const struct pql_misuse *m))
{
    misuse_fn = fn;
}

/* The PGconn is libpq's and the caller's: the finding only reads it. */
static void misuse(const PGconn *conn, const struct pql_misuse *m)
{
    if (misuse_fn)
        misuse_fn((PGconn *)conn, m);
}

struct pql_live *pql_query_find(const PGconn *conn)
{
    int m = atomic_load_explicit(&mode, memory_order_relaxed);
    if (m == QUERY_OFF) {
        pql_query_tls.key = PQL_QUERY_INSIDE;
        pql_query_tls.live = &no_live;
    }
    if (!conn || m != QUERY_ON)
        return NULL;
    struct pql_live *l = pql_registry_live(conn);
    if (!l)
        return NULL;
    if (atomic_load_explicit(&l->fork_gen, memory_order_relaxed) !=
            atomic_load_explicit(&pql_fork_gen, memory_order_relaxed) &&
        !atomic_exchange(&l->warned_fork, true))
        misuse(conn, &(struct pql_misuse){.forked = true});
    pql_query_tls.live = l;
    pql_query_tls.tid = pql_tid();
    pql_query_tls.key = pql_registry_key(conn);
    return l;
}

void pql_query_mark(const PGconn *conn)
{
    struct pql_live *l = pql_query_tls.live;
    int other = atomic_load_explicit(&l->busy_tid, memory_order_relaxed);
    /* Its own mark is only left by a call that never returned (a callback's longjmp out of libpq). */
    if (other != 0 && other != pql_query_tls.tid && !atomic_exchange(&l->warned_threads, true))
        misuse(conn, &(struct pql_misuse){.other_tid = other});
    pql_query_enter();
}

static void settle(struct pql_live *l, int before, int tx, int64_t now, const void *frame)
{
    atomic_store_explicit(&l->settled, tx, memory_order_relaxed);
    if (tx == PQTRANS_IDLE || tx == PQTRANS_UNKNOWN) {
        /* Once per transaction: a runtime's teardown rolling back forgotten work (DBI's DESTROY does)
         * keeps the transaction's stack for the exit report. */
        if ((before == PQTRANS_INTRANS || before == PQTRANS_INERROR) && pql_runtime_in_teardown())
            atomic_store_explicit(&l->ended_in_teardown, true, memory_order_relaxed);
        else
            atomic_store_explicit(&l->tx_stack, 0, memory_order_relaxed);
    } else if (before == PQTRANS_IDLE) {
        /* A transaction began in this call: remember where (the culprit when it is never ended). */
        uintptr_t frames[PQL_MAX_FRAMES];
        struct pql_unwind_start caller = pql_unwind_caller_of(frame);
        int n = pql_stack_capture_from(frames, stack_depth, &caller);
        uint32_t id = pql_stack_intern(frames, n);
        atomic_store_explicit(&l->tx_test, pql_testname_now(), memory_order_relaxed);
        atomic_store_explicit(&l->tx_stack, id, memory_order_relaxed);
        atomic_store_explicit(&l->last_stack, id, memory_order_relaxed);
        atomic_store_explicit(&l->tx_began_ns, now, memory_order_relaxed);
    }
}

void pql_query_completed(const void *frame)
{
    struct pql_live *l = pql_query_tls.live;
    PGconn *conn = (PGconn *)pql_registry_key((const PGconn *)(pql_query_tls.key & ~PQL_QUERY_INSIDE));
    int tx = pql_real.PQtransactionStatus(conn);
    uint8_t forks = atomic_load_explicit(&pql_forks, memory_order_relaxed);
    /* In a process that forked, whether its last use of a connection came before a child's decides a
     * fork hand-off (the command's rule): the precise clock then, not the coarse one's tick. */
    int64_t now = __builtin_expect(forks != 0, 0) ? pql_mono_ns() : pql_coarse_ns();
    atomic_store_explicit(&l->tx, tx, memory_order_relaxed);
    int before = atomic_load_explicit(&l->settled, memory_order_relaxed);
    if (__builtin_expect(tx != before, 0) && tx != PQTRANS_ACTIVE)
        settle(l, before, tx, now, frame);
    atomic_store_explicit(&l->last_ns, now, memory_order_relaxed);
    /* A plain store (no compare): the line is written anyway. */
    atomic_store_explicit(&l->use_fork, forks, memory_order_relaxed);
}
