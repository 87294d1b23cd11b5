/* Lifecycle: start-up at the first connection (settings, then every module's setup in lock order), the
 * exit report from the ELF destructor (which runs after every atexit handler, so connections the
 * program closes in its own handlers are not reported) or from the interposed _exit. Any thread; not
 * signal-safe. */
#define _GNU_SOURCE
#include "shim.h"

#include "checkout.h"
#include "live.h"
#include "log.h"
#include "proc.h"
#include "pyframes.h"
#include "query.h"
#include "real.h"
#include "registry.h"
#include "report.h"
#include "rules.h"
#include "reporter.h"
#include "runtime.h"
#include "stack.h"
#include "symbolize.h"
#include "track.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
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
 *   registry.c  lock                 3    live pool                  HELD: taken before fork, so the
 *                                                                    child's records are consistent
 *   stack.c     depot_lock           4    -                          HELD (the child's stacks resolve)
 *   live.c      pool_lock            5    -                          reset; the fork generation advances
 *   pyframes.c  lock                 5    -                          reset
 *   track.c     refusals_lock        5    -                          reset
 *   reporter.c  start_lock           5    log                        reset; the thread (and its
 *                                                                    advertisement) stay the parent's
 *   real.c      resolve_lock         5    (the loader's)             reset
 *   log.c       log_lock             6    -                          reset; a %p file is reopened
 *
 * A "reset" lock may have been held by a parent thread that does not exist in the child; the child
 * re-initialises it and forgets or keeps the data as said. The two HELD locks are never held for long
 * (a hash lookup), so fork never waits on pqleak's reports.
 */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
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

static const char *env(const char *name)
{
    return getenv(name);
}

static void fork_child(void)
{
    atomic_store(&exit_done, false);
}

static void init(void)
{
    /* setuid and the like: stay inert, read no variable. */
    if (getauxval(AT_SECURE))
        return;
    pql_settings_load(&settings, env, warn_early);
    pql_log_setup(settings.log);
    for (int i = 0; i < nearly; i++)
        pql_log("%s", early[i]);
    if (settings.disable)
        return;
    /* Setups in lock order (see above): stack before registry, so that fork takes the registry lock
     * first; every other module only resets its lock in the child. */
    pql_proc_setup();
    pql_real_setup();
    pql_live_setup();
    bool unwind = pql_stack_setup();
    pql_registry_setup();
    pql_sym_setup();
    pql_runtime_setup();
    pql_py_setup(settings.python);
    if (!unwind)
        pql_log("libunwind.so.8 cannot be loaded; connections are tracked without stacks");
    /* A malformed file is refused whole (as pqleak refuses it): leaks stay unsuppressed, a gate fails
     * closed. */
    struct pql_rules_error err;
    if (*settings.suppressions && !pql_rules_load(&rules, settings.suppressions, &err))
        pql_log("PQLEAK_SUPPRESSIONS: %s; using no suppressions", err.msg);
    pql_track_setup(&settings);
    pthread_atfork(NULL, NULL, fork_child);
    active = true;
    pql_query_setup(&settings);
}

bool pql_shim_active(void)
{
    pthread_once(&init_once, init);
    return active;
}

const struct pql_settings *pql_shim_settings(void)
{
    return &settings;
}

int pql_shim_exit_report(void)
{
    if (!active || atomic_exchange(&exit_done, true))
        return -1;
    struct pql_report_result r = pql_report_exit(&settings, &rules);
    pql_reporter_exit(r.leaked);
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

void pql_shim_exit(int status)
{
    int code = pql_shim_exit_report();
    real_exit(code >= 0 ? code : status);
}
