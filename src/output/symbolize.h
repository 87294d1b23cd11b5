/* Turns raw return addresses into function, source file, line, module and offset, at report time only
 * (never on the connect path). Uses libdw, loaded privately on first use; without it falls back to
 * dladdr (exported names only). A session caches by address. One thread at a time per session. */
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
    const char *lang;     /* "c" or "python" */
};

struct pql_symbolizer;

/* Starts a session. Returns NULL only when out of memory. */
struct pql_symbolizer *pql_sym_open(void);

/* The frame for return address pc; owned by the session, valid until pql_sym_close. Never NULL while
 * memory lasts. */
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
