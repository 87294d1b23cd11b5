/* Asking one running process for a live report without disturbing it (probe.c): the checks that it is
 * ours and runs the shim's reporter, the thread-directed signal, and reading the report it writes.
 * Used by `pqleak status` and `pqleak top`. Command-line process only; single-threaded. */
#ifndef CLI_PROBE_H
#define CLI_PROBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What a message buffer of the checks holds; one line. */
#define CLI_PROBE_WHY_MAX 1200

/* A process to be asked; zero it and set pidfd to -1 before cli_probe_target. */
struct cli_target {
    int pid;
    uid_t uid, euid; /* real (names its private directory) and effective, from /proc/PID/status */
    int pidfd;       /* pins the process, so a reused pid is never signalled; -1 when unavailable */
    char *env;       /* /proc/PID/environ, NUL-separated, NUL-terminated */
    size_t envlen;
    int sig;                  /* from the advertisement */
    int tid;                  /* the reporter thread, from the advertisement */
    unsigned long long token; /* from the advertisement, sent back as the signal's value */
    char *dir;                /* where it writes live reports */
    bool private_dir;
};

/* A live report read. */
struct cli_found {
    char *path; /* the report file, owned */
    char *data; /* its bytes, NUL-terminated, owned */
    size_t len;
};

/* Fills t for process pid from /proc and checks that it is a process of ours (or we are root) running
 * the shim's reporter, and where it writes live reports. False with msg (CLI_PROBE_WHY_MAX bytes) saying
 * why not. */
bool cli_probe_target(struct cli_target *t, int pid, char *msg);

/* Signals t's reporter thread and waits up to timeout seconds for the live report it asks for. False
 * with msg saying why none came. */
bool cli_probe_ask(const struct cli_target *t, double timeout, struct cli_found *out, char *msg);

/* Parses and validates the report; false with msg naming the file. *root is the caller's to decref. */
bool cli_probe_check_found(const struct cli_target *t, const struct cli_found *f, json_t **root, char *msg);

/* Frees what t and f hold (either may be NULL) and closes t's pidfd. */
void cli_probe_free(struct cli_target *t, struct cli_found *f);

#endif
