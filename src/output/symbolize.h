/* Turns raw return addresses into function, source file, line, module and offset, at report time only
 * (never on the connect path). Uses libdw, loaded privately on first use; without it falls back to
 * dladdr (exported names only). An address in inlined code gives one frame per inlined function, as
 * addr2line -i does; C++ names are demangled when the process has libstdc++. A session caches by
 * address. One thread at a time per session. */
#ifndef PQL_SYMBOLIZE_H
#define PQL_SYMBOLIZE_H

#include <stdint.h>

struct pql_frame {
    uintptr_t pc;
    const char *function; /* NULL when unknown */
    const char *file;     /* NULL when no debug info */
    int line;             /* 0 when unknown */
    const char *module;   /* path of the object, or NULL */
    uintptr_t offset;     /* pc relative to the module's load address */
    const char *lang;     /* "c" for a native frame; "python", "perl", "ruby" or "php" for a script frame */
};

struct pql_symbolizer;

/* Starts a session. Returns NULL only when out of memory. */
struct pql_symbolizer *pql_sym_open(void);

/* The frames for return address pc, innermost first: each function inlined at the call (its name; file
 * and line where the call is in it), then the function that contains the code (its symbol's name; file
 * and line of the call to the outermost inlined function, or of the call itself when nothing is
 * inlined). All carry pc, module and offset. Stores at most max pointers in out, owned by the session
 * and valid until pql_sym_close; returns how many: at least 1 while memory lasts (0 when out). */
int pql_sym_frames(struct pql_symbolizer *s, uintptr_t pc, const struct pql_frame **out, int max);

/* The last of pql_sym_frames: the function containing pc. Owned by the session, valid until
 * pql_sym_close. Never NULL while memory lasts. */
const struct pql_frame *pql_sym_frame(struct pql_symbolizer *s, uintptr_t pc);

void pql_sym_close(struct pql_symbolizer *s);

/* The process's shared session, locked until pql_sym_release: reports use it so that modules
 * unloaded before exit (PHP dlcloses its extensions at shutdown) stay known once seen. NULL only when
 * out of memory (nothing to release then). */
struct pql_symbolizer *pql_sym_acquire(void);
void pql_sym_release(struct pql_symbolizer *s);

/* Makes the shared session learn the modules loaded now (called when a runtime's teardown closes a
 * connection: its modules may be unloaded before the exit report). */
void pql_sym_note_modules(void);

/* Registers the fork handler: the shared session's lock is reset in a child (a parent thread may have
 * held it). */
void pql_sym_setup(void);

#endif
