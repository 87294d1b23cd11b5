/* Whose code a symbolized frame is: the program's own, libpq's, the system's (libc, ld.so, the shim),
 * a language interpreter's, or interpreted code installed as a library. The one list the shim (a
 * report's "opened at" site) and the command (folding, sites, baseline rules) classify with. Pure
 * functions of their arguments: any thread, and signal handlers. */
#ifndef PQL_FRAMES_H
#define PQL_FRAMES_H

#include <stdbool.h>
#include <stddef.h>

enum pql_frame_kind {
    PQL_FRAME_APP,     /* the program's own code: its native frames (and other native libraries, C
                        * extension modules included), or its interpreted source files */
    PQL_FRAME_LIBPQ,   /* libpq */
    PQL_FRAME_SYSTEM,  /* libc, ld.so, libpthread, libdl, libunwind, the shim itself; also a native frame
                        * of no known module with no name (nothing to show) */
    PQL_FRAME_RUNTIME, /* a language interpreter: libpython/python, libperl/perl, libruby/ruby, libphp/php */
    PQL_FRAME_LIBRARY, /* code installed as a library: interpreted code under site-packages,
                        * dist-packages, a language's standard library (.../lib/pythonX.Y/) or the
                        * system's package directories (/usr/share/perl5, /usr/lib/ruby, /var/lib/gems,
                        * /usr/share/php, ...), frozen modules ("<frozen ...>"), an interpreted frame
                        * without a file (it cannot be told); native shared objects installed in the
                        * system's library directories (/usr/lib, /lib: libffi, libpqxx, drivers such
                        * as DBD::Pg's Pg.so, psycopg2's _psycopg); native code inlined into the
                        * program from installed headers (/usr/include, /usr/local/include: libpqxx's
                        * templates, libstdc++) */
};

/* Classifies a frame as the reports carry it; any argument may be NULL (unknown). lang is "c" (or
 * NULL) for a native frame, classified by its module's file name; any other lang ("python") is an
 * interpreted frame, classified by its source file: it is APP or LIBRARY, never the others. */
enum pql_frame_kind pql_frame_classify(const char *function, const char *file, const char *module,
                                       const char *lang);

/* The program's own code. */
static inline bool pql_frame_is_app(const char *function, const char *file, const char *module,
                                    const char *lang)
{
    return pql_frame_classify(function, file, module, lang) == PQL_FRAME_APP;
}

/* libpq, the system or an interpreter: native code that is not the program's, folded in summaries and
 * never named by a baseline rule. */
static inline bool pql_frame_kind_is_runtime(enum pql_frame_kind k)
{
    return k == PQL_FRAME_LIBPQ || k == PQL_FRAME_SYSTEM || k == PQL_FRAME_RUNTIME;
}

/* True for a module (a path, or its file name) of the shim's own capture machinery: libpqleak itself
 * and libunwind, which it captures stacks with. Such frames open every stack the shim records. */
bool pql_module_is_shim(const char *module);

/* A frame as both sides hold it, for the rules about whole stacks. */
struct pql_frame_ref {
    const char *function, *file, *module, *lang;
};

/* The frame a report names as the place to fix (its headline), innermost first. In a stack with
 * interpreted frames only those are candidates (an extension module's or a driver's C frames say
 * nothing to a Python, Perl, Ruby or PHP developer); else the native ones. The innermost frame of the
 * program's own code (*own true); without one, the innermost library frame (*own false: the caller may
 * prefer another stack, "last used at"). -1 when every candidate is libpq's, the system's or an
 * interpreter's. own may be NULL. */
int pql_frame_headline(const struct pql_frame_ref *f, size_t n, bool *own);

/* True for an interpreted frame of a test runner's own machinery: pytest (its _pytest and pytest
 * packages, pluggy, and its launcher scripts: a file named pytest, pytest-3, py.test... in a bin
 * directory), unittest (the standard library's unittest/), nose2. Such frames are never the place to
 * fix: the command folds them even when a launcher script would otherwise count as the program's own
 * source. file may be NULL (false). */
bool pql_frame_is_test_runner(const char *file);

/* A short name for the code a frame belongs to, for "... N frames in NAME" lines: the module's file
 * name, the package of an installed interpreted module ("sqlalchemy", "six" for six.py), "pythonX.Y"
 * for a standard library, "frozen modules", else the source file's name, else lang, else "?". Points
 * into module or file, into buf (len bytes), or to a constant. */
const char *pql_frame_origin(const char *file, const char *module, const char *lang, char *buf, size_t len);

#endif
