/* A loaded object's own bindings of chosen imports pointed elsewhere: the GOT slots of its PLT
 * (JUMP_SLOT) and of its references to functions as data (GLOB_DAT), found from its dynamic section.
 * Nothing else in the process changes: other objects keep their bindings. Slots the loader made
 * read-only after relocation (RELRO, every slot of an object linked -z now) are written only when the
 * caller allows it, between two mprotect calls under one lock. Any thread; not signal-safe. */
#ifndef PQL_GOTPATCH_H
#define PQL_GOTPATCH_H

#include <link.h>
#include <stdbool.h>

/* The new value for the slots of the import name, or NULL to leave them alone. */
typedef void *(*pql_got_target_fn)(const char *name, void *arg);

/* Redirects lm's slots of the imports target names. All or nothing: -1, and nothing changed, when a slot
 * is read-only and relro is false, when it cannot be made writable, or when lm's relocations are not
 * the kind this reads (x86-64 RELA); else the number of slots changed (0: none to change). */
int pql_got_redirect(const struct link_map *lm, pql_got_target_fn target, void *arg, bool relro);

#endif
