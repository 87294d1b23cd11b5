/* Where loaded code lives: the executable segment of the object that contains an address, the extent
 * of an exported function, and the functions an object defines. Used to drop the shim's own frames from
 * stacks, to find an interpreter's code and the runtimes' teardown functions, and to point a module's
 * libpq imports at the shim's interposers. Any thread; not signal-safe (dl_iterate_phdr takes the
 * loader's lock). */
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

/* A loaded object's dynamic symbols, found once for many lookups. */
struct pql_symbols {
    const struct link_map *lm;
    const uint32_t *gnu_hash;
    const ElfW(Sym) * symtab;
    const char *strtab;
};

/* Fills *t from lm's dynamic section: false when lm has no GNU hash table (*t then serves no lookup). */
bool pql_symbols_of(const struct link_map *lm, struct pql_symbols *t);

/* The function name as that object defines it (its GNU hash table, not the process's lookup scope);
 * NULL when it defines no such function. t from pql_symbols_of, which gave true. */
void *pql_symbols_function(const struct pql_symbols *t, const char *name);

#endif
