/* Benchmark workload: one process doing C connects, each followed by Q trivial queries (PQexec("select
 * 1")), then PQfinish: the whole-process cost of the shim (start-up, connects, queries, exit) on a small
 * but realistic client. Run under callgrind by tools/bench/run (bench "whole_process") with and without
 * LD_PRELOAD=libpqleak.so; connects through the PG* variables.
 *
 *   mixed_loop [-c CONNECTS] [-q QUERIES_PER_CONNECT]      (defaults 40 and 100)
 *
 * Prints "queries <n>" on stdout and exits 0; 1 (after closing the connection) when a connect or a query
 * fails, with libpq's message on stderr. Every connection is closed, so the shim reports no leak. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long connects = 40, queries = 100, done = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:q:")) != -1) {
        if (opt == 'c')
            connects = atol(optarg);
        else if (opt == 'q')
            queries = atol(optarg);
        else
            return 2;
    }
    for (long i = 0; i < connects; i++) {
        PGconn *c = PQconnectdb("");
        if (!c || PQstatus(c) != CONNECTION_OK) {
            fprintf(stderr, "mixed_loop: connect failed: %s", c ? PQerrorMessage(c) : "out of memory\n");
            PQfinish(c);
            return 1;
        }
        for (long j = 0; j < queries; j++) {
            PGresult *r = PQexec(c, "select 1");
            int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
            PQclear(r);
            if (!ok) {
                fprintf(stderr, "mixed_loop: query failed: %s", PQerrorMessage(c));
                PQfinish(c);
                return 1;
            }
            done++;
        }
        PQfinish(c);
    }
    printf("queries %ld\n", done);
    return 0;
}
