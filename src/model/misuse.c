/* The misuse list (misuse.h): a growing array under one leaf lock. */
#include "misuse.h"

#include "proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pql_misuse_event *events;
static size_t n, cap;

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

static void fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
}

void pql_misuse_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
}
