/* Asking one running process for a live report without disturbing it (probe.c): the checks that it is
 * ours and runs the shim's reporter, the thread-directed signal, and reading the report it writes.
 * Used by `pqleak status` and `pqleak top`. Command-line process only; single-threaded. */
#ifndef CLI_PROBE_H
#define CLI_PROBE_H

#include "util.h"

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

/* A request sent and not yet answered (cli_probe_send), for asking many processes at once. */
struct cli_probe_req {
    struct cli_vec seen; /* reports there before the signal: never taken for its answer */
    size_t ignored;      /* files there not the process's */
    double timeout, deadline;
};

enum cli_probe_state {
    CLI_PROBE_PENDING, /* no report yet, time left */
    CLI_PROBE_GOT,     /* out holds the report */
    CLI_PROBE_FAILED,  /* msg says why: the process exited, a file could not be read, or the time is up */
};

/* Signals t's reporter thread without waiting. False with msg when the signal could not be sent (then r
 * holds nothing); else r must be freed with cli_probe_req_free. */
bool cli_probe_send(const struct cli_target *t, double timeout, struct cli_probe_req *r, char *msg);

/* Looks once for the answer to r, without waiting. */
enum cli_probe_state cli_probe_poll(const struct cli_target *t, struct cli_probe_req *r,
                                    struct cli_found *out, char *msg);

void cli_probe_req_free(struct cli_probe_req *r);

/* 2: a thread of pid other than the main thread is named "pqleak-sig" (the shim's reporter with its
 * signal handler); 1: one is named "pqleak" (the shim without its handler); 0: neither. Reads only
 * /proc/PID/task/ * /comm, which any user may. */
int cli_probe_shim_thread(int pid);

/* Parses and validates the report; false with msg naming the file. *root is the caller's to decref. */
bool cli_probe_check_found(const struct cli_target *t, const struct cli_found *f, json_t **root, char *msg);

/* Frees what t and f hold (either may be NULL) and closes t's pidfd. */
void cli_probe_free(struct cli_target *t, struct cli_found *f);

#endif
