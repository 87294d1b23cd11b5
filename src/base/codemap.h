/* Where loaded code lives: the executable segment of the object that contains an address, and the
 * extent of an exported function. Used to drop the shim's own frames from stacks, to find an
 * interpreter's code and the runtimes' teardown functions. Any thread; not signal-safe
 * (dl_iterate_phdr takes the loader's lock). */
#ifndef PQL_CODEMAP_H
#define PQL_CODEMAP_H

#include <link.h>
#include <stdbool.h>
#include <stdint.h>

/* The executable segment of the loaded object that contains addr; false when none does. */
bool pql_code_range(uintptr_t addr, uintptr_t *lo, uintptr_t *hi);

/* The extent [lo, hi) of the function name, an exported symbol that resolved to fn (from dlsym): its
 * size is read from the symbol in its object's GNU hash table, a handful of compares, where dladdr1
 * scans every symbol of the object (~76k instructions in PHP's binary); dladdr1 only for an object
 * without a GNU hash table. False when fn is not name's definition (another function, or an IFUNC's
 * implementation) or its size is unknown. */
bool pql_function_range(const void *fn, const char *name, uintptr_t *lo, uintptr_t *hi);

/* A pointer of lm's dynamic section (a d_ptr) as an address: the loader relocates them in place, except
 * in an object whose dynamic section is read-only (such as the vDSO), where they are still offsets from
 * the load address. */
uintptr_t pql_dyn_ptr(const struct link_map *lm, ElfW(Addr) p);

/* The function name as the loaded object that contains in_object defines it (its GNU hash table, not
 * the process's lookup scope); NULL when that object defines no such function. */
void *pql_object_function(const void *in_object, const char *name);

#endif
