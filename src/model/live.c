/* Live connection state: never-freed, cache-line aligned structs, one per open connection, written by
 * the query hooks (query.c) and read by snapshots. The registry keeps each with its entry, for the next
 * connection that entry records, so that a connect takes no lock here; the pool lock (a leaf: nothing
 * else is taken while it is held) only guards the carving of new blocks. Any thread; not signal-safe. */
#define _GNU_SOURCE
#include "live.h"

#include "proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Atomic uint32_t pql_fork_gen;
_Atomic uint8_t pql_forks;
pid_t pql_born_of;
uint8_t pql_born_fork;

_Static_assert(sizeof(struct pql_live) == 64, "one cache line per connection");

/* Blocks are carved under this leaf lock; the structs are then kept with the registry's entries. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* Carved from blocks of 64: one aligned allocation per block instead of one per connection saves each
 * record the allocator's header and alignment padding (never freed either way). */
struct pql_live *pql_live_new(void)
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

void pql_live_start(struct pql_live *l, uintptr_t key, int tx)
{
    atomic_store_explicit(&l->fork_gen, atomic_load(&pql_fork_gen), memory_order_relaxed);
    atomic_store_explicit(&l->busy_tid, 0, memory_order_relaxed);
    atomic_store_explicit(&l->last_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&l->tx, tx, memory_order_relaxed);
    atomic_store_explicit(&l->settled, tx, memory_order_relaxed);
    atomic_store_explicit(&l->tx_stack, 0, memory_order_relaxed);
    atomic_store_explicit(&l->last_stack, 0, memory_order_relaxed);
    atomic_store_explicit(&l->tx_began_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&l->suspect, PQL_SUSPECT_NONE, memory_order_relaxed);
    atomic_store_explicit(&l->warned_fork, false, memory_order_relaxed);
    atomic_store_explicit(&l->warned_threads, false, memory_order_relaxed);
    atomic_store_explicit(&l->ended_in_teardown, false, memory_order_relaxed);
    atomic_store_explicit(&l->use_fork, atomic_load_explicit(&pql_forks, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&l->key, key, memory_order_release);
}

void pql_live_stop(struct pql_live *l)
{
    atomic_store_explicit(&l->key, 0, memory_order_release);
}

static void fork_prepare(void)
{
    uint8_t n = atomic_load(&pql_forks);
    if (n < PQL_FORKS_UNKNOWN)
        atomic_store(&pql_forks, n + 1);
}

static void fork_child(void)
{
    pthread_mutex_init(&pool_lock, NULL);
    atomic_fetch_add(&pql_fork_gen, 1);
    pql_born_of = getppid();
    pql_born_fork = atomic_load(&pql_forks);
}

void pql_live_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, fork_prepare, NULL, fork_child);
}
