/* Python frames in captured stacks: in a CPython process, the calling thread's Python frames (file,
 * function, line) are read straight from its interpreter frames, without the GIL (waiting for it could
 * stall: another thread may hold it while waiting on this one), the way faulthandler reads them. The
 * strings are copied at capture into a table of Python frames; a stack refers to them by tagged ids.
 * Any application thread; not signal-safe (it takes the table's lock). */
#ifndef PQL_PYFRAMES_H
#define PQL_PYFRAMES_H

#include <stdbool.h>
#include <stdint.h>

/* Stack entries with this bit set are Python frames (user-space addresses never have it). */
#define PQL_PYFRAME_TAG ((uintptr_t)1 << 63)

/* Enables Python frames when a CPython this build can read (3.11) is in the process and enabled is
 * true (PQLEAK_PYTHON=auto); registers the fork handler (the table's lock is reset in a child).
 * Idempotent. */
void pql_py_setup(bool enabled);

/* Merges Python frames into a raw C stack: C frames up to the interpreter's, then the thread's Python
 * frames, innermost first (the interpreter's own frames say nothing to a Python developer). Returns the
 * new number of entries (at most max); frames unchanged when no Python frames apply. */
int pql_py_merge(uintptr_t *frames, int n, int max);

/* The strings of a Python frame entry; false for an unknown id. Pointers live as long as the process. */
bool pql_py_frame(uintptr_t entry, const char **function, const char **file, int *line);

#endif
