/* This process's and this thread's identity, and clocks, cached so that the hot paths make no system
 * call. Any thread; pql_pid, pql_tid and the clocks are async-signal-safe (no lock, no allocation). */
#ifndef PQL_PROC_H
#define PQL_PROC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* This thread's tid, cached; inline because every query call asks. The shim is preloaded, so static
 * TLS is there (initial-exec). */
extern __thread int pql_tid_cached __attribute__((tls_model("initial-exec"), visibility("hidden")));
int pql_tid_lookup(void);

static inline int pql_tid(void)
{
    int t = pql_tid_cached;
    return t ? t : pql_tid_lookup();
}

/* This process's pid, cached (0 until first asked, and again in a fork child); inline because every
 * connect and close asks. */
extern _Atomic pid_t pql_pid_cached __attribute__((visibility("hidden")));
pid_t pql_pid_lookup(void);

static inline pid_t pql_pid(void)
{
    pid_t p = atomic_load_explicit(&pql_pid_cached, memory_order_relaxed);
    return p ? p : pql_pid_lookup();
}

/* Seconds on clock id (CLOCK_MONOTONIC for durations, CLOCK_REALTIME for report times). */
double pql_clock_s(clockid_t id);

/* Monotonic time in ns, coarse (a few ms) and cheap: read on every query call. */
static inline int64_t pql_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Monotonic time in ns, precise: where the order of events in two processes matters. */
static inline int64_t pql_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* In a forked child: the cached pid and tid are the parent's. Registered by pql_proc_setup. */
void pql_proc_setup(void);

/* pthread_once for what every connect asks: once fn has run, a flag answers without the call. */
struct pql_once {
    pthread_once_t once;
    _Atomic bool done;
};
#define PQL_ONCE_INIT                                                                                        \
    {                                                                                                        \
        PTHREAD_ONCE_INIT, false                                                                             \
    }

static inline void pql_once(struct pql_once *o, void (*fn)(void))
{
    if (__builtin_expect(!atomic_load_explicit(&o->done, memory_order_acquire), 0)) {
        pthread_once(&o->once, fn); /* returns once fn has run, in whichever thread ran it */
        atomic_store_explicit(&o->done, true, memory_order_release);
    }
}

/* Registers a module's fork handlers (pthread_atfork) the first time it is called with this flag;
 * later calls do nothing. Modules call it from their setup, in the lock order of lifecycle/shim.c. */
void pql_atfork_once(atomic_flag *once, void (*prepare)(void), void (*parent)(void), void (*child)(void));

#endif
