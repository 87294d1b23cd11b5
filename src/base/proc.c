/* Cached pid/tid and clocks (proc.h). The caches are reset in a forked child by the fork handler this
 * module registers itself. Any thread, signal handlers included. */
#define _GNU_SOURCE
#include "proc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

_Atomic pid_t pql_pid_cached;
__thread int pql_tid_cached __attribute__((tls_model("initial-exec")));

int pql_tid_lookup(void)
{
    pql_tid_cached = gettid();
    return pql_tid_cached;
}

pid_t pql_pid_lookup(void)
{
    pid_t p = getpid();
    atomic_store_explicit(&pql_pid_cached, p, memory_order_relaxed);
    return p;
}

double pql_clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fork_child(void)
{
    pql_tid_cached = 0; /* the forking thread's TLS is the child's only thread */
    atomic_store(&pql_pid_cached, 0);
}

void pql_atfork_once(atomic_flag *once, void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    if (!atomic_flag_test_and_set(once))
        pthread_atfork(prepare, parent, child);
}

void pql_proc_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
}
