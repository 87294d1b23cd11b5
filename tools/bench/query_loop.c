/* Benchmark workload: the shim's cost per query call, without a server round trip. PQgetResult on an idle,
 * connected connection returns NULL at once inside libpq, so a loop of it measures the interposer's
 * fixed work (the hint lookup, the clock read, PQtransactionStatus, the atomic stores) against a call of
 * a few nanoseconds. Run by tools/bench/run with and without LD_PRELOAD=libpqleak.so; connects through
 * the PG* variables by default.
 *
 *   query_loop [-c CONNINFO] [-w WARMUP] [-s] N
 *
 * Opens two connections, then times N calls on one thread, then N calls on each of two threads at once,
 * each thread on its own connection (they share nothing in libpq; the shim must not make them share a
 * lock or a cache line). After WARMUP untimed calls per thread (default N / 10). Prints on stdout:
 *   ns_per_call_1t <float>    wall ns per call, one thread
 *   ns_per_call_2t <float>    wall ns per call in each thread, two threads at once (mean of the two)
 * With -s only the one-thread phase runs (for callgrind, which serializes threads anyway).
 * Exits 0; 1 (after closing every connection) when a connect fails or a call returns a result.
 * The timed loop is the function measured_calls, which callgrind's --toggle-collect selects. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The measured part: N calls of PQgetResult on an idle connection; 0 when one returned a result. */
__attribute__((noinline)) int measured_calls(PGconn *conn, long n);
__attribute__((noinline)) int measured_calls(PGconn *conn, long n)
{
    for (long i = 0; i < n; i++) {
        PGresult *r = PQgetResult(conn);
        if (r) {
            PQclear(r);
            return 0;
        }
    }
    return 1;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct worker {
    PGconn *conn;
    long n, warmup;
    pthread_barrier_t *start;
    double ns; /* wall time of the timed calls */
    int ok;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    w->ok = measured_calls(w->conn, w->warmup);
    if (w->start)
        pthread_barrier_wait(w->start);
    double t0 = now_ns();
    w->ok = measured_calls(w->conn, w->n) && w->ok;
    w->ns = now_ns() - t0;
    return NULL;
}

static long parse_count(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "query_loop: %s must be a non-negative integer, not '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: query_loop [-c CONNINFO] [-w WARMUP] [-s] N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *conninfo = "";
    long warmup = -1;
    int single = 0, opt;
    while ((opt = getopt(argc, argv, "c:w:s")) != -1) {
        switch (opt) {
        case 'c':
            conninfo = optarg;
            break;
        case 'w':
            warmup = parse_count(optarg, "WARMUP");
            break;
        case 's':
            single = 1;
            break;
        default:
            usage();
        }
    }
    if (optind != argc - 1)
        usage();
    long n = parse_count(argv[optind], "N");
    if (n == 0)
        usage();
    if (warmup < 0)
        warmup = n / 10;

    PGconn *conns[2] = {PQconnectdb(conninfo), PQconnectdb(conninfo)};
    int status = 0;
    for (int i = 0; i < 2; i++) {
        if (!conns[i] || PQstatus(conns[i]) != CONNECTION_OK) {
            fprintf(stderr, "query_loop: connect failed: %s",
                    conns[i] ? PQerrorMessage(conns[i]) : "out of memory\n");
            status = 1;
        }
    }

    struct worker one = {.conn = conns[0], .n = n, .warmup = warmup};
    if (status == 0) {
        work(&one);
        if (!one.ok)
            status = 1;
    }
    struct worker two[2] = {{.conn = conns[0], .n = n, .warmup = warmup},
                            {.conn = conns[1], .n = n, .warmup = warmup}};
    if (status == 0 && !single) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            two[i].start = &start;
            if (pthread_create(&th[i], NULL, work, &two[i]) != 0) {
                fprintf(stderr, "query_loop: cannot start a thread\n");
                exit(1); /* the other thread may be waiting at the barrier */
            }
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
        if (!two[0].ok || !two[1].ok)
            status = 1;
    }
    if (status == 0) {
        printf("ns_per_call_1t %.3f\n", one.ns / (double)n);
        if (!single)
            printf("ns_per_call_2t %.3f\n", (two[0].ns + two[1].ns) / 2 / (double)n);
    } else if (conns[0] && conns[1] && PQstatus(conns[0]) == CONNECTION_OK &&
               PQstatus(conns[1]) == CONNECTION_OK) {
        fprintf(stderr, "query_loop: PQgetResult returned a result on an idle connection\n");
    }
    PQfinish(conns[0]);
    PQfinish(conns[1]);
    return status;
}
