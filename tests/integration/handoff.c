/* A C connection pool that hands connections over: a filler thread opens them, workers check them out.
 * pool-leak: a worker keeps its connection (never returned, never closed): the report must name the
 * worker, where the connection was last used, not the filler that opened it. pool-clean: the fixed
 * twin, which returns it. Built -O0 -g so that every function is a frame of its own. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL 3
static PGconn *pool[POOL];

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "handoff: %s failed\n", what);
        exit(99);
    }
}

static void *pool_filler(void *arg)
{
    (void)arg;
    for (int i = 0; i < POOL; i++) {
        pool[i] = PQconnectdb("");
        must(PQstatus(pool[i]) == CONNECTION_OK, PQerrorMessage(pool[i]));
    }
    return NULL;
}

static void run_in_transaction(PGconn *c)
{
    const char *steps[] = {"BEGIN", "SELECT 1", "COMMIT"};
    for (int i = 0; i < 3; i++) {
        PGresult *r = PQexec(c, steps[i]);
        must(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, steps[i]);
        PQclear(r);
    }
}

static int give_back;

/* Checks out pool[0], uses it, and returns it only when told to. */
static void *worker_keeps(void *arg)
{
    (void)arg;
    PGconn *c = pool[0];
    pool[0] = NULL;
    run_in_transaction(c);
    if (give_back)
        pool[0] = c;
    return NULL;
}

int main(int argc, char **argv)
{
    give_back = argc > 1 && !strcmp(argv[1], "pool-clean");
    pthread_t t;
    must(pthread_create(&t, NULL, pool_filler, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    must(pthread_create(&t, NULL, worker_keeps, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    for (int i = 0; i < POOL; i++)
        if (pool[i])
            PQfinish(pool[i]);
    return 0;
}
