/* Sanitizer test of the checkout (caps): per-target and global caps, the refusal at once of a wait that
 * could never end (with the holders named, which symbolizes on the refusing thread), a non-blocking
 * refusal, a waiter that gets a slot handed over, and a waiter that times out; then exact counters.
 * In-process (core + interpose.c linked in), under ASan+UBSan and TSan. */
#define _GNU_SOURCE
#include "checkout.h"
#include "registry.h"
#include "san.h"
#include "sites.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect_refused(PGconn *c, const char *what, const char *const *needles)
{
    SAN_CHECK(c && PQstatus(c) == CONNECTION_BAD, "%s was not refused", what);
    const char *msg = PQerrorMessage(c);
    for (size_t i = 0; needles[i]; i++)
        SAN_CHECK(strstr(msg, needles[i]), "%s: the refusal message lacks '%s': %s", what, needles[i], msg);
}

struct waiter {
    const char *conninfo;
    PGconn *conn;
    double waited;
};

static void *wait_for_slot(void *arg)
{
    struct waiter *w = arg;
    double t0 = san_now();
    w->conn = san_site_a(w->conninfo);
    w->waited = san_now() - t0;
    return NULL;
}

static int run(const char *dir)
{
    char *reports = san_path(dir, "reports"), *log = san_path(dir, "log.txt");
    setenv("PQLEAK_MAX_CONNS", "3", 1);
    setenv("PQLEAK_MAX_CONNS_PER_TARGET", "2", 1);
    setenv("PQLEAK_CHECKOUT_TIMEOUT", "0.5", 1);
    setenv("PQLEAK_REPORT_DIR", reports, 1);
    setenv("PQLEAK_LOG", log, 1);
    setenv("PQLEAK_TRACE", "1", 1);

    PGconn *a1 = san_connect_ok("dbname=postgres"), *a2 = san_connect_ok("dbname=postgres");
    /* A third to the same target: this thread holds every connection, so waiting could never end. It is
     * refused without waiting: the checkout's own measure says 0.0 s (the wall clock would also count
     * symbolizing the holders, which takes a second under TSan on a loaded machine). */
    PGconn *a3 = san_site_b("dbname=postgres");
    expect_refused(a3, "a third connection to one target",
                   (const char *const[]){"PQLEAK_MAX_CONNS_PER_TARGET=2", "would wait forever", "waited 0.0 s",
                                         "2 held by", NULL});

    PGconn *t1 = san_connect_ok("dbname=template1");
    PGconn *t2 = san_site_b("dbname=template1");
    expect_refused(t2, "a fourth connection", (const char *const[]){"PQLEAK_MAX_CONNS=3", "3 open", NULL});
    const char *kw[] = {"dbname", NULL}, *val[] = {"template1", NULL};
    PGconn *nb = san_site_start(kw, val, 0);
    expect_refused(nb, "a non-blocking connect at the cap", (const char *const[]){"non-blocking connect", NULL});

    /* Another thread waits; closing one connection hands it the slot. */
    struct waiter w1 = {"dbname=template1", NULL, 0};
    pthread_t th;
    SAN_CHECK(pthread_create(&th, NULL, wait_for_slot, &w1) == 0, "pthread_create");
    san_sleep(0.15);
    PQfinish(a1);
    pthread_join(th, NULL);
    SAN_CHECK(PQstatus(w1.conn) == CONNECTION_OK, "the waiter did not get the freed slot: %s", PQerrorMessage(w1.conn));
    SAN_CHECK(w1.waited >= 0.1, "the waiter did not wait (%.2f s)", w1.waited);

    /* Nothing is freed this time: the waiter times out after PQLEAK_CHECKOUT_TIMEOUT. */
    struct waiter w2 = {"dbname=postgres", NULL, 0};
    SAN_CHECK(pthread_create(&th, NULL, wait_for_slot, &w2) == 0, "pthread_create");
    pthread_join(th, NULL);
    expect_refused(w2.conn, "a waiter with nothing freed", (const char *const[]){"checkout timeout", "held by", NULL});
    SAN_CHECK(w2.waited >= 0.45 && w2.waited < 30, "the timeout took %.2f s, not 0.5", w2.waited);

    PGconn *all[] = {a2, a3, t1, t2, nb, w1.conn, w2.conn};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        PQfinish(all[i]);

    struct pql_conn *left;
    struct pql_counters c;
    size_t n = pql_registry_snapshot(&left, &c);
    free(left);
    struct pql_wait_counters w;
    pql_checkout_counters(&w);
    SAN_CHECK(n == 0 && c.open == 0, "%zu records, %ld open at the end", n, c.open);
    SAN_CHECK(c.opened_total == 4 && c.closed_total == 4, "opened %ld, closed %ld; expected 4 and 4", c.opened_total,
              c.closed_total);
    SAN_CHECK(w.refused_total == 4 && w.timeouts_total == 1 && w.waits_total == 2,
              "refused %ld, timeouts %ld, waits %ld; expected 4, 1, 2", w.refused_total, w.timeouts_total, w.waits_total);
    SAN_CHECK(c.peak_open == 3, "peak_open %ld", c.peak_open);
    char *text = san_read_file(log, NULL);
    SAN_CHECK(text && strstr(text, "pqleak: refused: connection refused by pqleak"), "no refusal in the trace");
    free(text);
    free(reports);
    free(log);
    puts("san_caps: caps, refusals, hand-over and timeout as expected");
    return 0;
}

int main(void)
{
    san_clean_env();
    char *dir = san_tmpdir("caps");
    pid_t pid = fork();
    SAN_CHECK(pid >= 0, "fork");
    if (pid == 0)
        exit(run(dir));
    int st = san_wait(pid, 300, "the test process");
    SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the test process ended with status %#x", st);
    char *reports = san_path(dir, "reports");
    char **exits = san_reports(reports, "exit", pid);
    SAN_CHECK(san_count(exits) == 1, "%zu exit reports", san_count(exits));
    json_t *r = san_load_report(exits[0]);
    SAN_CHECK(san_util(r, "refused_total") == 4 && san_util(r, "timeouts_total") == 1 && san_util(r, "open") == 0,
              "%s: counters", exits[0]);
    json_decref(r);
    san_free_list(exits);
    free(reports);
    san_rmtree(dir);
    free(dir);
    return 0;
}
