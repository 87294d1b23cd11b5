/* Sanitizer test of the connection paths under load: 8 threads x 200 connect / query / finish cycles
 * through every interposer with PQLEAK_MAX_CONNS=3, a SIGUSR1 storm (raise and kill from another
 * thread), suspects, metrics, trace lines and forked children; then the registry's counts must be
 * exact and every report valid. In-process (core + interpose.c linked in), under ASan+UBSan and TSan. */
#define _GNU_SOURCE
#include "checkout.h"
#include "registry.h"
#include "san.h"
#include "sites.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define CYCLES 200
/* ASan of clang 14 and gcc 12 does not hold its allocator's locks across fork (later versions do): a
 * child forked while another thread is inside malloc can hang in its first malloc. So forks under
 * load run in the TSan build (and preloaded, in tests/stress); the ASan build forks none here. */
#if defined(__SANITIZE_ADDRESS__)
#define FORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORKS 0
#endif
#endif
#ifndef FORKS
#define FORKS 8
#endif

static atomic_long opened, failed, refused; /* what the program itself saw */
static atomic_bool stop;
static const char *dbname;

static void poll_connect(PGconn *c)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(PQsocket(c), &fds);
        struct timeval tv = {5, 0};
        if (st == PGRES_POLLING_READING)
            select(PQsocket(c) + 1, &fds, NULL, NULL, &tv);
        else
            select(PQsocket(c) + 1, NULL, &fds, NULL, &tv);
        st = PQconnectPoll(c);
    }
    SAN_CHECK(st == PGRES_POLLING_OK, "PQconnectPoll: %s", PQerrorMessage(c));
}

static bool refused_by_pqleak(PGconn *c)
{
    return PQstatus(c) == CONNECTION_BAD && strstr(PQerrorMessage(c), "connection refused by pqleak");
}

/* One cycle; the variant depends on i. */
static void cycle(int i)
{
    const char *kw[] = {"dbname", "application_name", NULL};
    const char *val[] = {dbname, "san_conns", NULL};
    PGconn *c = NULL;
    switch (i % 8) {
    case 0: /* blocking connect, simple query */
        c = san_site_a("");
        SAN_CHECK(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
        san_exec(c, "SELECT 1", PGRES_TUPLES_OK);
        break;
    case 1: /* keyword arrays, a transaction: a transaction-begin stack */
        c = san_site_params(kw, val, 0);
        SAN_CHECK(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
        san_exec(c, "BEGIN", PGRES_COMMAND_OK);
        san_exec(c, "SELECT 1", PGRES_TUPLES_OK);
        san_exec(c, "COMMIT", PGRES_COMMAND_OK);
        break;
    case 2: { /* non-blocking: never waits at the cap, so it may be refused */
        c = san_site_start(kw, val, 0);
        SAN_CHECK(c, "PQconnectStartParams returned NULL");
        if (refused_by_pqleak(c)) {
            atomic_fetch_add(&refused, 1);
            PQfinish(c);
            return;
        }
        poll_connect(c);
        SAN_CHECK(PQsendQuery(c, "SELECT 2"), "PQsendQuery: %s", PQerrorMessage(c));
        PGresult *r;
        while ((r = PQgetResult(c)))
            PQclear(r);
        break;
    }
    case 3: { /* PQsetdbLogin, prepared statements */
        c = PQsetdbLogin(NULL, NULL, NULL, NULL, dbname, NULL, NULL);
        SAN_CHECK(PQstatus(c) == CONNECTION_OK, "PQsetdbLogin: %s", PQerrorMessage(c));
        PGresult *r = PQprepare(c, "s", "SELECT $1::int", 1, NULL);
        SAN_CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "PQprepare: %s", PQerrorMessage(c));
        PQclear(r);
        const char *p[] = {"7"};
        r = PQexecPrepared(c, "s", 1, p, NULL, NULL, 0);
        SAN_CHECK(PQresultStatus(r) == PGRES_TUPLES_OK, "PQexecPrepared: %s", PQerrorMessage(c));
        PQclear(r);
        break;
    }
    case 4: /* a failed connect: a record, but no slot */
        c = san_site_b("host=/nonexistent-pqleak-san connect_timeout=2");
        SAN_CHECK(PQstatus(c) == CONNECTION_BAD, "connect to nowhere succeeded");
        atomic_fetch_add(&failed, 1);
        break;
    case 5: { /* PQreset keeps the record */
        c = san_site_a("");
        SAN_CHECK(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
        PQreset(c);
        SAN_CHECK(PQstatus(c) == CONNECTION_OK, "PQreset: %s", PQerrorMessage(c));
        const char *p[] = {"x"};
        PGresult *r = PQexecParams(c, "SELECT $1::text", 1, NULL, p, NULL, NULL, 0);
        SAN_CHECK(PQresultStatus(r) == PGRES_TUPLES_OK, "PQexecParams: %s", PQerrorMessage(c));
        PQclear(r);
        break;
    }
    case 6: /* idle in a transaction for a while now and then: idle-transaction suspects */
        c = san_site_a("");
        SAN_CHECK(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
        san_exec(c, "BEGIN", PGRES_COMMAND_OK);
        if (i % 48 == 6)
            san_sleep(0.08);
        san_exec(c, "ROLLBACK", PGRES_COMMAND_OK);
        break;
    default: /* many distinct stacks for the depot */
        c = san_site_deep("", (unsigned)i, 6);
        SAN_CHECK(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
        break;
    }
    atomic_fetch_add(&opened, 1);
    PQfinish(c);
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    for (int i = 0; i < CYCLES; i++)
        cycle(i + id);
    return NULL;
}

/* Live-report requests from another thread while everything runs. */
static void *signaller(void *arg)
{
    (void)arg;
    for (long i = 0; !atomic_load(&stop); i++) {
        if (i % 2)
            raise(SIGUSR1);
        else
            kill(getpid(), SIGUSR1);
        san_sleep(0.002);
    }
    return NULL;
}

/* Forks now and then while the workers connect: the child must connect, query and leave cleanly. */
static void *forker(void *arg)
{
    (void)arg;
    for (int i = 0; i < FORKS; i++) {
        san_sleep(0.05);
        pid_t pid = fork();
        SAN_CHECK(pid >= 0, "fork");
        if (pid == 0) {
            PGconn *c = san_site_a("");
            SAN_CHECK(PQstatus(c) == CONNECTION_OK, "connect in child: %s", PQerrorMessage(c));
            san_exec(c, "SELECT 1", PGRES_TUPLES_OK);
            PQfinish(c);
            /* _exit, not exit: exit() would run LeakSanitizer in a process whose other threads vanished
             * with fork, while their stacks still hold the only pointers to what they allocated. The shim
             * interposes _exit, so the child's exit report is still written. */
            _exit(0);
        }
        int st = san_wait(pid, 30, "forked child");
        SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child ended with status %#x", st);
    }
    return NULL;
}

/* The test proper, in a child process of main (see there). */
static int run(const char *dir)
{
    dbname = getenv("PGDATABASE");
    SAN_CHECK(dbname && getenv("PGHOST"), "run through tools/pgserver exec (PGHOST, PGDATABASE)");
    char *reports = san_path(dir, "reports"), *metrics = san_path(dir, "metrics.prom");
    char *log = san_path(dir, "log-%p.txt");
    setenv("PQLEAK_MAX_CONNS", "3", 1);
    setenv("PQLEAK_CHECKOUT_TIMEOUT", "120", 1);
    setenv("PQLEAK_REPORT_DIR", reports, 1);
    setenv("PQLEAK_SUSPECT_IDLE_TX", "0.05", 1);
    setenv("PQLEAK_SUSPECT_AGE", "0.05", 1);
    setenv("PQLEAK_METRICS", metrics, 1);
    setenv("PQLEAK_METRICS_INTERVAL", "0.1", 1);
    setenv("PQLEAK_TRACE", "1", 1);
    setenv("PQLEAK_LOG", log, 1);

    /* The first connection starts the shim and installs its SIGUSR1 handler: no signal before it. */
    PGconn *first = san_connect_ok("");
    PQfinish(first);
    atomic_fetch_add(&opened, 1);

    pthread_t t[THREADS], sig, fk;
    for (long i = 0; i < THREADS; i++)
        SAN_CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
    SAN_CHECK(pthread_create(&sig, NULL, signaller, NULL) == 0, "pthread_create");
    SAN_CHECK(pthread_create(&fk, NULL, forker, NULL) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_join(fk, NULL);
    atomic_store(&stop, true);
    pthread_join(sig, NULL);

    /* Exact counts: every connect the program made, nothing open, nothing left in the registry. */
    struct pql_conn *left;
    struct pql_counters c;
    size_t n = pql_registry_snapshot(&left, &c);
    free(left);
    struct pql_wait_counters w;
    pql_checkout_counters(&w);
    long want_opened = atomic_load(&opened); /* failed connects included: they are records too */
    SAN_CHECK(n == 0, "%zu records left in the registry", n);
    SAN_CHECK(c.open == 0, "open = %ld at the end", c.open);
    SAN_CHECK(c.opened_total == want_opened, "opened_total %ld, the program made %ld", c.opened_total, want_opened);
    SAN_CHECK(c.closed_total == c.opened_total, "closed_total %ld != opened_total %ld", c.closed_total, c.opened_total);
    SAN_CHECK(c.failed_total == atomic_load(&failed), "failed_total %ld, expected %ld", c.failed_total,
              atomic_load(&failed));
    SAN_CHECK(w.refused_total == atomic_load(&refused), "refused_total %ld, the program saw %ld", w.refused_total,
              atomic_load(&refused));
    SAN_CHECK(w.timeouts_total == 0, "%ld checkout timeouts", w.timeouts_total);
    SAN_CHECK(c.peak_open <= 3, "peak_open %ld above the cap", c.peak_open);
    SAN_CHECK(w.waits_total > 0, "no connect ever waited at the cap of 3 with %d threads", THREADS);

    /* The reporter keeps one signal report per process; let it finish the last one. */
    char **sigs = NULL;
    double deadline = san_now() + 60;
    for (;;) {
        sigs = san_reports(reports, "signal", getpid());
        if (san_count(sigs) == 1 || san_now() > deadline)
            break;
        san_free_list(sigs);
        san_sleep(0.05);
    }
    SAN_CHECK(san_count(sigs) == 1, "%zu signal reports of this process, expected exactly 1", san_count(sigs));
    json_decref(san_load_report(sigs[0]));
    san_free_list(sigs);
    char **all = san_reports(reports, NULL, 0);
    size_t exits = 0;
    for (size_t i = 0; all[i]; i++) {
        json_t *r = san_load_report(all[i]);
        if (!strcmp(json_string_value(json_object_get(r, "trigger")), "exit")) {
            /* A forked child's own: one connection opened and closed, nothing of the parent's. */
            exits++;
            SAN_CHECK(san_util(r, "opened_total") == 1 && san_util(r, "closed_total") == 1 && san_util(r, "open") == 0,
                      "%s: a child's counters are not 1 opened, 1 closed, 0 open", all[i]);
            SAN_CHECK(json_array_size(json_object_get(r, "leaks")) == 0, "%s: a child leaked", all[i]);
        }
        json_decref(r);
    }
    san_free_list(all);
    SAN_CHECK(exits == FORKS, "%zu exit reports of children, expected %d", exits, FORKS);
    size_t mlen;
    char *m = san_read_file(metrics, &mlen);
    SAN_CHECK(m && strstr(m, "pqleak_connections_open{"), "metrics file %s missing or incomplete", metrics);
    free(m);
    printf("san_conns: %ld connects (%ld failed, %ld refused), %ld waits, %d forks: counts exact\n", want_opened,
           atomic_load(&failed), atomic_load(&refused), w.waits_total, FORKS);
    fflush(stdout);
    free(reports);
    free(metrics);
    free(log);
    return 0;
}

/* The test runs in a child so that this process can check the child's exit report, written after the
 * child's main returned, and then remove the directory. This process never connects: the shim stays
 * inert in it. */
int main(void)
{
    san_clean_env();
    char *dir = san_tmpdir("conns");
    pid_t pid = fork();
    SAN_CHECK(pid >= 0, "fork");
    if (pid == 0)
        exit(run(dir));
    int st = san_wait(pid, 900, "the test process");
    SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the test process ended with status %#x", st);
    char *reports = san_path(dir, "reports");
    char **exits = san_reports(reports, "exit", pid);
    SAN_CHECK(san_count(exits) == 1, "%zu exit reports of the test process", san_count(exits));
    json_t *r = san_load_report(exits[0]);
    SAN_CHECK(san_util(r, "open") == 0 && san_util(r, "opened_total") == san_util(r, "closed_total") &&
                  json_array_size(json_object_get(r, "leaks")) == 0,
              "%s: the final counts are not exact", exits[0]);
    json_decref(r);
    san_free_list(exits);
    san_no_temp_files(reports);
    free(reports);
    san_rmtree(dir);
    free(dir);
    return 0;
}
