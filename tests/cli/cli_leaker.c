/* A small libpq program for the pqleak command's end-to-end tests. Opens N connections (PQconnectdb
 * with the PG* environment) from one of three functions, each a distinct leak site, and exits without
 * closing them; "twin" from a function named as the first, leak_site_a, in another file
 * (cli_leaker_twin.c); "clean" closes its connections. "handoff" hands its connection to a forked child that
 * uses and closes it, as pg_basebackup -X stream does, and never touches it again; "handoff-late" also
 * queries it after the child's use (a leak and a misuse). "basebackup" is pg_basebackup -X stream
 * whole: the parent's main connection is finished by an atexit handler, which the child runs too when it
 * exits, after the parent's last use of it; "basebackup-late" queries the main connection after that
 * (the child's close ended its session: misuse). Exits 1 when a connection fails. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64

static PGconn *conns[MAX_CONNS];
static int nconns;

void cli_leaker_keep(PGconn *c);
void twin_site(int n);

void cli_leaker_keep(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cli_leaker: connection failed: %s", PQerrorMessage(c));
        exit(1);
    }
    conns[nconns++] = c;
}

/* Each site calls PQconnectdb itself, so each is the innermost frame of the user's code in its stack. */
__attribute__((noinline)) void leak_site_a(int n);
__attribute__((noinline)) void leak_site_b(int n);
__attribute__((noinline)) void leak_site_c(int n);
__attribute__((noinline)) void clean_site(int n);

void leak_site_a(int n)
{
    for (int i = 0; i < n; i++)
        cli_leaker_keep(PQconnectdb(""));
}

void leak_site_b(int n)
{
    for (int i = 0; i < n; i++)
        cli_leaker_keep(PQconnectdb(""));
}

void leak_site_c(int n)
{
    for (int i = 0; i < n; i++)
        cli_leaker_keep(PQconnectdb(""));
}

void clean_site(int n)
{
    for (int i = 0; i < n; i++)
        cli_leaker_keep(PQconnectdb(""));
    while (nconns > 0)
        PQfinish(conns[--nconns]);
}

__attribute__((noinline)) void stream_in_child(PGconn *c);
__attribute__((noinline)) int hand_off(int late);

void stream_in_child(PGconn *c)
{
    PQclear(PQexec(c, "SELECT 1"));
    PQfinish(c);
}

/* Opens a connection, forks, the child streams on it and closes it; the parent waits for the child and
 * (late) queries the connection once more. Returns 0, or 1 when something failed. */
int hand_off(int late)
{
    PGconn *c = PQconnectdb("");
    cli_leaker_keep(c);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        stream_in_child(c);
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    if (late)
        PQclear(PQexec(c, "SELECT 1")); /* fails: the child ended the session; still a use */
    return 0;
}

static PGconn *main_conn;

static void disconnect_atexit(void)
{
    if (main_conn)
        PQfinish(main_conn);
}

__attribute__((noinline)) int base_backup(int late);

/* The parent uses its main connection after the fork, then tells the child (a pipe) to finish: the child
 * streams on the WAL connection, closes it and exits, running the parent's atexit handler. */
int base_backup(int late)
{
    main_conn = PQconnectdb("");
    PGconn *wal = PQconnectdb("");
    if (PQstatus(main_conn) != CONNECTION_OK || PQstatus(wal) != CONNECTION_OK)
        return 1;
    atexit(disconnect_atexit);
    int go[2];
    if (pipe(go) != 0)
        return 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1)
            _exit(1);
        stream_in_child(wal);
        exit(0);
    }
    close(go[0]);
    PQclear(PQexec(main_conn, "SELECT 2")); /* the base backup itself, on the main connection */
    if (write(go[1], "x", 1) != 1)
        return 1;
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    if (late) {
        /* When the late use began, on the precise clock: the report's time of it may not be earlier. Read
         * just after a tick of the coarse clock, so that the use ends within that tick: a coarse reading
         * of its end (what a process that never forked keeps) would then come out before it. */
        struct timespec c0, c1, ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &c0);
        do
            clock_gettime(CLOCK_MONOTONIC_COARSE, &c1);
        while (c1.tv_sec == c0.tv_sec && c1.tv_nsec == c0.tv_nsec);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        fprintf(stderr, "cli_leaker: late use at %lld\n", (long long)ts.tv_sec * 1000000000 + ts.tv_nsec);
        PQclear(PQexec(main_conn, "SELECT 3")); /* fails: the child's close ended the session */
    }
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 1;
    if (argc < 2 || n < 1 || n > MAX_CONNS) {
        fprintf(
            stderr,
            "usage: cli_leaker a|b|c|twin|clean|handoff|handoff-late|basebackup|basebackup-late [N (1-%d)]\n",
            MAX_CONNS);
        return 2;
    }
    if (strcmp(argv[1], "a") == 0)
        leak_site_a(n);
    else if (strcmp(argv[1], "b") == 0)
        leak_site_b(n);
    else if (strcmp(argv[1], "c") == 0)
        leak_site_c(n);
    else if (strcmp(argv[1], "twin") == 0)
        twin_site(n);
    else if (strcmp(argv[1], "clean") == 0)
        clean_site(n);
    else if (strcmp(argv[1], "handoff") == 0 || strcmp(argv[1], "handoff-late") == 0) {
        if (hand_off(strcmp(argv[1], "handoff-late") == 0))
            return 1;
    } else if (strcmp(argv[1], "basebackup") == 0 || strcmp(argv[1], "basebackup-late") == 0) {
        if (base_backup(strcmp(argv[1], "basebackup-late") == 0))
            return 1;
    } else {
        fprintf(stderr, "cli_leaker: unknown mode %s\n", argv[1]);
        return 2;
    }
    /* Leaving through main's return, not a call in tail position, keeps main's frame in the stacks. */
    printf("cli_leaker: %s: %d open\n", argv[1], nconns);
    return 0;
}
