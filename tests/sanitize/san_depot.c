/* Sanitizer test of the stack depot and the report writers: threads intern and read back synthetic
 * stacks while the depot grows, while this thread opens a thousand failed connections, each from a
 * distinct stack, and three real ones inside transactions; then a live report requested directly, one
 * requested by signal, and the exit report of the leaked half, all checked against the schema.
 * In-process (core + interpose.c linked in), under ASan+UBSan and TSan. */
#define _GNU_SOURCE
#include "report.h"
#include "san.h"
#include "shim.h"
#include "sites.h"
#include "stack.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DISTINCT 1024 /* 2^10: san_site_deep with depth 10 */
#define REAL 3

static PGconn *conns[DISTINCT + REAL]; /* the leaked half stays referenced: LeakSanitizer must not see it */

static void *interner(void *arg)
{
    uintptr_t tag = (uintptr_t)arg;
    for (uintptr_t i = 0; i < 3000; i++) {
        uintptr_t mine[] = {0x1000 + tag, i, 0x7f0000000000 + i}, shared[] = {0x2000, i % 500};
        uint32_t a = pql_stack_intern(mine, 3), b = pql_stack_intern(shared, 2);
        SAN_CHECK(a && b, "intern failed");
        int n = 0;
        const uintptr_t *f = pql_stack_get(a, &n);
        SAN_CHECK(f && n == 3 && !memcmp(f, mine, sizeof mine), "stack %u read back wrong", a);
        f = pql_stack_get(b, &n);
        SAN_CHECK(f && n == 2 && !memcmp(f, shared, sizeof shared), "stack %u read back wrong", b);
    }
    return NULL;
}

static json_t *load_only(const char *dir, const char *trigger, pid_t pid)
{
    char **list = san_reports(dir, trigger, pid);
    SAN_CHECK(san_count(list) == 1, "%zu %s reports", san_count(list), trigger);
    json_t *r = san_load_report(list[0]);
    san_free_list(list);
    return r;
}

static int run(const char *dir)
{
    char *reports = san_path(dir, "reports"), *log = san_path(dir, "log.txt");
    setenv("PQLEAK_REPORT_DIR", reports, 1);
    setenv("PQLEAK_LOG", log, 1);
    setenv("PQLEAK_STACK_DEPTH", "64", 1);

    uint32_t before = pql_stack_count();
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        SAN_CHECK(pthread_create(&t[i], NULL, interner, (void *)i) == 0, "pthread_create");
    for (unsigned i = 0; i < DISTINCT; i++) {
        conns[i] = san_site_deep("host=/nonexistent-pqleak-san", i, 10);
        SAN_CHECK(PQstatus(conns[i]) == CONNECTION_BAD, "connect to nowhere succeeded");
    }
    for (int i = 0; i < REAL; i++) {
        conns[DISTINCT + i] = san_site_a("");
        SAN_CHECK(PQstatus(conns[DISTINCT + i]) == CONNECTION_OK, "connect: %s", PQerrorMessage(conns[DISTINCT + i]));
        san_exec(conns[DISTINCT + i], "BEGIN", PGRES_COMMAND_OK);
        san_exec(conns[DISTINCT + i], "SELECT 1", PGRES_TUPLES_OK);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* The depot grew by the threads' stacks (3 x 3000 own + 500 shared) and the connections' own. */
    SAN_CHECK(pql_stack_count() >= before + 4 * 3000 + 500 + DISTINCT, "the depot holds %u stacks",
              pql_stack_count());

    char path[4096];
    SAN_CHECK(pql_report_live(pql_shim_settings(), "request", reports, true, path, sizeof path),
              "the live report could not be written");
    json_t *r = san_load_report(path);
    SAN_CHECK(json_array_size(json_object_get(r, "connections")) == DISTINCT + REAL, "%zu connections in %s",
              json_array_size(json_object_get(r, "connections")), path);
    SAN_CHECK(json_object_size(json_object_get(r, "stacks")) >= DISTINCT + 1, "%zu stacks in %s",
              json_object_size(json_object_get(r, "stacks")), path);
    json_decref(r);

    raise(SIGUSR1);
    double deadline = san_now() + 120;
    char **sigs;
    while (san_count(sigs = san_reports(reports, "signal", getpid())) == 0 && san_now() < deadline) {
        san_free_list(sigs);
        san_sleep(0.05);
    }
    san_free_list(sigs);
    r = load_only(reports, "signal", getpid());
    SAN_CHECK(json_array_size(json_object_get(r, "connections")) == DISTINCT + REAL, "signal report: connections");
    json_decref(r);

    /* Close every other connection; the rest leak. */
    for (int i = 0; i < DISTINCT + REAL; i += 2) {
        PQfinish(conns[i]);
        conns[i] = NULL;
    }
    free(reports);
    free(log);
    puts("san_depot: depot and live reports ok");
    return 0;
}

int main(void)
{
    san_clean_env();
    char *dir = san_tmpdir("depot");
    pid_t pid = fork();
    SAN_CHECK(pid >= 0, "fork");
    if (pid == 0)
        exit(run(dir));
    int st = san_wait(pid, 600, "the test process");
    SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the test process ended with status %#x", st);
    char *reports = san_path(dir, "reports");
    json_t *r = load_only(reports, "exit", pid);
    long leaked = 0, groups = 0;
    size_t i;
    const json_t *l;
    json_array_foreach(json_object_get(r, "leaks"), i, l) {
        leaked += (long)json_integer_value(json_object_get(l, "count"));
        groups++;
    }
    long want = (DISTINCT + REAL) / 2;
    SAN_CHECK(leaked == want, "%ld leaked in the exit report, expected %ld", leaked, want);
    SAN_CHECK(groups == want, "%ld leak groups, expected %ld (every leaked connection has a stack of its own)",
              groups, want);
    json_decref(r);
    san_no_temp_files(reports);
    free(reports);
    san_rmtree(dir);
    free(dir);
    return 0;
}
