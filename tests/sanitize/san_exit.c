/* Sanitizer test of the exit report: children leak connections in several ways and leave through
 * return from main, _exit, or with an unusable report directory; this process (which never connects,
 * so the shim stays inert in it) checks each child's exit status, its JSON report against the schema,
 * the grouping, suppressions, transaction stacks, redaction of a password given as application_name,
 * and the text report in the log. In-process (core + interpose.c linked in), under ASan+UBSan and TSan. */
#define _GNU_SOURCE
#include "san.h"
#include "sites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "PwMarker7731"

/* Leaked connections stay referenced from here, as in a program that holds them until exit: the shim
 * must report them, and LeakSanitizer must not (they are reachable). */
static PGconn *kept[8];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    SAN_CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
}

/* Child A: two unsuppressed leaks (one inside a transaction, one whose application_name is the
 * password), one suppressed failed connection, one closed; returns 0, PQLEAK_EXITCODE=42. */
static int child_leaks(void)
{
    kept[0] = san_site_a("application_name=" SECRET " password=" SECRET);
    SAN_CHECK(PQstatus(kept[0]) == CONNECTION_OK, "connect: %s", PQerrorMessage(kept[0]));
    const char *kw[] = {"dbname", NULL}, *val[] = {getenv("PGDATABASE"), NULL};
    kept[1] = san_site_params(kw, val, 0);
    SAN_CHECK(PQstatus(kept[1]) == CONNECTION_OK, "connect: %s", PQerrorMessage(kept[1]));
    san_exec(kept[1], "BEGIN", PGRES_COMMAND_OK);
    san_exec(kept[1], "SELECT 1", PGRES_TUPLES_OK);
    kept[2] = san_site_b("host=/nonexistent-pqleak-san");
    SAN_CHECK(PQstatus(kept[2]) == CONNECTION_BAD, "connect to nowhere succeeded");
    PQfinish(san_site_a(""));
    return 0;
}

/* Child B: one failed connection leaked, then _exit(7): the report is still written, the status kept. */
static int child_underscore_exit(void)
{
    kept[0] = san_site_b("host=/nonexistent-pqleak-san");
    _exit(7);
}

/* Child C: everything closed: a report without leaks, nothing in the log. */
static int child_clean(void)
{
    for (int i = 0; i < 5; i++)
        PQfinish(san_site_deep(i % 2 ? "" : "host=/nonexistent-pqleak-san", (unsigned)i, 3));
    return 0;
}

/* Child D: a report directory that cannot be made: warning, report to the log, status unchanged. */
static int child_bad_dir(void)
{
    kept[0] = san_site_a("");
    return 3;
}

struct scenario {
    const char *name;
    int (*fn)(void);
    const char *env[8]; /* NAME=VALUE; "@" stands for the scenario's directory */
    int status;
};

static const struct scenario scenarios[] = {
    {"leaks", child_leaks, {"PQLEAK_EXITCODE=42", "PQLEAK_SUPPRESSIONS=@/supp", NULL}, 42},
    {"underscore_exit", child_underscore_exit, {NULL}, 7},
    {"clean", child_clean, {"PQLEAK_EXITCODE=42", NULL}, 0},
    {"bad_dir", child_bad_dir, {"PQLEAK_REPORT_DIR=@/missing/nested", NULL}, 3},
};

static pid_t start(const struct scenario *s, const char *dir)
{
    pid_t pid = fork();
    SAN_CHECK(pid >= 0, "fork");
    if (pid)
        return pid;
    char *reports = san_path(dir, "reports"), *log = san_path(dir, "log.txt");
    setenv("PQLEAK_REPORT_DIR", reports, 1);
    setenv("PQLEAK_LOG", log, 1);
    for (size_t i = 0; s->env[i]; i++) {
        char *kv = strdup(s->env[i]), *eq = strchr(kv, '=');
        *eq = '\0';
        char value[1024];
        snprintf(value, sizeof value, "%s", eq + 1);
        if (value[0] == '@')
            snprintf(value, sizeof value, "%s%s", dir, eq + 2);
        setenv(kv, value, 1);
        free(kv);
    }
    free(reports);
    free(log);
    exit(s->fn());
}

static json_t *only_exit_report(const char *dir, pid_t pid)
{
    char *reports = san_path(dir, "reports");
    char **list = san_reports(reports, "exit", pid);
    SAN_CHECK(san_count(list) == 1, "%zu exit reports in %s", san_count(list), reports);
    json_t *r = san_load_report(list[0]);
    char *raw = san_read_file(list[0], NULL);
    SAN_CHECK(!strstr(raw, SECRET), "%s contains the password", list[0]);
    free(raw);
    san_no_temp_files(reports);
    san_free_list(list);
    free(reports);
    return r;
}

static bool has_frame(const json_t *report, const char *function)
{
    const char *key;
    const json_t *frames, *f;
    size_t i;
    json_object_foreach((json_t *)json_object_get(report, "stacks"), key, frames) {
        json_array_foreach(frames, i, f) {
            const char *fn = json_string_value(json_object_get(f, "function"));
            if (fn && !strcmp(fn, function))
                return true;
        }
    }
    return false;
}

static void check_leaks(const char *dir, pid_t pid)
{
    json_t *r = only_exit_report(dir, pid);
    long unsuppressed = 0, suppressed = 0;
    size_t i;
    const json_t *l;
    json_array_foreach(json_object_get(r, "leaks"), i, l) {
        long n = (long)json_integer_value(json_object_get(l, "count"));
        if (json_is_true(json_object_get(l, "suppressed"))) {
            suppressed += n;
            SAN_CHECK(!strcmp(json_string_value(json_object_get(l, "rule")) ?: "", "leak:san_site_b"),
                      "suppressed by the wrong rule");
        } else {
            unsuppressed += n;
        }
    }
    SAN_CHECK(unsuppressed == 2 && suppressed == 1, "leaks: %ld unsuppressed, %ld suppressed; expected 2 and 1",
              unsuppressed, suppressed);
    const json_t *conns = json_object_get(r, "connections"), *c;
    SAN_CHECK(json_array_size(conns) == 3, "%zu connections listed, expected the 3 leaked",
              json_array_size(conns));
    int intrans = 0, bad = 0, redacted = 0;
    json_array_foreach(conns, i, c) {
        const char *tx = json_string_value(json_object_get(c, "tx_status"));
        if (!strcmp(tx, "intrans")) {
            intrans++;
            SAN_CHECK(json_is_integer(json_object_get(c, "tx_stack")), "a connection in a transaction has no tx_stack");
        }
        bad += !strcmp(json_string_value(json_object_get(c, "status")), "bad");
        const char *app = json_string_value(json_object_get(json_object_get(c, "target"), "application_name"));
        redacted += app && !strcmp(app, "[redacted]");
    }
    SAN_CHECK(intrans == 1 && bad == 1 && redacted == 1, "intrans %d, bad %d, redacted %d; expected 1, 1, 1", intrans,
              bad, redacted);
    SAN_CHECK(has_frame(r, "san_site_a") && has_frame(r, "san_site_b") && has_frame(r, "san_site_params"),
              "the stacks do not name the connect sites");
    SAN_CHECK(san_util(r, "opened_total") == 4 && san_util(r, "closed_total") == 1 && san_util(r, "failed_total") == 1,
              "counters");
    json_decref(r);
    char *log = san_read_in(dir, "log.txt");
    SAN_CHECK(log && strstr(log, "SUMMARY: pqleak: 2 connections leaked in") &&
                  strstr(log, "Suppressed: 1 connection") && strstr(log, "1 leak:san_site_b"),
              "the text report is incomplete:\n%s", log ? log : "(no log)");
    SAN_CHECK(!strstr(log, SECRET), "the log contains the password");
    free(log);
}

static void check_underscore_exit(const char *dir, pid_t pid)
{
    json_t *r = only_exit_report(dir, pid);
    SAN_CHECK(json_array_size(json_object_get(r, "leaks")) == 1 && san_util(r, "failed_total") == 1, "leaks");
    json_decref(r);
    char *log = san_read_in(dir, "log.txt");
    SAN_CHECK(log && strstr(log, "SUMMARY: pqleak: 1 connection leaked"), "no text report in the log");
    free(log);
}

static void check_clean(const char *dir, pid_t pid)
{
    json_t *r = only_exit_report(dir, pid);
    SAN_CHECK(json_array_size(json_object_get(r, "leaks")) == 0 && json_array_size(json_object_get(r, "connections")) == 0,
              "a clean process reported leaks");
    SAN_CHECK(san_util(r, "opened_total") == 5 && san_util(r, "closed_total") == 5, "counters");
    json_decref(r);
    struct stat st;
    char *log = san_path(dir, "log.txt");
    SAN_CHECK(stat(log, &st) != 0, "a clean process wrote to its log");
    free(log);
}

static void check_bad_dir(const char *dir, pid_t pid)
{
    (void)pid;
    char *log = san_read_in(dir, "log.txt");
    SAN_CHECK(log && strstr(log, "cannot write a report in PQLEAK_REPORT_DIR=") &&
                  strstr(log, "the report goes to the log instead") &&
                  strstr(log, "SUMMARY: pqleak: 1 connection leaked"),
              "no warning or no text report:\n%s", log ? log : "(no log)");
    free(log);
}

int main(void)
{
    san_clean_env();
    void (*checks[])(const char *, pid_t) = {check_leaks, check_underscore_exit, check_clean, check_bad_dir};
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        const struct scenario *s = &scenarios[i];
        char *dir = san_tmpdir(s->name), *supp = san_path(dir, "supp");
        write_file(supp, "# the failed connections of child A\nleak:san_site_b\n");
        free(supp);
        pid_t pid = start(s, dir);
        int st = san_wait(pid, 300, s->name);
        SAN_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == s->status, "%s: status %#x, expected exit %d", s->name, st,
                  s->status);
        checks[i](dir, pid);
        printf("san_exit: %s ok\n", s->name);
        fflush(stdout); /* before the next fork, or the child would print it again */
        san_rmtree(dir);
        free(dir);
    }
    return 0;
}
