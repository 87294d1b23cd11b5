/* Application frames in captured stacks: in a Python, Perl, Ruby or PHP process, the calling thread's
 * interpreted frames (file, function, line) are read straight from the interpreter's own structures,
 * without its lock (waiting for it could stall: another thread may hold it while waiting on this one)
 * and without calling into it, the way faulthandler reads Python's. One reader per runtime
 * (pyframes.c, plframes.c, rbframes.c, phpframes.c), each inert unless its runtime is in the process.
 * The strings are copied at capture into one table of frames, interned per call site; a stack refers
 * to them by tagged ids. Any application thread; not signal-safe (it takes the table's lock). */
#ifndef PQL_APPFRAMES_H
#define PQL_APPFRAMES_H

#include <stdbool.h>
#include <stdint.h>

/* Stack entries with this bit set are application frames (user-space addresses never have it). */
#define PQL_APPFRAME_TAG ((uintptr_t)1 << 63)

/* The runtimes loaded, as bits of 1 << PQL_RUNTIME_*: one dlsym of one symbol each, once. A process
 * without any pays for four failed lookups, not for every symbol the readers and teardown checks use. */
enum { PQL_RUNTIME_PYTHON, PQL_RUNTIME_PERL, PQL_RUNTIME_RUBY, PQL_RUNTIME_PHP };
unsigned pql_runtimes_loaded(void);

/* Enables each runtime's reader whose runtime (of a version this build can read) is in the process;
 * python false disables Python's (PQLEAK_PYTHON=off). Registers the fork handler (the table's lock
 * is reset in a child). Idempotent. */
void pql_app_setup(bool python);

/* Whether a runtime's reader may merge frames (after pql_app_setup; false before): where none does, a
 * capture needs the whole C stack. */
bool pql_app_readers_on(void);

/* Merges application frames into a raw C stack: C frames up to the interpreter's, then the thread's
 * interpreted frames, innermost first (the interpreter's own C frames say nothing to a script's
 * developer). Returns the new number of entries (at most max); frames unchanged when none apply. */
int pql_app_merge(uintptr_t *frames, int n, int max);

/* False only when the calling thread is certainly not inside a Python finalizer (a dropped object's
 * __del__, a dropped generator's): read from the thread's state, no stack walk. True when it may be, or when
 * this build cannot read that Python's state. Needs pql_app_setup; for a process running Python. */
bool pql_app_python_may_finalize(void);

/* True when the calling thread's Perl interpreter is running the main program's own scope, outside
 * every sub, eval, loop or block, apart from destructors (DESTROY) called from there: read from the
 * interpreter's context stacks, no stack walk. Together with Perl_pp_leave on the C stack, it tells the
 * end of the main program, where Perl frees its file-scoped lexicals (a `my $dbh` never disconnected),
 * from a program's own `undef $dbh`. False when this build cannot read that Perl's state. Needs
 * pql_app_setup. */
bool pql_app_perl_in_main_scope(void);

/* False only when the calling thread's Perl interpreter certainly runs no destructor (no DESTROY stack
 * on its context stacks): Perl's teardown closes all run in one (global destruction, the scopes exit or
 * die unwinds, the main program's end), and a close outside any (the program's own, an END block's
 * included) is the program's. True when it may, or when this build cannot read that Perl's state.
 * Needs pql_app_setup; for a process running Perl. */
bool pql_app_perl_may_tear_down(void);

/* False only when PHP's executor is certainly not shutting down (EG(flags) without
 * EG_FLAGS_IN_SHUTDOWN, which php_request_shutdown sets first): its request and module shutdown cannot
 * be on the stack. True when it may be, or when this build cannot read that PHP's state. Needs
 * pql_app_setup; for a process running PHP. */
bool pql_app_php_may_shut_down(void);

/* The language ("python", "perl", "ruby", "php") and strings of an application frame entry; false for
 * an unknown id. Pointers live as long as the process. */
bool pql_app_frame(uintptr_t entry, const char **lang, const char **function, const char **file, int *line);

#endif
