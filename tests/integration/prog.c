/* Test program for the integration tests: each mode exercises one way of opening, leaking or closing
 * libpq connections against the server named by PGHOST & co. Built with -g -O0 so that reports show
 * these functions with file and line. Prints nothing on success unless the mode says so. */
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

static PGconn *held_in_global;

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "prog: %s failed\n", what);
        exit(99);
    }
}

static PGconn *connect_ok(void)
{
    PGconn *c = PQconnectdb("");
    must(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
    return c;
}

/* The PQconnectStartParams + PQconnectPoll loop libpq documents for non-blocking connects. */
static PGconn *connect_nonblocking(void)
{
    const char *kw[] = {"dbname", NULL};
    const char *val[] = {getenv("PGDATABASE"), NULL};
    PGconn *c = PQconnectStartParams(kw, val, 0);
    must(c && PQstatus(c) != CONNECTION_BAD, "PQconnectStartParams");
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(PQsocket(c), &fds);
        if (st == PGRES_POLLING_READING)
            select(PQsocket(c) + 1, &fds, NULL, NULL, NULL);
        else
            select(PQsocket(c) + 1, NULL, &fds, NULL, NULL);
        st = PQconnectPoll(c);
    }
    must(st == PGRES_POLLING_OK, PQerrorMessage(c));
    return c;
}

/* Two leak sites in two functions: one kept in a global (a static function: its name must still
 * show), one dropped. */
static void leak_into_global(void)
{
    held_in_global = connect_ok();
}

void leak_and_drop(void);
void leak_and_drop(void)
{
    PGconn *c = connect_ok();
    (void)c;
}

static int mode_two_sites(void)
{
    leak_into_global();
    for (int i = 0; i < 2; i++)
        leak_and_drop();
    PQfinish(connect_ok()); /* closed: not a leak */
    return 0;
}

/* Every entry point once, closed; then each once more, leaked. */
static int mode_entry_points(int leak)
{
    const char *kw[] = {"dbname", "application_name", NULL};
    const char *val[] = {getenv("PGDATABASE"), "entry-points", NULL};
    PGconn *c[6];
    c[0] = PQconnectdb("application_name=entry-points");
    c[1] = PQconnectdbParams(kw, val, 0);
    c[2] = PQsetdbLogin(NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    c[3] = PQconnectStart("application_name=entry-points");
    c[4] = connect_nonblocking();
    /* PQconnectStart's connection completed with the poll loop. */
    while (PQconnectPoll(c[3]) != PGRES_POLLING_OK)
        usleep(1000);
    c[5] = PQconnectdb("postgresql:///postgres?application_name=entry-points");
    for (int i = 0; i < 6; i++)
        must(PQstatus(c[i]) == CONNECTION_OK, PQerrorMessage(c[i]));
    PQreset(c[0]);
    must(PQstatus(c[0]) == CONNECTION_OK, "PQreset");
    must(PQping("") == PQPING_OK, "PQping");
    if (!leak)
        for (int i = 0; i < 6; i++)
            PQfinish(c[i]);
    return 0;
}

#define NTHREADS   8
#define PER_THREAD 25

static void *thread_main(void *arg)
{
    long n = (long)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        PGconn *c = (i + n) % 2 ? connect_nonblocking() : connect_ok();
        PGresult *r = PQexec(c, "select 1");
        must(PQresultStatus(r) == PGRES_TUPLES_OK, "select");
        PQclear(r);
        PQfinish(c);
    }
    return NULL;
}

static int mode_threads(void)
{
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        must(pthread_create(&t[i], NULL, thread_main, (void *)i) == 0, "pthread_create");
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}

/* Failed connections: libpq needs PQfinish for them too. */
static void leak_failed(void)
{
    PGconn *c = PQconnectdb("host=/nonexistent-pqleak-dir connect_timeout=1");
    must(PQstatus(c) == CONNECTION_BAD, "failed connect");
}

static int mode_failed(int leak)
{
    PGconn *c = PQconnectdb("host=/nonexistent-pqleak-dir");
    must(PQstatus(c) == CONNECTION_BAD, "failed connect");
    PQfinish(c);
    if (leak)
        leak_failed();
    return 0;
}

/* Secrets in every form libpq takes; the connections fail (no such socket) and leak on purpose. */
static int mode_secrets(void)
{
    PQconnectdb("host=/nonexistent-pqleak-dir password=Secret-Conninfo-1 user=alice");
    PQconnectdb("postgresql://bob:Secret-Uri-2@/db?host=/nonexistent-pqleak-dir");
    const char *kw[] = {"host", "password", "application_name", NULL};
    const char *val[] = {"/nonexistent-pqleak-dir", "Secret-Kw-3", "Secret-Kw-3", NULL};
    PQconnectdbParams(kw, val, 0);
    const char *kw2[] = {"dbname", NULL};
    const char *val2[] = {"postgresql://carol:Secret-Expand-4@/db?host=/nonexistent-pqleak-dir", NULL};
    PQconnectdbParams(kw2, val2, 1);
    return 0;
}

/* Leaves through _exit: no atexit handlers, no destructors, the report must still be written. */
static int mode_underscore_exit(void)
{
    leak_and_drop();
    _exit(5);
}

/* A forked child that connects and leaks reports only its own connection. */
static int mode_fork(void)
{
    PGconn *parent = connect_ok();
    pid_t pid = fork();
    if (pid == 0) {
        leak_and_drop();
        exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    must(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child");
    PQfinish(parent);
    return 0;
}

/* A program that has libpq linked but never connects: it checks that the shim left no trace. */
static int mode_quiet(void)
{
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    must(sa.sa_handler == SIG_DFL, "no SIGUSR1 handler");
    sigaction(SIGUSR2, NULL, &sa);
    must(sa.sa_handler == SIG_DFL, "no SIGUSR2 handler");
    int tasks = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; d && (e = readdir(d));)
        tasks += e->d_name[0] != '.';
    if (d)
        closedir(d);
    must(tasks == 1, "one thread");
    return 3;
}

/* Connections closed in the program's own atexit handler are not leaks. */
static PGconn *closed_at_exit;
static void close_at_exit(void)
{
    PQfinish(closed_at_exit);
}

static int mode_atexit(void)
{
    closed_at_exit = connect_ok();
    atexit(close_at_exit);
    return 0;
}

/* ---- caps (run with PQLEAK_MAX_CONNS & co.) ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *busy_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        PGconn *c = connect_ok();
        PQclear(PQexec(c, "select pg_sleep(0.02)"));
        PQfinish(c);
    }
    return NULL;
}

/* 10 threads share a cap: all must finish, waiting their turn. */
static int mode_cap_threads(void)
{
    pthread_t t[10];
    for (int i = 0; i < 10; i++)
        pthread_create(&t[i], NULL, busy_worker, NULL);
    for (int i = 0; i < 10; i++)
        pthread_join(t[i], NULL);
    return 0;
}

static PGconn *held[8];

static void hold_connections(int n)
{
    for (int i = 0; i < n; i++)
        held[i] = connect_ok();
}

static void *try_connect(void *arg)
{
    (void)arg;
    double t0 = now_s();
    PGconn *c = PQconnectdb("");
    printf("status=%s after=%.1f\nmessage=%s", PQstatus(c) == CONNECTION_OK ? "ok" : "bad", now_s() - t0,
           PQerrorMessage(c));
    fflush(stdout);
    PQfinish(c);
    return NULL;
}

/* Another thread holds every slot: the connect waits PQLEAK_CHECKOUT_TIMEOUT, then is refused. */
static int mode_cap_timeout(void)
{
    hold_connections(2);
    pthread_t t;
    pthread_create(&t, NULL, try_connect, NULL);
    pthread_join(t, NULL);
    PQfinish(held[0]);
    PQfinish(held[1]);
    return 0;
}

/* This thread holds every slot itself: waiting could never end. */
static int mode_cap_deadlock(void)
{
    hold_connections(2);
    try_connect(NULL);
    PQfinish(held[0]);
    PQfinish(held[1]);
    return 0;
}

/* Waiters are served in arrival order. Arrival is made certain by reading the trace log, in which
 * the shim writes one "wait:" line per waiter, before starting the next one. */
static int order[6], norder;
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;

static void *ordered_waiter(void *arg)
{
    PGconn *c = connect_ok();
    pthread_mutex_lock(&order_lock);
    order[norder++] = (int)(long)arg;
    pthread_mutex_unlock(&order_lock);
    usleep(10000);
    PQfinish(c);
    return NULL;
}

static int count_waits(const char *log)
{
    FILE *f = fopen(log, "r");
    int n = 0;
    char line[1024];
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, " waits for a free slot") != NULL;
    if (f)
        fclose(f);
    return n;
}

static int mode_cap_fifo(const char *log)
{
    hold_connections(1);
    pthread_t t[6];
    for (long i = 0; i < 6; i++) {
        pthread_create(&t[i], NULL, ordered_waiter, (void *)i);
        while (count_waits(log) < i + 1)
            usleep(1000);
    }
    PQfinish(held[0]);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 6; i++)
        printf("%d", order[i]);
    printf("\n");
    return 0;
}

/* Failed connects give their slot back at once: five of them, unfreed, then a real one gets through. */
static int mode_cap_failed(void)
{
    for (int i = 0; i < 5; i++) {
        PGconn *c = PQconnectdb("host=/nonexistent-pqleak-dir");
        must(PQstatus(c) == CONNECTION_BAD, "failed connect");
        must(strstr(PQerrorMessage(c), "refused by pqleak") == NULL,
             "libpq's own message for a real failure");
    }
    PQfinish(connect_ok());
    return 0;
}

/* A non-blocking connect never waits: refused at once at the cap. */
static int mode_cap_nonblocking(void)
{
    hold_connections(1);
    double t0 = now_s();
    PGconn *c = PQconnectStart("");
    must(PQconnectPoll(c) == PGRES_POLLING_FAILED, "poll of a refused connect");
    printf("status=%s after=%.1f\nmessage=%s", PQstatus(c) == CONNECTION_OK ? "ok" : "bad", now_s() - t0,
           PQerrorMessage(c));
    PQfinish(c);
    PQfinish(held[0]);
    return 0;
}

/* A connect refused by PQLEAK_MAX_CONNS alone (no per-target cap), never finished: the exit report lists
 * it, with its target. */
static int mode_cap_refused_leak(void)
{
    hold_connections(1);
    PGconn *c = PQconnectdb("");
    must(PQstatus(c) == CONNECTION_BAD, "a refused connect");
    return 0;
}

/* Per-target caps: one connection per database here. */
static int mode_cap_per_target(void)
{
    hold_connections(1); /* to PGDATABASE */
    PGconn *other = PQconnectdb("dbname=template1");
    must(PQstatus(other) == CONNECTION_OK, "a connection to another database");
    PQfinish(other);
    try_connect(NULL);
    PQfinish(held[0]);
    return 0;
}

/* ---- live diagnosis ---- */

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    must(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, PQerrorMessage(c));
    PQclear(r);
}

static void forget_commit(PGconn *c)
{
    exec_ok(c, "begin");
    exec_ok(c, "select 1");
}

/* A long-running "server": two connections, one left idle in a transaction begun by forget_commit,
 * until the file argv[2] appears (or 60 s pass). Prints "ready" once set up. */
static int mode_serve(const char *stop_file)
{
    PGconn *idle = connect_ok();
    PGconn *busy = connect_ok();
    forget_commit(busy);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 6000 && access(stop_file, F_OK) != 0; i++)
        usleep(10000);
    exec_ok(busy, "commit");
    PQfinish(busy);
    PQfinish(idle);
    return 0;
}

/* Idle in a transaction for a while, then commit and close: a suspect that is returned. */
static int mode_idle_tx(void)
{
    PGconn *c = connect_ok();
    forget_commit(c);
    sleep(3);
    exec_ok(c, "commit");
    PQfinish(c);
    return 0;
}

static volatile int storm_stop;

static void *storm_worker(void *arg)
{
    (void)arg;
    while (!storm_stop) {
        PGconn *c = connect_ok();
        exec_ok(c, "select 1");
        PQfinish(c);
    }
    return NULL;
}

/* Connect/finish on 4 threads until the file argv[2] appears; prints "ready" once running. */
static int mode_storm(const char *stop_file)
{
    /* Connected before "ready": the shim's signal handler is installed at the first connection. */
    PGconn *keep = connect_ok();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, storm_worker, NULL);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 6000 && access(stop_file, F_OK) != 0; i++)
        usleep(10000);
    storm_stop = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    PQfinish(keep);
    return 0;
}

/* A forked child that only queries its parent's connection (the query path must warn). */
static void query_in_child(PGconn *c)
{
    PQclear(PQexec(c, "select 1"));
}

static int mode_misuse_fork(void)
{
    PGconn *c = connect_ok();
    /* Used before the fork too: the child inherits a thread whose query path knows this connection. */
    PQclear(PQexec(c, "select 1"));
    pid_t pid = fork();
    if (pid == 0) {
        query_in_child(c);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    must(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child");
    PQfinish(c);
    return 0;
}

/* A fork inside a query call: the notice processor runs inside PQexec. The parent waits there for the
 * child, which finishes that PQexec and queries the connection again (the query path must warn: the
 * call it forked in ends in the child too, and puts the connection back into the thread's cache), then
 * leaves with the child's status without reading the socket the child took over. */
static PGconn *notice_conn;

static void fork_in_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
    pid_t pid = fork();
    if (pid == 0)
        return;
    int st;
    waitpid(pid, &st, 0);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

static int mode_misuse_fork_notice(void)
{
    notice_conn = connect_ok();
    PQclear(PQexec(notice_conn, "select 1"));
    PQsetNoticeProcessor(notice_conn, fork_in_notice, NULL);
    PQclear(PQexec(notice_conn, "do $$ begin raise notice 'fork now'; end $$"));
    /* Only the child gets here. */
    query_in_child(notice_conn);
    _exit(0);
}

/* A forked child that only closes its parent's connection (the close path must warn). */
static void close_in_child(PGconn *c)
{
    PQfinish(c);
}

static int mode_misuse_fork_close(void)
{
    PGconn *c = connect_ok();
    pid_t pid = fork();
    if (pid == 0) {
        close_in_child(c);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    must(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child");
    PQfinish(c);
    return 0;
}

static PGconn *shared_conn;

static void *slow_query(void *arg)
{
    (void)arg;
    PQclear(PQexec(shared_conn, "select pg_sleep(2)"));
    return NULL;
}

/* Two threads in one connection at once: the second starts while the first waits for pg_sleep. */
static int mode_misuse_threads(void)
{
    shared_conn = connect_ok();
    /* Used by this thread first, alone: its second use takes the query path's fast path (the per-thread
     * cache), which must see the other thread's mark too. */
    PQclear(PQexec(shared_conn, "select 1"));
    pthread_t t;
    pthread_create(&t, NULL, slow_query, NULL);
    usleep(500000);
    /* Refused by libpq at once ("another command is already in progress"): it never reads the socket. */
    must(PQsendQuery(shared_conn, "select 1") == 0, "a second query while one runs");
    pthread_join(t, NULL);
    PQfinish(shared_conn);
    return 0;
}

/* ---- secrets in refusals (run with PQLEAK_MAX_CONNS_PER_TARGET=1, PQLEAK_CHECKOUT_TIMEOUT=0) ---- */

/* A connect to the socket directory host (a path that contains the password) and PGDATABASE with the
 * password pw, given (0) in a conninfo string (PQconnectdb), (1) in the expanded dbname of
 * PQconnectdbParams, (2) as PQsetdbLogin's pwd; the application_name contains the password too. */
static PGconn *connect_with_secret(int way, const char *host, const char *pw)
{
    char conninfo[1024];
    if (way < 2) {
        snprintf(conninfo, sizeof(conninfo), "host=%s dbname=%s password=%s application_name=app-%s", host,
                 getenv("PGDATABASE"), pw, pw);
        if (way == 0)
            return PQconnectdb(conninfo);
        const char *kw[] = {"dbname", NULL};
        const char *val[] = {conninfo, NULL};
        return PQconnectdbParams(kw, val, 1);
    }
    snprintf(conninfo, sizeof(conninfo), "dbname=%s application_name=login-%s", getenv("PGDATABASE"), pw);
    return PQsetdbLogin(host, NULL, NULL, NULL, conninfo, NULL, pw);
}

/* For each way: one connection held, then a second one to the same target, refused at the cap and
 * leaked on purpose (the exit report lists its target); the held one is closed. */
static int mode_secret_refusal(const char *host, const char *pw)
{
    const char *labels[] = {"conninfo", "expanded-dbname", "setdblogin"};
    for (int i = 0; i < 3; i++) {
        PGconn *h = connect_with_secret(i, host, pw);
        must(PQstatus(h) == CONNECTION_OK, PQerrorMessage(h));
        PGconn *c = connect_with_secret(i, host, pw);
        printf("%s: status=%s refused=%d\n--message--\n%s--end--\n", labels[i],
               PQstatus(c) == CONNECTION_OK ? "ok" : "bad",
               strstr(PQerrorMessage(c), "refused by pqleak") != NULL, PQerrorMessage(c));
        PQfinish(h);
    }
    return 0;
}

/* ---- utilization levels (run with PQLEAK_MAX_CONNS) ---- */

/* Reads one number a line from stdin: opens or closes (last opened first) connections until that many
 * are open, then prints "ok N". The test reads the log between steps. */
static int mode_levels(void)
{
    static PGconn *open_conns[1000];
    int n = 0;
    char line[64];
    while (fgets(line, sizeof(line), stdin)) {
        int want = atoi(line);
        must(want >= 0 && want < 1000, "a number of connections");
        while (n < want)
            open_conns[n++] = connect_ok();
        while (n > want)
            PQfinish(open_conns[--n]);
        printf("ok %d\n", n);
        fflush(stdout);
    }
    while (n > 0)
        PQfinish(open_conns[--n]);
    return 0;
}

/* ---- trace ---- */

/* Opens n connections, then closes them all. */
static int mode_open_close(int n)
{
    PGconn **c = calloc((size_t)n, sizeof(*c));
    must(c != NULL, "calloc");
    for (int i = 0; i < n; i++)
        c[i] = connect_ok();
    for (int i = 0; i < n; i++)
        PQfinish(c[i]);
    free(c);
    return 0;
}

/* ---- client port ---- */

/* One connection through conninfo (TCP, through the test's forwarder) and one through the environment
 * (the unix socket), both leaked: the exit report lists them with their client ports. */
static int mode_client_port(const char *conninfo)
{
    PGconn *tcp = PQconnectdb(conninfo);
    must(PQstatus(tcp) == CONNECTION_OK, PQerrorMessage(tcp));
    PGconn *unix_socket = connect_ok();
    printf("tcp=%d unix=%d\n", PQbackendPID(tcp), PQbackendPID(unix_socket));
    return 0;
}

/* Leaves through _Exit: like _exit, no atexit handlers, the report must still be written. */
static int mode_underscore_Exit(void)
{
    leak_and_drop();
    _Exit(6);
}

/* ---- metrics (run with PQLEAK_MAX_CONNS=2, PQLEAK_CHECKOUT_TIMEOUT=0.2, PQLEAK_SUSPECT_IDLE_TX=1) ---- */

static void *timed_out_connect(void *arg)
{
    (void)arg;
    PGconn *c = PQconnectdb("");
    must(PQstatus(c) == CONNECTION_BAD && strstr(PQerrorMessage(c), "(checkout timeout)"),
         "a checkout timeout");
    PQfinish(c);
    return NULL;
}

/* Three failed connects (freed); two connections held; a connect from another thread that waits at
 * the cap and times out; then one of the two left idle in a transaction (a suspect after a second).
 * Prints "ready", waits for the stop file, commits and closes the busy connection, leaks the idle one. */
static int mode_metrics(const char *stop_file)
{
    for (int i = 0; i < 3; i++) {
        PGconn *c = PQconnectdb("host=/nonexistent-pqleak-dir");
        must(PQstatus(c) == CONNECTION_BAD, "failed connect");
        PQfinish(c);
    }
    PGconn *idle = connect_ok();
    PGconn *busy = connect_ok();
    pthread_t t;
    pthread_create(&t, NULL, timed_out_connect, NULL);
    pthread_join(t, NULL);
    forget_commit(busy); /* last: once it is a suspect, every other metric has its final value */
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 6000 && access(stop_file, F_OK) != 0; i++)
        usleep(10000);
    exec_ok(busy, "commit");
    PQfinish(busy);
    (void)idle;
    return 0;
}

/* ---- live-report probes (pqleak status): modes that check the program's own calls and fds ---- */

static void say_ready(void)
{
    printf("ready\n");
    fflush(stdout);
}

/* Waits (50 ms steps, each restarted if interrupted) until stop_file appears; 60 s at most. */
static void wait_stop(const char *stop_file)
{
    for (int i = 0; i < 1200 && access(stop_file, F_OK) != 0; i++) {
        struct timespec ts = {0, 50000000}, rem;
        while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
            ts = rem;
    }
}

/* Waits that SA_RESTART never restarts, while pqleak status probes the process: select, poll,
 * nanosleep and sleep must each run their full time. Prints which one was cut short and exits 1. Rounds
 * of waits until stop_file appears. */
static int mode_waits(const char *stop_file)
{
    PGconn *c = connect_ok();
    say_ready();
    int rounds = 0;
    while (access(stop_file, F_OK) != 0 && rounds++ < 60) {
        struct timeval tv = {0, 300000};
        if (select(0, NULL, NULL, NULL, &tv) != 0) {
            fprintf(stderr, "prog: select cut short (%s)\n", strerror(errno));
            return 1;
        }
        if (poll(NULL, 0, 300) != 0) {
            fprintf(stderr, "prog: poll cut short (%s)\n", strerror(errno));
            return 1;
        }
        struct timespec ts = {0, 300000000}, rem = {0, 0};
        if (nanosleep(&ts, &rem) != 0) {
            fprintf(stderr, "prog: nanosleep cut short, %ld ns early (%s)\n", rem.tv_nsec, strerror(errno));
            return 1;
        }
        unsigned left = sleep(1);
        if (left) {
            fprintf(stderr, "prog: sleep(1) returned %u s early\n", left);
            return 1;
        }
    }
    PQfinish(c);
    return 0;
}

/* Open descriptors of this process as a bit set (fds below 1024; the one reading the list excluded). */
static void fd_set_of(unsigned char *set)
{
    memset(set, 0, 1024);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd < 1024 && fd != dirfd(d))
            set[fd] = 1;
    }
    if (d)
        closedir(d);
}

/* Prints " FD:TARGET:cloexec|inherit" for each fd in now and not in before; returns how many. */
static int print_added(const unsigned char *before, const unsigned char *now)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        if (!now[fd] || before[fd])
            continue;
        char path[64], target[256] = "?";
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(path, target, sizeof target - 1);
        target[k > 0 ? k : 1] = '\0';
        int flags = fcntl(fd, F_GETFD);
        printf(" %d:%s:%s", fd, target, flags >= 0 && (flags & FD_CLOEXEC) ? "cloexec" : "inherit");
        n++;
    }
    return n;
}

/* Daemonizing: connects (starting pqleak's reporter), then closes every fd >= 3 and makes pipes of its
 * own, which take the lowest numbers (those pqleak's fds had). While pqleak status probes it, no byte may
 * appear in or vanish from those pipes; a byte the program writes must come back. Exits 1 otherwise. */
static int mode_close_fds(const char *stop_file)
{
    PGconn *c = connect_ok();
    (void)c; /* its socket is closed below; PQfinish would write into whatever has its number now */
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    int p[4][2];
    for (int i = 0; i < 4; i++) {
        must(pipe(p[i]) == 0, "pipe");
        fcntl(p[i][0], F_SETFL, O_NONBLOCK);
        must(write(p[i][1], "x", 1) == 1, "write");
    }
    say_ready();
    wait_stop(stop_file);
    for (int i = 0; i < 4; i++) {
        char buf[64];
        ssize_t n = read(p[i][0], buf, sizeof buf);
        if (n != 1 || buf[0] != 'x') {
            fprintf(stderr, "prog: pipe %d (fds %d, %d) read %zd bytes, expected the program's 1\n", i,
                    p[i][0], p[i][1], n);
            return 1;
        }
    }
    return 0;
}

/* The log's fd after daemonizing: connects (PQLEAK_TRACE writes a line: the log file is open), closes
 * every fd >= 3 and opens files of its own under dir, which take the lowest numbers, then connects and
 * closes again. pqleak's lines must go to its log, none into the program's files; exits 1 otherwise. */
static int mode_log_close_fds(const char *dir)
{
    PGconn *c = connect_ok();
    (void)c; /* its socket is closed below: never finished */
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    int own[4];
    char path[4096];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/own-%d", dir, i);
        own[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        must(own[i] >= 0, "open");
    }
    PQfinish(connect_ok());
    for (int i = 0; i < 4; i++) {
        off_t size = lseek(own[i], 0, SEEK_END);
        if (size != 0) {
            fprintf(stderr, "prog: the program's file %s/own-%d (fd %d) got %lld bytes\n", dir, i, own[i],
                    (long long)size);
            return 1;
        }
    }
    return 0;
}

/* nocfi_x86_64.S: calls fn from a frame without unwind information, which the shim's own walk cannot
 * follow: the shim then loads libunwind and walks with it. */
void nocfi_call(void (*fn)(void));

static PGconn *unwind_first;

static void unwind_first_connect(void)
{
    unwind_first = connect_ok();
}

static void unwind_thread_connect(void)
{
    PQfinish(connect_ok());
}

static void *connect_in_thread_nocfi(void *arg)
{
    (void)arg;
    nocfi_call(unwind_thread_connect);
    return NULL;
}

/* libunwind's own pipe (its memory checks) after daemonizing: connects below a frame without unwind
 * information, so that the shim walks with libunwind (which makes its pipe), closes every fd >= 3, opens
 * files of its own under dir (holding a byte each, read from offset 0), which take the lowest numbers,
 * libunwind's among them; then connects on a new thread, below such a frame again, a stack libunwind has
 * never checked. Every file must still be the program's, unread and unwritten: exits 1 otherwise. */
static int mode_unwind_fds(const char *dir)
{
    nocfi_call(unwind_first_connect); /* its socket is closed below: never finished */
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    enum { OWN = 8 };
    int own[OWN];
    ino_t ino[OWN];
    char path[4096];
    for (int i = 0; i < OWN; i++) {
        snprintf(path, sizeof path, "%s/own-%d", dir, i);
        own[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        must(own[i] >= 0 && write(own[i], "x", 1) == 1 && lseek(own[i], 0, SEEK_SET) == 0, "own file");
        struct stat st;
        must(fstat(own[i], &st) == 0, "fstat");
        ino[i] = st.st_ino;
    }
    pthread_t t;
    must(pthread_create(&t, NULL, connect_in_thread_nocfi, NULL) == 0, "thread");
    pthread_join(t, NULL);
    int bad = 0;
    for (int i = 0; i < OWN; i++) {
        struct stat st;
        off_t at = lseek(own[i], 0, SEEK_CUR);
        if (fstat(own[i], &st) != 0 || st.st_ino != ino[i] || st.st_size != 1 || at != 0) {
            fprintf(stderr, "prog: the program's file own-%d (fd %d) was %s\n", i, own[i],
                    fstat(own[i], &st) != 0 || st.st_ino != ino[i] ? "closed or replaced"
                    : st.st_size != 1                              ? "written"
                                                                   : "read");
            bad = 1;
        }
    }
    return bad;
}

/* pqleak's descriptors: lists the fds added by the first connection ("connected:", the socket among
 * them) and those added since, after the live reports asked for while it waits ("after:"), one line each.
 * Under a low RLIMIT_NOFILE (argv[3], set before connecting) a second connection must still succeed. */
static int mode_fds(const char *stop_file, int limit)
{
    if (limit > 0) {
        struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
        must(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit");
    }
    static unsigned char before[1024], connected[1024], after[1024];
    fd_set_of(before);
    PGconn *c = connect_ok();
    usleep(200000); /* the reporter thread starts with the connection: let it set itself up */
    fd_set_of(connected);
    say_ready();
    wait_stop(stop_file);
    fd_set_of(after);
    PGconn *d = connect_ok(); /* room for one more connection under the limit */
    printf("connected:");
    print_added(before, connected);
    printf("\nafter:");
    print_added(connected, after);
    printf("\n");
    PQfinish(d);
    PQfinish(c);
    return 0;
}

/* Two connections that become suspects a few seconds apart (idle in a transaction): each must be logged
 * once, although the second scan's snapshot still holds the first. */
static int mode_two_suspects(void)
{
    PGconn *a = connect_ok();
    exec_ok(a, "begin");
    sleep(3);
    PGconn *b = connect_ok();
    exec_ok(b, "begin");
    sleep(3);
    exec_ok(a, "commit");
    exec_ok(b, "commit");
    PQfinish(a);
    PQfinish(b);
    return 0;
}

/* The program's own thread named "pqleak-sig" (no shim needed) and its own SIGUSR1 handler: pqleak
 * status must not signal it. Exits 1 when a SIGUSR1 arrived. */
static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static volatile int fake_named;

static void *fake_reporter(void *arg)
{
    prctl(PR_SET_NAME, "pqleak-sig");
    fake_named = 1;
    wait_stop(arg);
    return NULL;
}

static int mode_fake_reporter(const char *stop_file)
{
    signal(SIGUSR1, on_usr1);
    pthread_t t;
    must(pthread_create(&t, NULL, fake_reporter, (void *)stop_file) == 0, "pthread_create");
    while (!fake_named)
        usleep(1000);
    say_ready();
    pthread_join(t, NULL);
    if (got_usr1)
        fprintf(stderr, "prog: got SIGUSR1\n");
    return got_usr1 ? 1 : 0;
}

/* PQLEAK_SIGNAL=USR2 set by the program itself before it connects (its /proc environ still says
 * otherwise): a SIGUSR1 would kill it. */
static int mode_setenv_usr2(const char *stop_file)
{
    setenv("PQLEAK_SIGNAL", "USR2", 1);
    PGconn *c = connect_ok();
    say_ready();
    wait_stop(stop_file);
    PQfinish(c);
    return 0;
}

/* A program that takes SIGUSR1 through a signalfd (blocked in every thread, disposition default), read
 * once at the end: a kill -USR1 must stay pending for it, not be taken by pqleak. Prints "got N". */
static int mode_signalfd(const char *stop_file)
{
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    must(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0, "sigprocmask");
    int sfd = signalfd(-1, &usr1, SFD_NONBLOCK);
    must(sfd >= 0, "signalfd");
    PGconn *c = connect_ok();
    say_ready();
    wait_stop(stop_file); /* the signal stays pending for the process meanwhile: pqleak must leave it */
    int got = 0;
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        got++;
    printf("got %d\n", got);
    PQfinish(c);
    return 0;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (!strcmp(m, "two-sites"))
        return mode_two_sites();
    if (!strcmp(m, "entry-points"))
        return mode_entry_points(0);
    if (!strcmp(m, "entry-points-leak"))
        return mode_entry_points(1);
    if (!strcmp(m, "threads"))
        return mode_threads();
    if (!strcmp(m, "failed"))
        return mode_failed(0);
    if (!strcmp(m, "failed-leak"))
        return mode_failed(1);
    if (!strcmp(m, "secrets"))
        return mode_secrets();
    if (!strcmp(m, "_exit"))
        return mode_underscore_exit();
    if (!strcmp(m, "fork"))
        return mode_fork();
    if (!strcmp(m, "quiet"))
        return mode_quiet();
    if (!strcmp(m, "atexit"))
        return mode_atexit();
    if (!strcmp(m, "cap-threads"))
        return mode_cap_threads();
    if (!strcmp(m, "cap-timeout"))
        return mode_cap_timeout();
    if (!strcmp(m, "cap-deadlock"))
        return mode_cap_deadlock();
    if (!strcmp(m, "cap-fifo") && argc > 2)
        return mode_cap_fifo(argv[2]);
    if (!strcmp(m, "cap-failed"))
        return mode_cap_failed();
    if (!strcmp(m, "cap-nonblocking"))
        return mode_cap_nonblocking();
    if (!strcmp(m, "cap-refused-leak"))
        return mode_cap_refused_leak();
    if (!strcmp(m, "cap-per-target"))
        return mode_cap_per_target();
    if (!strcmp(m, "serve") && argc > 2)
        return mode_serve(argv[2]);
    if (!strcmp(m, "idle-tx"))
        return mode_idle_tx();
    if (!strcmp(m, "storm") && argc > 2)
        return mode_storm(argv[2]);
    if (!strcmp(m, "misuse-fork"))
        return mode_misuse_fork();
    if (!strcmp(m, "misuse-fork-close"))
        return mode_misuse_fork_close();
    if (!strcmp(m, "misuse-fork-notice"))
        return mode_misuse_fork_notice();
    if (!strcmp(m, "secret-refusal") && argc > 3)
        return mode_secret_refusal(argv[2], argv[3]);
    if (!strcmp(m, "levels"))
        return mode_levels();
    if (!strcmp(m, "open-close") && argc > 2)
        return mode_open_close(atoi(argv[2]));
    if (!strcmp(m, "client-port") && argc > 2)
        return mode_client_port(argv[2]);
    if (!strcmp(m, "_Exit"))
        return mode_underscore_Exit();
    if (!strcmp(m, "metrics") && argc > 2)
        return mode_metrics(argv[2]);
    if (!strcmp(m, "misuse-threads"))
        return mode_misuse_threads();
    if (!strcmp(m, "waits") && argc > 2)
        return mode_waits(argv[2]);
    if (!strcmp(m, "close-fds") && argc > 2)
        return mode_close_fds(argv[2]);
    if (!strcmp(m, "unwind-fds") && argc > 2)
        return mode_unwind_fds(argv[2]);
    if (!strcmp(m, "log-close-fds") && argc > 2)
        return mode_log_close_fds(argv[2]);
    if (!strcmp(m, "fds") && argc > 2)
        return mode_fds(argv[2], argc > 3 ? atoi(argv[3]) : 0);
    if (!strcmp(m, "two-suspects"))
        return mode_two_suspects();
    if (!strcmp(m, "fake-reporter") && argc > 2)
        return mode_fake_reporter(argv[2]);
    if (!strcmp(m, "setenv-usr2") && argc > 2)
        return mode_setenv_usr2(argv[2]);
    if (!strcmp(m, "signalfd") && argc > 2)
        return mode_signalfd(argv[2]);
    if (!strcmp(m, "puts")) {
        puts("hello");
        return 0;
    }
    if (!strcmp(m, "stdout")) {
        /* Buffered output that only exit() flushes: PQLEAK_EXITCODE must not lose it. */
        printf("buffered output survives\n");
        leak_and_drop();
        return 0;
    }
    fprintf(stderr, "prog: unknown mode '%s'\n", m);
    return 2;
}
