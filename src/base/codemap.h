/* Where loaded code lives: the executable segment of the object that contains an address. Used to
 * drop the shim's own frames from stacks and to find an interpreter's code. Any thread; not
 * signal-safe (dl_iterate_phdr takes the loader's lock). */
#ifndef PQL_CODEMAP_H
#define PQL_CODEMAP_H

#include <stdbool.h>
#include <stdint.h>

/* The executable segment of the loaded object that contains addr; false when none does. */
bool pql_code_range(uintptr_t addr, uintptr_t *lo, uintptr_t *hi);

#endif
