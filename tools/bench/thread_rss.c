/* Benchmark workload: N threads each connect once, close, and wait; with every thread parked, the
 * process's resident memory is printed, then they exit. Run by tools/bench/run with and without the
 * shim: what a connecting thread costs in memory (libunwind keeps a trace cache per thread that
 * captured a stack: 256 KiB, until the thread exits). The connection comes from PG* variables.
 *
 *   thread_rss N
 *
 * Prints "rss_kib <int>" on stdout and exits 0; 1 (with libpq's message) if a connect failed. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_barrier_t parked, go;
static int failed;

static void *worker(void *arg)
{
    (void)arg;
    PGconn *c = PQconnectdb("");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "thread_rss: %s", PQerrorMessage(c));
        __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
    }
    PQfinish(c);
    pthread_barrier_wait(&parked);
    pthread_barrier_wait(&go);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc == 2 ? atoi(argv[1]) : 0;
    if (n < 1 || n > 1024) {
        fprintf(stderr, "usage: thread_rss N (1..1024)\n");
        return 2;
    }
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    if (!t)
        return 1;
    pthread_barrier_init(&parked, NULL, (unsigned)n + 1);
    pthread_barrier_init(&go, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "thread_rss: pthread_create failed\n");
            return 1;
        }
    pthread_barrier_wait(&parked);
    long pages = -1, rss = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    if (f)
        fclose(f);
    pthread_barrier_wait(&go);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
    if (failed || rss < 0)
        return 1;
    printf("rss_kib %ld\n", rss * 4);
    return 0;
}
