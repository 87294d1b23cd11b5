/* The misuse list (misuse.h): a growing array under one leaf lock; the time of this process's last
 * fork, from its pthread_atfork parent handler. */
#include "misuse.h"

#include "proc.h"
#include "registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pql_misuse_event *events;
static size_t n, cap;
static _Atomic int64_t last_fork_ns; /* CLOCK_MONOTONIC of this process's last fork; 0: none */
static atomic_uint notes;

void pql_misuse_add(const struct pql_misuse_event *e)
{
    pthread_mutex_lock(&lock);
    if (n == cap) {
        size_t c = cap ? 2 * cap : 8;
        struct pql_misuse_event *v = realloc(events, c * sizeof(*v));
        if (v) {
            events = v;
            cap = c;
        }
    }
    if (n < cap)
        events[n++] = *e;
    pthread_mutex_unlock(&lock);
}

size_t pql_misuse_snapshot(struct pql_misuse_event **out)
{
    pid_t me = pql_pid();
    size_t k = 0;
    pthread_mutex_lock(&lock);
    *out = n ? malloc(n * sizeof(**out)) : NULL;
    for (size_t i = 0; *out && i < n; i++)
        if (events[i].pid == me)
            (*out)[k++] = events[i];
    pthread_mutex_unlock(&lock);
    if (!k) {
        free(*out);
        *out = NULL;
    }
    return k;
}

void pql_misuse_note_close(const struct pql_conn *rec)
{
    int64_t fork_ns = atomic_load_explicit(&last_fork_ns, memory_order_relaxed);
    if (!fork_ns || rec->pid != pql_pid() || !rec->server_pid || rec->opened_mono * 1e9 >= (double)fork_ns ||
        atomic_fetch_add(&notes, 1) >= PQL_MISUSE_MAX_NOTES)
        return;
    /* A use before the fork was timed on the coarse clock, which lags the precise one by up to a tick:
     * measured against the precise clock now, the time is never later than the real last use. */
    int64_t last_ns = pql_conn_last_use_ns(rec);
    double last = pql_clock_s(CLOCK_REALTIME) - (pql_clock_s(CLOCK_MONOTONIC) - (double)last_ns / 1e9);
    struct pql_misuse_event e = {.kind = PQL_MISUSE_FORK,
                                 .conn = rec->id,
                                 .server_pid = rec->server_pid,
                                 .pid = rec->pid,
                                 .opened_by = rec->pid,
                                 .closed = true,
                                 .time = last,
                                 .open_stack = rec->stack,
                                 .mono_ns = last_ns,
                                 .last_use_fork = rec->use_fork};
    pql_misuse_add(&e);
}

static void fork_parent(void)
{
    atomic_store(&last_fork_ns, (int64_t)(pql_clock_s(CLOCK_MONOTONIC) * 1e9));
}

static void fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    atomic_store(&notes, 0);
}

void pql_misuse_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, fork_parent, fork_child);
}
