/* The query hooks: pql_query_begin/end run around every query call of the application (outermost
 * call only) and keep the connection's live state current: no lock, a coarse clock read and a few
 * relaxed atomics; a stack is captured only when a transaction begins. Misuse (a connection used by a
 * forked child, or by two threads at once) is found here and returned, once per connection, for the
 * caller to report. Application threads; not signal-safe. */
#define _GNU_SOURCE
#include "query.h"

#include "proc.h"
#include "real.h"
#include "registry.h"
#include "runtime.h"
#include "stack.h"
#include "testname.h"

#include <stdatomic.h>

static _Atomic bool on;
static int stack_depth;

void pql_query_setup(const struct pql_settings *s)
{
    stack_depth = s->stack_depth;
    atomic_store(&on, true);
}

struct pql_live *pql_query_begin(PGconn *conn, struct pql_misuse *m)
{
    if (!conn || !atomic_load_explicit(&on, memory_order_relaxed))
        return NULL;
    struct pql_live *l = pql_registry_live(conn);
    if (!l)
        return NULL;
    int me = pql_tid();
    if (atomic_load_explicit(&l->fork_gen, memory_order_relaxed) !=
            atomic_load_explicit(&pql_fork_gen, memory_order_relaxed) &&
        !atomic_exchange(&l->warned_fork, true))
        m->forked = true;
    /* Plain loads and stores, no read-modify-write: two threads entering at the very same instant may go
     * unnoticed, but one entering while another waits inside libpq (the case that corrupts) is seen. */
    int other = atomic_load_explicit(&l->last_tid, memory_order_relaxed);
    if (atomic_load_explicit(&l->in_call, memory_order_relaxed) && other != me &&
        !atomic_exchange(&l->warned_threads, true))
        m->other_tid = other;
    atomic_store_explicit(&l->last_tid, me, memory_order_relaxed);
    atomic_store_explicit(&l->in_call, 1, memory_order_relaxed);
    return l;
}

void pql_query_end(struct pql_live *l, PGconn *conn)
{
    if (!l)
        return;
    int tx = pql_real.PQtransactionStatus(conn);
    int64_t now = pql_coarse_ns();
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
            int n = pql_stack_capture(frames, stack_depth);
            uint32_t id = pql_stack_intern(frames, n);
            atomic_store_explicit(&l->tx_test, pql_testname_now(), memory_order_relaxed);
            atomic_store_explicit(&l->tx_stack, id, memory_order_relaxed);
            atomic_store_explicit(&l->last_stack, id, memory_order_relaxed);
            atomic_store_explicit(&l->tx_began_ns, now, memory_order_relaxed);
        }
    }
    atomic_store_explicit(&l->last_ns, now, memory_order_relaxed);
    /* The thread that ran this call last is the one now; a later caller overwrote it only on misuse. */
    if (atomic_load_explicit(&l->last_tid, memory_order_relaxed) == pql_tid())
        atomic_store_explicit(&l->in_call, 0, memory_order_relaxed);
}
