/* Lifecycle: start-up at the first connection (settings, then every module's setup in lock order), the
 * exit report from the ELF destructor (which runs after every atexit handler, so connections the
 * program closes in its own handlers are not reported) or from the interposed _exit. Any thread. Only
 * pql_shim_exit may run in a signal handler: it finds out that it does, and then does only
 * async-signal-safe work (see there). */
#define _GNU_SOURCE
#include "shim.h"

#include "checkout.h"
#include "live.h"
#include "log.h"
#include "misuse.h"
#include "names.h"
#include "outfile.h"
#include "proc.h"
#include "appframes.h"
#include "query.h"
#include "real.h"
#include "registry.h"
#include "report.h"
#include "rules.h"
#include "reporter.h"
#include "runtime.h"
#include "stack.h"
#include "symbolize.h"
#include "target.h"
#include "text.h"
#include "track.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Locks, in the order they may be taken (a lock is only ever taken while holding locks above it), and
 * what happens to each across fork(). Each module registers its own fork handlers in its setup; the
 * setups below run in an order that makes the prepare handlers (run by fork in reverse order of
 * registration) take the held-across-fork locks in this order too.
 *
 *   lock                            rank  nested inside it           across fork
 *   checkout.c  mu                   1    log                        reset in the child; slots, holders
 *                                                                    and waiters forgotten
 *   symbolize.c shared_lock          2    depot, pyframes, log       reset in the child
 *   registry.c  lock                 3    live blocks                HELD: taken before fork, so the
 *                                                                    child's records are consistent
 *   stack.c     depot_lock           4    -                          HELD (the child's stacks resolve)
 *   live.c      pool_lock            5    -                          reset; the fork generation advances
 *   misuse.c    lock                 5    -                          reset; the parent's events stay its own
 *   pyframes.c  lock                 5    -                          reset
 *   track.c     refusals_lock        5    -                          reset
 *   reporter.c  start_lock           5    log                        reset; the thread (and its
 *                                                                    advertisement) stay the parent's
 *   real.c      resolve_lock         5    (the loader's)             reset
 *   target.c    store_lock           5    -                          reset; the interned targets stay
 *   metrics.c   file_lock            5    log                        reset; the file stays the writer's
 *   log.c       log_lock             6    -                          reset; a %p file is reopened
 *
 * A "reset" lock may have been held by a parent thread that does not exist in the child; the child
 * re-initialises it and forgets or keeps the data as said. The two HELD locks are never held for long
 * (a hash lookup), so fork never waits on pqleak's reports.
 */

static struct pql_once init_once = PQL_ONCE_INIT;
static bool active;
static struct pql_settings settings;
static struct pql_rules rules;
static atomic_bool exit_done;

/* Warnings about the settings wait until the log's destination (itself a setting) is known. */
static char early[8][600];
static int nearly;

static void warn_early(const char *line)
{
    if (nearly < (int)(sizeof(early) / sizeof(early[0])))
        snprintf(early[nearly++], sizeof(early[0]), "%s", line);
}

/* The settings' getenv: one pass over the environment for all of them (config.h), taken by init. */
static const struct pql_env_view *env_view;

static const char *env(const char *name)
{
    return env_view ? pql_env_view_get(env_view, name) : getenv(name);
}

/* ---- the run channel (names.h: pql_run_socket_name) ----
 * Under `pqleak run`, a process that connected and then cannot leave its exit report says so on the
 * run's socket, and the run fails closed. The socket is connected at start-up, while descriptors are
 * there to have, so that running out of them later does not silence it; before each use it is checked
 * to still be ours (the host may have closed or reused the number), else a fresh one is made. */
static int run_fd = -1;
static dev_t run_dev;
static ino_t run_ino;
static struct sockaddr_un run_addr;
static socklen_t run_addrlen;

static void run_channel_open(const char *dir)
{
    run_addr.sun_family = AF_UNIX;
    int len = pql_run_socket_name(run_addr.sun_path + 1, sizeof(run_addr.sun_path) - 1, dir);
    run_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    struct stat st;
    if (connect(fd, (struct sockaddr *)&run_addr, run_addrlen) != 0 || fstat(fd, &st) != 0) {
        close(fd); /* not under pqleak run */
        run_addrlen = 0;
        return;
    }
    run_dev = st.st_dev;
    run_ino = st.st_ino;
    run_fd = fd;
    /* The run's directory lives as long as the run: never make it again after the run removed it. */
    pql_outfile_never_create_dirs();
}

/* Sends "F PID why" to the run, if there is one. Async-signal-safe. */
static void run_notify(const char *why)
{
    if (!run_addrlen)
        return;
    char msg[512];
    int len = pql_run_message(msg, sizeof(msg), (int)syscall(SYS_getpid), why);
    if (len < 0)
        return;
    size_t o = (size_t)len;
    struct stat st;
    int fd = run_fd;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == run_dev && st.st_ino == run_ino) {
        ssize_t n = send(fd, msg, o, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)n;
        return;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        ssize_t n =
            sendto(fd, msg, o, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&run_addr, run_addrlen);
        (void)n;
        close(fd);
    }
}

/* A process whose pid is not the cached one is a vfork child (or a clone made without fork's
 * handlers, which re-cache the pid in a fork child): it shares the parent's memory or holds a copy
 * of records that are not its own. It must not report, nor change its status or any shared state.
 * Signal-safe. */
static bool foreign_process(void)
{
    return (pid_t)syscall(SYS_getpid) != pql_pid();
}

static void fork_child(void)
{
    atomic_store(&exit_done, false);
    pql_pid(); /* proc.c forgot the parent's pid (its handler runs first); cache ours before a vfork can */
}

static void init(void)
{
    /* setuid and the like: stay inert, read no variable. */
    if (getauxval(AT_SECURE))
        return;
    struct pql_env_view view;
    pql_env_view_take(&view, environ);
    env_view = &view;
    pql_settings_load(&settings, env, warn_early);
    env_view = NULL;
    pql_log_setup(settings.log);
    for (int i = 0; i < nearly; i++)
        pql_log("%s", early[i]);
    if (settings.disable) {
        pql_query_setup(&settings); /* query calls then go straight to libpq, as nested ones do */
        return;
    }
    /* Setups in lock order (see above): stack before registry, so that fork takes the registry lock
     * first; every other module only resets its lock in the child. */
    pql_proc_setup();
    pql_pid(); /* cached now, so that a vfork child, which shares it, is told apart (foreign_process) */
    pql_real_setup();
    pql_target_setup();
    pql_live_setup();
    pql_stack_setup();
    pql_registry_setup();
    pql_misuse_setup();
    pql_sym_setup();
    pql_runtime_setup();
    pql_app_setup(settings.python);
    /* A malformed file is refused whole (as pqleak refuses it): leaks stay unsuppressed, a gate fails
     * closed. */
    struct pql_rules_error err;
    if (*settings.suppressions && !pql_rules_load(&rules, settings.suppressions, &err))
        pql_log("PQLEAK_SUPPRESSIONS: %s; using no suppressions", err.msg);
    pql_text_setup(&settings);
    pql_track_setup(&settings);
    if (*settings.report_dir)
        run_channel_open(settings.report_dir);
    pthread_atfork(NULL, NULL, fork_child);
    active = true;
    pql_query_setup(&settings);
}

bool pql_shim_active(void)
{
    pql_once(&init_once, init);
    return active;
}

const struct pql_settings *pql_shim_settings(void)
{
    return &settings;
}

/* How long the exit path lets a report file another thread is writing finish before it removes it. */
#define EXIT_WRITE_WAIT_S 2.0

int pql_shim_exit_report(void)
{
    if (!active || foreign_process() || atomic_exchange(&exit_done, true))
        return -1;
    struct pql_report_result r = pql_report_exit(&settings, &rules);
    pql_reporter_exit();
    /* A live report the reporter thread is writing now would be cut off by the end of the process. */
    pql_outfile_close_all(EXIT_WRITE_WAIT_S);
    if (r.json_errno) {
        char why[256];
        snprintf(why, sizeof(why), "cannot write its exit report: %s", strerror(r.json_errno));
        run_notify(why);
    }
    return r.leaked > 0 && settings.exitcode > 0 ? settings.exitcode : -1;
}

__attribute__((noreturn)) static void real_exit(int status)
{
    void (*fn)(int) = (void (*)(int))pql_real_libc("_exit");
    if (fn)
        fn(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

__attribute__((destructor)) static void at_exit(void)
{
    int code = pql_shim_exit_report();
    if (code >= 0) {
        /* exit() flushes stdio after the destructors; leaving early must not lose the program's output. */
        fflush(NULL);
        real_exit(code);
    }
}

/*
 * _exit and _Exit. The exit report allocates and takes pqleak's locks; in a signal handler the code it
 * interrupted may hold the same locks (malloc's, the registry's), and the report would wait forever. So
 * when _exit is called inside a signal handler (a signal trampoline is on the calling thread's stack:
 * pql_stack_in_signal_handler), it does only async-signal-safe work: one fixed line to the log, and
 * under `pqleak run` an "F" message so that the run fails closed; then it exits with the program's own
 * status. Otherwise (Python's os._exit, a plain _exit), the full report. A vfork child never reports.
 */
void pql_shim_exit(int status)
{
    if (active && !foreign_process() && !atomic_load(&exit_done) && pql_stack_in_signal_handler() == 1) {
        static const char line[] = "pqleak: _exit was called in a signal handler: no exit report (making one "
                                   "there could deadlock the process); the exit status is the program's\n";
        if (!atomic_exchange(&exit_done, true)) {
            pql_log_write_signal_safe(line, sizeof(line) - 1);
            run_notify("called _exit in a signal handler: no exit report");
            pql_outfile_close_all(EXIT_WRITE_WAIT_S);
        }
        real_exit(status);
    }
    int code = pql_shim_exit_report();
    real_exit(code >= 0 ? code : status);
}
