/* Lifecycle: settings and fork handlers at the first connection, the exit report from the ELF
 * destructor (which runs after every atexit handler, so connections the program closes in its own
 * handlers are not reported) or from the interposed _exit. */
#define _GNU_SOURCE
#include "shim.h"

#include "checkout.h"
#include "live.h"
#include "log.h"
#include "real.h"
#include "registry.h"
#include "report.h"
#include "reporter.h"
#include "pyframes.h"
#include "runtime.h"
#include "stack.h"
#include "suppress.h"
#include "track.h"
#include "symbolize.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool active;
static struct pql_settings settings;
static struct pql_rules rules;
static atomic_bool exit_done;

static void warn_line(const char *line)
{
    pql_log("%s", line);
}

static const char *env(const char *name)
{
    return getenv(name);
}

static void fork_prepare(void)
{
    pql_registry_fork_prepare();
    pql_stack_fork_prepare();
}

static void fork_parent(void)
{
    pql_stack_fork_parent();
    pql_registry_fork_parent();
}

static void fork_child(void)
{
    pql_stack_fork_child();
    pql_registry_fork_child();
    pql_checkout_fork_child();
    pql_live_fork_child();
    pql_reporter_fork_child();
    pql_sym_fork_child();
    pql_track_fork_child();
    pql_py_fork_child();
    pql_real_after_fork();
    pql_log_after_fork();
    atomic_store(&exit_done, false);
}

static void init(void)
{
    /* setuid and the like: stay inert, read no variable. */
    if (getauxval(AT_SECURE))
        return;
    /* The log destination first, so that warnings about the other settings reach it. */
    pql_log_setup(getenv("PQLEAK_LOG"));
    pql_settings_load(&settings, env, warn_line);
    if (settings.disable)
        return;
    pql_runtime_setup();
    pql_py_setup(settings.python);
    if (!pql_stack_setup())
        pql_log("libunwind.so.8 cannot be loaded; connections are tracked without stacks");
    if (*settings.suppressions)
        pql_rules_load(&rules, settings.suppressions, warn_line);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    active = true;
    atomic_store(&pql_live_on, true);
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
