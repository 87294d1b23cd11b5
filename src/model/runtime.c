/* Runtime teardown detection. CPython says so itself (_Py_IsFinalizing); a close inside a Python finalizer
 * (run by PyObject_CallFinalizerFromDealloc or PyObject_CallFinalizer: a __del__, as psycopg 3's, which
 * closes a connection nobody refers to any more, as a psycopg_pool connection checked out and dropped; a
 * dropped generator's finally block) is the runtime closing what the program forgot too, found like Perl's
 * and PHP's teardown below. For Perl and PHP the close runs inside known exported functions (perl_destruct,
 * Perl_my_exit, Perl_my_failure_exit; zend_deactivate, php_request_shutdown, php_module_shutdown): their
 * address ranges come from their symbols' sizes and the close's raw stack is checked against them.
 * Perl frees the main program's file-scoped lexicals (`my $dbh`) earlier, inside perl_run, when the main
 * program's block ends: Perl_pp_leave on the stack with the main scope alone on Perl's context stack
 * (pql_app_perl_in_main_scope), which a program's own `undef $dbh` or a nested block's end is not. Ruby's
 * exit finalizers run inside a static function called by ruby_run_node; while the program runs, ruby_run_node
 * is instead inside the script's execution, so a close whose stack passes through ruby_run_node at another
 * call site than every open did is in teardown. Walking the stack costs thousands of instructions, and it is
 * asked at every transaction's end: it is done only where a teardown can be on the stack. A Python finalizer
 * leaves marks in the thread's state (pql_app_python_may_finalize); PHP's shutdown a flag in its executor
 * (pql_app_php_may_shut_down); Perl's teardown runs in destructors (pql_app_perl_may_tear_down, which
 * also leaves an END block's own close to the program); ruby_run_node is on one thread's stack
 * only (the main one), which a per-thread flag learns from the thread's first walk. */
#define _GNU_SOURCE
#include "runtime.h"

#include "appframes.h"
#include "codemap.h"
#include "dlhook.h"
#include "proc.h"
#include "stack.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

struct range {
    uintptr_t lo, hi;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int (*py_is_finalizing)(void);
/* perl_destruct, Perl_my_exit, Perl_my_failure_exit, zend_deactivate, php_request_shutdown,
 * php_module_shutdown, then Python's last: PyObject_CallFinalizerFromDealloc, PyObject_CallFinalizer. */
static struct range teardown_fns[8];
static int nteardown, nphp, npython; /* all ranges: Perl's, then nphp of PHP's, then npython of Python's */
static struct range perl_pp_leave;   /* a block's end: the main program's, with the main scope's check */
static struct range ruby_run_node;
static _Atomic uintptr_t ruby_exec_site; /* return address in ruby_run_node seen while opening */
/* Whether ruby_run_node is on this thread's stack: 0 not known yet, 1 yes, -1 no (a thread Ruby started:
 * a worker's connects and closes walk once, not every time). */
static __thread signed char ruby_here __attribute__((tls_model("initial-exec")));

static bool function_range(const char *name, struct range *r)
{
    return pql_function_range(pql_dlsym(RTLD_DEFAULT, name), name, &r->lo, &r->hi);
}

/* names[from, to) into teardown_fns. */
static void add_ranges(const char *const *names, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        nteardown += function_range(names[i], &teardown_fns[nteardown]);
}

static void setup(void)
{
    unsigned rt = pql_runtimes_loaded();
    if (!rt)
        return;
    if (rt & (1u << PQL_RUNTIME_PYTHON))
        *(void **)&py_is_finalizing = pql_dlsym(RTLD_DEFAULT, "_Py_IsFinalizing");
    if (!py_is_finalizing && (rt & (1u << PQL_RUNTIME_PYTHON))) /* 3.13 made it public */
        *(void **)&py_is_finalizing = pql_dlsym(RTLD_DEFAULT, "Py_IsFinalizing");
    /* Perl's exit and die unwind the main program's scopes inside Perl_my_exit / Perl_my_failure_exit. */
    static const char *const names[] = {"perl_destruct",
                                        "Perl_my_exit",
                                        "Perl_my_failure_exit",
                                        "zend_deactivate",
                                        "php_request_shutdown",
                                        "php_module_shutdown",
                                        "PyObject_CallFinalizerFromDealloc",
                                        "PyObject_CallFinalizer"};
    if (rt & (1u << PQL_RUNTIME_PERL)) {
        add_ranges(names, 0, 3);
        function_range("Perl_pp_leave", &perl_pp_leave);
    }
    if (rt & (1u << PQL_RUNTIME_PHP)) {
        int before = nteardown;
        add_ranges(names, 3, 6);
        nphp = nteardown - before;
    }
    if (rt & (1u << PQL_RUNTIME_PYTHON)) {
        int before = nteardown;
        add_ranges(names, 6, 8);
        npython = nteardown - before;
    }
    if (rt & (1u << PQL_RUNTIME_RUBY))
        function_range("ruby_run_node", &ruby_run_node);
}

void pql_runtime_setup(void)
{
    pthread_once(&once, setup);
}

static bool in(const struct range *r, uintptr_t pc)
{
    /* Return addresses point after the call instruction: pc - 1 is inside the caller. */
    return pc - 1 >= r->lo && pc - 1 < r->hi;
}

/* The raw stack into frames (PQL_MAX_FRAMES); learns ruby_here from a walk that reached the stack's bottom.
 * The main thread is never marked "no": a walk stopped early by a frame without unwind information must
 * not hide its teardown for good. */
static int walk(uintptr_t *frames)
{
    int n = pql_stack_capture_raw(frames, PQL_MAX_FRAMES);
    if (ruby_run_node.lo && !ruby_here) {
        for (int i = 0; i < n; i++)
            if (in(&ruby_run_node, frames[i]))
                ruby_here = 1;
        if (!ruby_here && n > 0 && n < PQL_MAX_FRAMES && pql_tid() != pql_pid())
            ruby_here = -1;
    }
    return n;
}

void pql_runtime_saw_open(void)
{
    if (!ruby_run_node.lo || ruby_here < 0 || atomic_load_explicit(&ruby_exec_site, memory_order_relaxed))
        return;
    /* Once, and deep: a Ruby VM stack is far deeper than PQLEAK_STACK_DEPTH. */
    uintptr_t frames[PQL_MAX_FRAMES];
    int n = walk(frames);
    for (int i = 0; i < n; i++)
        if (in(&ruby_run_node, frames[i]))
            atomic_store(&ruby_exec_site, frames[i]);
}

/* Out of line: its frame (a whole stack's addresses) is set up only where a runtime is. */
static __attribute__((noinline)) bool in_teardown(void)
{
    if (py_is_finalizing && py_is_finalizing())
        return true;
    /* Which ranges can be on this stack: Perl's while a destructor runs; PHP's while its executor shuts
     * down; Python's with a finalizer's mark. */
    struct range ranges[sizeof(teardown_fns) / sizeof(*teardown_fns)];
    int nperl = nteardown - nphp - npython, nranges = 0;
    bool perl = (nperl || perl_pp_leave.lo) && pql_app_perl_may_tear_down();
    for (int j = 0; perl && j < nperl; j++)
        ranges[nranges++] = teardown_fns[j];
    if (nphp && pql_app_php_may_shut_down())
        for (int j = nperl; j < nperl + nphp; j++)
            ranges[nranges++] = teardown_fns[j];
    if (npython && pql_app_python_may_finalize())
        for (int j = nperl + nphp; j < nteardown; j++)
            ranges[nranges++] = teardown_fns[j];
    uintptr_t exec_site = atomic_load(&ruby_exec_site);
    bool ruby = exec_site && ruby_here >= 0;
    if (!nranges && !ruby && !(perl && perl_pp_leave.lo))
        return false;
    uintptr_t frames[PQL_MAX_FRAMES];
    int n = walk(frames);
    bool perl_main = false; /* asked once, when Perl_pp_leave is on the stack */
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < nranges; j++)
            if (in(&ranges[j], frames[i]))
                return true;
        /* The main program's end frees its file-scoped lexicals inside perl_run, before perl_destruct:
         * a leave with the main scope alone on Perl's context stack. */
        if (perl && perl_pp_leave.lo && !perl_main && in(&perl_pp_leave, frames[i])) {
            perl_main = true;
            if (pql_app_perl_in_main_scope())
                return true;
        }
        if (ruby && in(&ruby_run_node, frames[i]) && frames[i] != exec_site)
            return true;
    }
    return false;
}

bool pql_runtime_in_teardown(void)
{
    /* No runtime found: what a C program's every close asks, answered without a frame. */
    if (!py_is_finalizing && !nteardown && !perl_pp_leave.lo &&
        !atomic_load_explicit(&ruby_exec_site, memory_order_relaxed))
        return false;
    return in_teardown();
}
