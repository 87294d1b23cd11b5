/* Helpers shared by the sanitizer test programs (tests/sanitize): fail loudly with the reason, private
 * temporary directories, waiting for children against a deadline, and reading and validating the
 * shim's JSON reports (with jansson, so that a report the command could not read fails here too).
 * Test programs only; any thread (failures end the whole process). */
#ifndef SAN_H
#define SAN_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Ends the process with status 1 after printing where and why. */
#define SAN_CHECK(cond, ...)                                                                                 \
    do {                                                                                                   \
        if (!(cond))                                                                                       \
            san_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                              \
    } while (0)

__attribute__((noreturn, format(printf, 4, 5))) void san_fail(const char *file, int line, const char *cond,
                                                                const char *fmt, ...);

/* Unsets every PQLEAK_* variable of the caller's environment, so that each program sets only its own. */
void san_clean_env(void);
/* A new private directory under ${TMPDIR:-/tmp}; the caller frees the string. */
char *san_tmpdir(const char *tag);
/* Removes dir and everything in it (best effort). */
void san_rmtree(const char *dir);
/* "dir/name", owned by the caller. */
char *san_path(const char *dir, const char *name);

/* Waits for pid up to timeout_s seconds: returns its wait status; on timeout kills it (SIGKILL) and
 * fails, naming what, so a hang is a failure with a reason instead of a stuck test. */
int san_wait(pid_t pid, double timeout_s, const char *what);

/* Monotonic seconds. */
double san_now(void);
void san_sleep(double s);

/* Connects (conninfo, "" for the PG* variables) and fails unless the connection is OK. */
PGconn *san_connect_ok(const char *conninfo);
/* Runs sql and fails unless the result has status want. */
void san_exec(PGconn *c, const char *sql, ExecStatusType want);

/* Report files in dir whose trigger is trigger (NULL: any), optionally of one pid (0: any): their paths,
 * sorted, in a NULL-terminated array the caller frees with san_free_list. */
char **san_reports(const char *dir, const char *trigger, pid_t pid);
size_t san_count(char **list);
void san_free_list(char **list);

/* Loads a report file and checks it against the pqleak/1 schema (docs/report-schema.md): mode 0600, every
 * documented member present (unknown values null, never missing), every stack id referred to present
 * in "stacks", frames well formed. Fails with the reason; returns the document (json_decref it). */
json_t *san_load_report(const char *path);
/* The whole text of a file (NUL-terminated), or NULL when it cannot be read; caller frees. */
char *san_read_file(const char *path, size_t *len);
/* The text of dir/name, or NULL; caller frees. */
char *san_read_in(const char *dir, const char *name);
/* Fails when dir holds a temp file of the shim's writer (.pqleak-*.tmp). */
void san_no_temp_files(const char *dir);
/* An integer member of report["utilization"]. */
long san_util(const json_t *report, const char *name);

#endif
