/* Benchmark workload: N x (PQconnectdb(conninfo); PQfinish), timed with CLOCK_MONOTONIC, after a few
 * untimed warm-up connects (the shim's lazy set-up, libpq's first-call costs). Run by tools/bench/run
 * with and without LD_PRELOAD=libpqleak.so; the connection comes from PG* variables by default.
 *
 *   connect_loop [-w WARMUP] [-c CONNINFO] [-f] N
 *
 * With -f every connect is expected to fail (e.g. -c host=/nonexistent, which fails in microseconds
 * without a server): the client's own cost per connect, with no round trip; a connect that succeeds is
 * then the error.
 * Prints "ns_per_iter <float>" (wall time) and "cpu_ns_per_iter <float>" (this process's CPU time, user +
 * system: the client side alone) on stdout and exits 0; on a failed connect prints libpq's message on
 * stderr and exits 1 (every connection is closed either way, so the shim never reports a leak).
 * The timed loop is the function measured_loop, which callgrind's --toggle-collect selects. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int expect_fail; /* -f */

/* One connect+finish; false (after printing why) if the connect failed, or with -f if it connected. */
static int connect_once(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    int connected = c && PQstatus(c) == CONNECTION_OK, ok = c && connected != expect_fail;
    if (!ok && c && expect_fail)
        fprintf(stderr, "connect_loop: -f: '%s' connected; it must fail\n", conninfo);
    else if (!ok)
        fprintf(stderr, "connect_loop: connect failed: %s", c ? PQerrorMessage(c) : "out of memory\n");
    PQfinish(c);
    return ok;
}

/* The measured part: external and not inlined, so that callgrind can toggle collection on it by name. */
__attribute__((noinline)) int measured_loop(const char *conninfo, long n);
__attribute__((noinline)) int measured_loop(const char *conninfo, long n)
{
    for (long i = 0; i < n; i++)
        if (!connect_once(conninfo))
            return 0;
    return 1;
}

static double now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long parse_count(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "connect_loop: %s must be a non-negative integer, not '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *conninfo = "";
    long warmup = 5;
    int opt;
    while ((opt = getopt(argc, argv, "w:c:f")) != -1) {
        switch (opt) {
        case 'w':
            warmup = parse_count(optarg, "WARMUP");
            break;
        case 'c':
            conninfo = optarg;
            break;
        case 'f':
            expect_fail = 1;
            break;
        default:
            fprintf(stderr, "usage: connect_loop [-w WARMUP] [-c CONNINFO] [-f] N\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: connect_loop [-w WARMUP] [-c CONNINFO] [-f] N\n");
        return 2;
    }
    long n = parse_count(argv[optind], "N");
    if (n == 0) {
        fprintf(stderr, "connect_loop: N must be at least 1\n");
        return 2;
    }

    for (long i = 0; i < warmup; i++)
        if (!connect_once(conninfo))
            return 1;
    double t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    int ok = measured_loop(conninfo, n);
    double t1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    if (!ok)
        return 1;
    printf("ns_per_iter %.1f\n", (t1 - t0) / (double)n);
    printf("cpu_ns_per_iter %.1f\n", (c1 - c0) / (double)n);
    return 0;
}
