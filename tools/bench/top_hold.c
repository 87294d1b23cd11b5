/* Benchmark workload for tools/bench/top: one connection held (every other one idle in a transaction)
 * until the file STOP appears, so that `pqleak top` has a process to ask. Prints "ready" once connected.
 *
 *   top_hold STOP
 *
 * The connection comes from PG* variables. Exits 0 after closing it; 1 when the connect fails. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: top_hold STOP\n");
        return 2;
    }
    PGconn *c = PQconnectdb("");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "top_hold: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    if (getpid() % 2)
        PQclear(PQexec(c, "begin; select 1"));
    printf("ready\n");
    fflush(stdout);
    while (access(argv[1], F_OK) != 0)
        usleep(100000);
    PQfinish(c);
    return 0;
}
