/* Helpers shared by the sanitizer test programs (san.h): failures, temp directories, children with a
 * deadline, and schema checks of the shim's JSON reports. Test programs only. */
#define _GNU_SOURCE
#include "san.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void san_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One write, so that lines of children and threads do not mix. */
    dprintf(2, "FAIL %s:%d: %s (%s) [pid %d]\n", file, line, msg, cond, (int)getpid());
    _exit(1);
}

double san_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void san_sleep(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void san_clean_env(void)
{
    extern char **environ;
    for (char **e = environ; *e;) {
        if (!strncmp(*e, "PQLEAK_", 7)) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
            unsetenv(name); /* environ shifts down: look at the same slot again */
        } else {
            e++;
        }
    }
}

char *san_tmpdir(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    char *d;
    SAN_CHECK(asprintf(&d, "%s/pqleak-san-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag) > 0, "asprintf");
    SAN_CHECK(mkdtemp(d), "mkdtemp %s: %s", d, strerror(errno));
    return d;
}

char *san_path(const char *dir, const char *name)
{
    char *p;
    SAN_CHECK(asprintf(&p, "%s/%s", dir, name) > 0, "asprintf");
    return p;
}

void san_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = san_path(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            san_rmtree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

int san_wait(pid_t pid, double timeout_s, const char *what)
{
    double end = san_now() + timeout_s;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        SAN_CHECK(r == 0 || errno == EINTR, "waitpid(%d) for %s: %s", (int)pid, what, strerror(errno));
        if (san_now() > end) {
            /* Where it hangs is the finding: show every thread's stack when gdb is there. */
            char cmd[256];
            snprintf(cmd, sizeof cmd,
                     "command -v gdb >/dev/null && gdb -p %d -batch -nx -ex 'thread apply all bt' 2>&1 | "
                     "grep -E '^(#|Thread)' >&2",
                     (int)pid);
            if (system(cmd) != 0)
                dprintf(2, "(no stacks: gdb not available)\n");
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            san_fail(__FILE__, __LINE__, "hang", "%s (pid %d) still running after %.0f s: killed", what, (int)pid,
                     timeout_s);
        }
        san_sleep(0.005);
    }
}

PGconn *san_connect_ok(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    SAN_CHECK(c && PQstatus(c) == CONNECTION_OK, "connect '%s': %s", conninfo, c ? PQerrorMessage(c) : "NULL");
    return c;
}

void san_exec(PGconn *c, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(c, sql);
    SAN_CHECK(r && PQresultStatus(r) == want, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **san_reports(const char *dir, const char *trigger, pid_t pid)
{
    size_t n = 0;
    char **v = calloc(1, sizeof *v);
    DIR *d = opendir(dir);
    SAN_CHECK(v && d, "opendir %s: %s", dir, strerror(errno));
    char pattern[128];
    if (pid)
        snprintf(pattern, sizeof pattern, "pqleak-%d-%s-*.json", (int)pid, trigger ? trigger : "*");
    else
        snprintf(pattern, sizeof pattern, "pqleak-*-%s-*.json", trigger ? trigger : "*");
    struct dirent *e;
    while ((e = readdir(d))) {
        if (fnmatch(pattern, e->d_name, FNM_PERIOD) != 0)
            continue;
        v = realloc(v, (n + 2) * sizeof *v);
        SAN_CHECK(v, "realloc");
        v[n++] = san_path(dir, e->d_name);
        v[n] = NULL;
    }
    closedir(d);
    qsort(v, n, sizeof *v, by_name);
    return v;
}

size_t san_count(char **list)
{
    size_t n = 0;
    while (list[n])
        n++;
    return n;
}

void san_free_list(char **list)
{
    for (size_t i = 0; list[i]; i++)
        free(list[i]);
    free(list);
}

char *san_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            SAN_CHECK(buf, "realloc");
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *san_read_in(const char *dir, const char *name)
{
    char *p = san_path(dir, name), *text = san_read_file(p, NULL);
    free(p);
    return text;
}

void san_no_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        SAN_CHECK(fnmatch(".pqleak-*.tmp", e->d_name, FNM_PERIOD) != 0, "temp file left in %s: %s", dir,
                  e->d_name);
    closedir(d);
}

/* ---- schema ---- */

static bool is_int_or_null(const json_t *x)
{
    return x && (json_is_integer(x) || json_is_null(x));
}

static bool is_str_or_null(const json_t *x)
{
    return x && (json_is_string(x) || json_is_null(x));
}

static bool is_num_or_null(const json_t *x)
{
    return x && (json_is_number(x) || json_is_null(x));
}

static void check_stack_ref(const char *path, const json_t *stacks, const json_t *ref, const char *what)
{
    SAN_CHECK(is_int_or_null(ref), "%s: %s is not a stack id or null", path, what);
    if (json_is_integer(ref)) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(ref));
        SAN_CHECK(json_object_get(stacks, key), "%s: %s refers to stack %s, not in \"stacks\"", path, what, key);
    }
}

long san_util(const json_t *report, const char *name)
{
    const json_t *x = json_object_get(json_object_get(report, "utilization"), name);
    SAN_CHECK(json_is_integer(x), "utilization.%s is not an integer", name);
    return (long)json_integer_value(x);
}

json_t *san_load_report(const char *path)
{
    struct stat st;
    SAN_CHECK(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    SAN_CHECK((st.st_mode & 0777) == 0600, "%s has mode %o, not 0600", path, (unsigned)(st.st_mode & 0777));
    json_error_t err;
    json_t *r = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    SAN_CHECK(r, "%s is not valid JSON: line %d: %s", path, err.line, err.text);
    SAN_CHECK(json_is_object(r), "%s: not an object", path);
    SAN_CHECK(!strcmp(json_string_value(json_object_get(r, "schema")) ?: "", "pqleak/1"), "%s: schema", path);
    const char *trigger = json_string_value(json_object_get(r, "trigger"));
    SAN_CHECK(trigger && (!strcmp(trigger, "exit") || !strcmp(trigger, "signal") || !strcmp(trigger, "suspect") ||
                          !strcmp(trigger, "request")),
              "%s: trigger", path);
    SAN_CHECK(json_is_integer(json_object_get(r, "pid")), "%s: pid", path);
    SAN_CHECK(is_str_or_null(json_object_get(r, "program")), "%s: program", path);
    SAN_CHECK(json_is_string(json_object_get(r, "time")), "%s: time", path);
    SAN_CHECK(json_is_object(json_object_get(r, "settings")), "%s: settings", path);
    static const char *const counters[] = {"open", "peak_open", "cap", "opened_total", "closed_total",
                                           "failed_total", "waits_total", "timeouts_total", "refused_total"};
    const json_t *u = json_object_get(r, "utilization");
    SAN_CHECK(json_is_object(u), "%s: utilization", path);
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        SAN_CHECK(json_is_integer(json_object_get(u, counters[i])) &&
                      json_integer_value(json_object_get(u, counters[i])) >= 0,
                  "%s: utilization.%s", path, counters[i]);
    SAN_CHECK(is_num_or_null(json_object_get(u, "utilization_pct")) && json_is_number(json_object_get(u, "wait_s_total")) &&
                  json_is_number(json_object_get(u, "wait_s_max")),
              "%s: utilization numbers", path);
    const json_t *stacks = json_object_get(r, "stacks");
    SAN_CHECK(json_is_object(stacks), "%s: stacks", path);
    const char *key;
    const json_t *frames;
    json_object_foreach((json_t *)stacks, key, frames) {
        SAN_CHECK(json_is_array(frames), "%s: stack %s is not a list", path, key);
        size_t i;
        const json_t *f;
        json_array_foreach(frames, i, f) {
            SAN_CHECK(json_is_object(f) && is_str_or_null(json_object_get(f, "function")) &&
                          is_str_or_null(json_object_get(f, "file")) && is_int_or_null(json_object_get(f, "line")) &&
                          is_str_or_null(json_object_get(f, "module")) &&
                          json_is_string(json_object_get(f, "offset")) && json_is_string(json_object_get(f, "lang")),
                      "%s: stack %s frame %zu is malformed", path, key, i);
        }
    }
    const json_t *conns = json_object_get(r, "connections");
    SAN_CHECK(json_is_array(conns), "%s: connections", path);
    size_t i;
    const json_t *c;
    json_array_foreach(conns, i, c) {
        static const char *const fields[] = {"host", "port", "dbname", "user", "application_name"};
        const json_t *t = json_object_get(c, "target");
        SAN_CHECK(json_is_integer(json_object_get(c, "id")) && json_is_object(t), "%s: connection %zu", path, i);
        for (size_t k = 0; k < 5; k++)
            SAN_CHECK(is_str_or_null(json_object_get(t, fields[k])), "%s: connection %zu target.%s", path, i,
                      fields[k]);
        const char *status = json_string_value(json_object_get(c, "status"));
        const char *tx = json_string_value(json_object_get(c, "tx_status"));
        SAN_CHECK(status && (!strcmp(status, "ok") || !strcmp(status, "bad")), "%s: connection %zu status", path, i);
        SAN_CHECK(tx && strstr(" idle active intrans inerror unknown ", tx), "%s: connection %zu tx_status", path, i);
        SAN_CHECK(is_int_or_null(json_object_get(c, "server_pid")) && is_num_or_null(json_object_get(c, "age_s")) &&
                      is_num_or_null(json_object_get(c, "idle_s")) && json_is_integer(json_object_get(c, "thread")) &&
                      is_str_or_null(json_object_get(c, "suspect")),
                  "%s: connection %zu members", path, i);
        check_stack_ref(path, stacks, json_object_get(c, "stack"), "a connection's stack");
        check_stack_ref(path, stacks, json_object_get(c, "tx_stack"), "a connection's tx_stack");
    }
    const json_t *leaks = json_object_get(r, "leaks");
    SAN_CHECK(strcmp(trigger, "exit") != 0 || json_is_array(leaks), "%s: an exit report without leaks[]", path);
    const json_t *l;
    json_array_foreach(leaks, i, l) {
        const char *kind = json_string_value(json_object_get(l, "kind"));
        SAN_CHECK(kind && strstr(" unclosed teardown held ", kind), "%s: leak %zu kind", path, i);
        SAN_CHECK(json_is_integer(json_object_get(l, "count")) && json_is_array(json_object_get(l, "connections")) &&
                      json_is_boolean(json_object_get(l, "suppressed")) && is_str_or_null(json_object_get(l, "rule")),
                  "%s: leak %zu members", path, i);
        SAN_CHECK((size_t)json_integer_value(json_object_get(l, "count")) ==
                      json_array_size(json_object_get(l, "connections")),
                  "%s: leak %zu count differs from its connections", path, i);
        check_stack_ref(path, stacks, json_object_get(l, "stack"), "a leak's stack");
        check_stack_ref(path, stacks, json_object_get(l, "tx_stack"), "a leak's tx_stack");
    }
    return r;
}
