/* Workloads for the stress tests (stress.py), run with the shim preloaded: threads connecting under a
 * cap with a storm of live-report signals, forks while other threads connect, connections leaked on
 * purpose, a process that waits with open connections. A plain libpq program: it learns about the shim
 * only from its reports. Prints one "ok ..." line on success; exits 1 with a message on a failure. */

/*   stress_prog cycles THREADS N [signals]   THREADS x N connect/finish; SIGUSR1 storm if "signals"
 *   stress_prog fork THREADS FORKS           threads connect while the main thread forks FORKS times
 *   stress_prog leak N ok|failed STATUS      leaks N connections, returns STATUS
 *   stress_prog serve N                      leaks N failed connections, prints "ready", returns at EOF
 *   stress_prog sigexit N STATUS             leaks N failed connections, then mallocs and frees in a loop
 *                                            until a timer signal's handler calls _exit(STATUS)
 *   stress_prog vfork N                      leaks N failed connections; a vfork child whose exec fails
 *                                            calls _exit(127); prints "child=STATUS", returns 0
 *   stress_prog nofds N                      leaks N failed connections, then uses up every descriptor
 *                                            and returns 0
 *   stress_prog sleepleak N MS               leaks N failed connections, sleeps MS ms, returns 0 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define NOWHERE "host=/nonexistent-pqleak-stress"

static atomic_long opened, queries;
static atomic_bool stop;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dprintf(2, "stress_prog [%d]: %s\n", (int)getpid(), msg);
    _exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static PGconn *connect_ok(void)
{
    PGconn *c = PQconnectdb("");
    if (!c || PQstatus(c) != CONNECTION_OK)
        die("connect failed: %s", c ? PQerrorMessage(c) : "out of memory");
    atomic_fetch_add(&opened, 1);
    return c;
}

static void query(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT 1");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("query failed: %s", PQerrorMessage(c));
    PQclear(r);
    atomic_fetch_add(&queries, 1);
}

static long arg(char **argv, int i, int argc, const char *what)
{
    char *end;
    long v = i < argc ? strtol(argv[i], &end, 10) : -1;
    if (i >= argc || *end || v < 0)
        die("missing or bad %s", what);
    return v;
}

/* ---- cycles ---- */

static long cycles_n;

static void *cycle_worker(void *arg)
{
    (void)arg;
    for (long i = 0; i < cycles_n; i++) {
        PGconn *c = connect_ok();
        if (i % 10 == 0)
            query(c);
        PQfinish(c);
    }
    return NULL;
}

/* Live-report requests to the whole process, as fast as they can be made (with a short pause, so the
 * storm does not starve the workers of the CPU on a small machine). */
static void *storm(void *arg)
{
    long *sent = arg;
    while (!atomic_load(&stop)) {
        kill(getpid(), SIGUSR1);
        (*sent)++;
        nap(500);
    }
    return NULL;
}

static int mode_cycles(int argc, char **argv)
{
    long threads = arg(argv, 2, argc, "THREADS");
    cycles_n = arg(argv, 3, argc, "N");
    bool signals = argc > 4 && !strcmp(argv[4], "signals");
    /* The first connection installs the shim's SIGUSR1 handler: before it, SIGUSR1 would kill us. */
    PQfinish(connect_ok());
    pthread_t *t = calloc((size_t)threads, sizeof *t), st;
    long sent = 0;
    double t0 = now();
    for (long i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, cycle_worker, NULL) != 0)
            die("pthread_create");
    if (signals && pthread_create(&st, NULL, storm, &sent) != 0)
        die("pthread_create");
    for (long i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop, true);
    if (signals)
        pthread_join(st, NULL);
    printf("ok opened=%ld queries=%ld signals=%ld seconds=%.1f\n", atomic_load(&opened), atomic_load(&queries), sent,
           now() - t0);
    free(t);
    return 0;
}

/* ---- fork ---- */

static atomic_long refused;
static long nonblocking_pause_us = 1000;

/* Odd workers make non-blocking connects, which the shim refuses at once at the cap: its table of
 * refusal messages changes all the time while the main thread forks. */
static void *fork_worker(void *arg)
{
    bool nonblocking = (long)arg % 2;
    while (!atomic_load(&stop)) {
        if (nonblocking) {
            PGconn *c = PQconnectStart("");
            if (!c)
                die("PQconnectStart: out of memory");
            if (PQstatus(c) == CONNECTION_BAD && strstr(PQerrorMessage(c), "refused by pqleak"))
                atomic_fetch_add(&refused, 1);
            else
                atomic_fetch_add(&opened, 1); /* abandoned while connecting: a record, opened and closed */
            PQfinish(c);
            nap(nonblocking_pause_us); /* as fast as possible, they fill the server's listen queue */
            continue;
        }
        PGconn *c = connect_ok();
        query(c);
        PQfinish(c);
    }
    return NULL;
}

/* Waits for a child up to 60 s; a hang is shown with its stacks (gdb, when there) and fails. */
static void wait_child(pid_t pid)
{
    double end = now() + 60;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            die("waitpid: %s", strerror(errno));
        if (now() > end) {
            char cmd[200];
            snprintf(cmd, sizeof cmd, "gdb -p %d -batch -nx -ex 'thread apply all bt' 2>&1 | grep -E '^(#|Thread| +at )' >&2",
                     (int)pid);
            if (system(cmd) != 0)
                dprintf(2, "(no stacks: gdb not available)\n");
            kill(pid, SIGKILL);
            die("forked child %d hangs (killed after 60 s)", (int)pid);
        }
        nap(2000);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("forked child %d ended with status %#x", (int)pid, st);
}

static int mode_fork(int argc, char **argv)
{
    long threads = arg(argv, 2, argc, "THREADS"), forks = arg(argv, 3, argc, "FORKS");
    if (getenv("STRESS_PAUSE_US"))
        nonblocking_pause_us = atol(getenv("STRESS_PAUSE_US"));
    PQfinish(connect_ok());
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    for (long i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, fork_worker, (void *)i) != 0)
            die("pthread_create");
    for (long i = 0; i < forks; i++) {
        nap(20000);
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            /* The child: the parent's other threads are gone, maybe in the middle of a connect. */
            PGconn *c = PQconnectdb("");
            if (PQstatus(c) != CONNECTION_OK)
                die("connect in a forked child: %s", PQerrorMessage(c));
            /* Programs read PQerrorMessage whatever the outcome; the shim looks it up among its refusals. */
            if (*PQerrorMessage(c))
                die("an error message on a good connection: %s", PQerrorMessage(c));
            query(c);
            PQfinish(c);
            exit(0);
        }
        wait_child(pid);
    }
    atomic_store(&stop, true);
    for (long i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    printf("ok opened=%ld refused=%ld forks=%ld\n", atomic_load(&opened), atomic_load(&refused), forks);
    free(t);
    return 0;
}

/* ---- leaks ---- */

static PGconn **kept;

static int mode_leak(int argc, char **argv)
{
    long n = arg(argv, 2, argc, "N");
    bool ok = argc > 3 && !strcmp(argv[3], "ok");
    long status = arg(argv, 4, argc, "STATUS");
    kept = calloc((size_t)n + 1, sizeof *kept);
    for (long i = 0; i < n; i++)
        kept[i] = ok ? connect_ok() : PQconnectdb(NOWHERE);
    printf("ok leaked=%ld\n", n);
    return (int)status;
}

static int mode_serve(int argc, char **argv)
{
    long n = arg(argv, 2, argc, "N");
    kept = calloc((size_t)n + 1, sizeof *kept);
    for (long i = 0; i < n; i++)
        kept[i] = PQconnectdb(NOWHERE);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin))
        ;
    return 0;
}

static void leak_failed(long n)
{
    kept = calloc((size_t)n + 1, sizeof *kept);
    for (long i = 0; i < n; i++)
        kept[i] = PQconnectdb(NOWHERE);
}

/* ---- exits in odd places (issue 13) ---- */

static volatile sig_atomic_t exit_status;

static void exit_now(int sig)
{
    (void)sig;
    _exit(exit_status);
}

/* The handler interrupts the loop, mostly inside malloc or free (sizes above the thread cache: they
 * take the arena lock): an exit report made in the handler would wait for that lock forever. */
__attribute__((noreturn)) static int mode_sigexit(int argc, char **argv)
{
    leak_failed(arg(argv, 2, argc, "N"));
    exit_status = (int)arg(argv, 3, argc, "STATUS");
    signal(SIGALRM, exit_now);
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    void *keep[64] = {0};
    for (unsigned i = 0;; i++) {
        unsigned k = (i * 2654435761u) % 64;
        free(keep[k]);
        keep[k] = malloc(2048 + (i * 40503u) % 65536);
    }
}

static int mode_vfork(int argc, char **argv)
{
    leak_failed(arg(argv, 2, argc, "N"));
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/nonexistent-pqleak-stress/no-such-program", "x", (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        die("vfork: %s", strerror(errno));
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    printf("child=%d\n", WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
    fflush(stdout);
    return 0;
}

static int mode_nofds(int argc, char **argv)
{
    leak_failed(arg(argv, 2, argc, "N"));
    struct rlimit rl = {64, 64};
    setrlimit(RLIMIT_NOFILE, &rl);
    int n = 0;
    while (open("/dev/null", O_RDONLY) >= 0)
        n++;
    printf("ok fds_taken=%d\n", n);
    fflush(stdout);
    return 0;
}

static int mode_sleepleak(int argc, char **argv)
{
    leak_failed(arg(argv, 2, argc, "N"));
    nap(arg(argv, 3, argc, "MS") * 1000);
    return 0;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "cycles"))
        return mode_cycles(argc, argv);
    if (!strcmp(m, "fork"))
        return mode_fork(argc, argv);
    if (!strcmp(m, "leak"))
        return mode_leak(argc, argv);
    if (!strcmp(m, "serve"))
        return mode_serve(argc, argv);
    if (!strcmp(m, "sigexit"))
        return mode_sigexit(argc, argv);
    if (!strcmp(m, "vfork"))
        return mode_vfork(argc, argv);
    if (!strcmp(m, "nofds"))
        return mode_nofds(argc, argv);
    if (!strcmp(m, "sleepleak"))
        return mode_sleepleak(argc, argv);
    die("usage: stress_prog cycles|fork|leak|serve|sigexit|vfork|nofds|sleepleak ...");
}
