/* LeakSanitizer beside the shim (ASan builds): the registry masks PGconn pointers, so a connection the
 * program drops must still be reported by LeakSanitizer; the shim's own memory is reachable from its
 * globals or freed by design, so closing everything, or keeping leaked connections referenced, must
 * give no LeakSanitizer report at all. No suppressions are needed, and none are used. */
#define _GNU_SOURCE
#include "san.h"
#include "sites.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static PGconn *kept[4];

/* In a thread of its own, so that no stale copy of the pointer stays on a stack LeakSanitizer scans. */
static void *drop_one(void *arg)
{
    (void)arg;
    PGconn *c = san_site_a("");
    SAN_CHECK(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return NULL;
}

static int child_dropped(void)
{
    pthread_t t;
    SAN_CHECK(pthread_create(&t, NULL, drop_one, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    return 0;
}

static int child_closed(void)
{
    setenv("PQLEAK_MAX_CONNS", "2", 1);
    setenv("PQLEAK_CHECKOUT_TIMEOUT", "0", 1);
    PGconn *c[6];
    c[0] = san_site_a("");
    san_exec(c[0], "BEGIN", PGRES_COMMAND_OK);
    san_exec(c[0], "SELECT 1", PGRES_TUPLES_OK);
    c[1] = san_site_deep("", 5, 4);
    c[2] = san_site_b("");                             /* refused at the cap */
    c[3] = san_site_b("host=/nonexistent-pqleak-san"); /* failed: holds no slot */
    c[4] = san_site_b("host=/nonexistent-pqleak-san");
    SAN_CHECK(PQstatus(c[2]) == CONNECTION_BAD && strstr(PQerrorMessage(c[2]), "refused by pqleak"), "no refusal");
    raise(SIGUSR1); /* a live report on the reporter thread */
    san_sleep(0.5);
    PQreset(c[1]);
    c[5] = NULL;
    for (int i = 0; i < 5; i++)
        PQfinish(c[i]);
    return 0;
}

static int child_kept(void)
{
    kept[0] = san_site_a("");
    kept[1] = san_site_b("host=/nonexistent-pqleak-san");
    return 0;
}

static char *run_child(int (*fn)(void), const char *dir, const char *name, int *status)
{
    char *out = san_path(dir, name);
    pid_t pid = fork();
    SAN_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        SAN_CHECK(fd >= 0 && dup2(fd, 2) == 2, "redirect stderr");
        exit(fn());
    }
    *status = san_wait(pid, 120, name);
    char *text = san_read_file(out, NULL);
    free(out);
    SAN_CHECK(text, "no stderr of %s", name);
    return text;
}

int main(void)
{
    san_clean_env();
    char *dir = san_tmpdir("lsan");
    int st;
    char *err = run_child(child_dropped, dir, "dropped", &st);
    SAN_CHECK(strstr(err, "ERROR: LeakSanitizer: detected memory leaks") && strstr(err, "libpq.so"),
              "LeakSanitizer did not report the dropped connection:\n%s", err);
    SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0, "the leaking child exited 0");
    SAN_CHECK(strstr(err, "SUMMARY: pqleak: 1 connection leaked"), "the shim did not report it:\n%s", err);
    free(err);

    err = run_child(child_closed, dir, "closed", &st);
    SAN_CHECK(!strstr(err, "LeakSanitizer") && !strstr(err, "ERROR"), "a report after closing everything:\n%s", err);
    SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x:\n%s", st, err);
    free(err);

    err = run_child(child_kept, dir, "kept", &st);
    SAN_CHECK(!strstr(err, "LeakSanitizer"), "LeakSanitizer reported referenced connections:\n%s", err);
    SAN_CHECK(strstr(err, "SUMMARY: pqleak: 2 connections leaked"), "the shim did not report them:\n%s", err);
    SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x:\n%s", st, err);
    free(err);
    puts("san_lsan: LeakSanitizer sees dropped connections and none of the shim's memory");
    san_rmtree(dir);
    free(dir);
    return 0;
}
