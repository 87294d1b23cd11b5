/* Language runtimes in the host process (CPython, Perl, PHP, Ruby): whether a PQfinish happens inside
 * the runtime's own teardown (it closes connections the program forgot), found without linking any
 * of them: symbols are looked up at run time. Application threads; not signal-safe. */
#ifndef PQL_RUNTIME_H
#define PQL_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

/* Looks the runtimes up once (at the first connection). Idempotent. */
void pql_runtime_setup(void);

/* Called with every open stack: Ruby's teardown is recognised by comparing where ruby_run_node is
 * at that moment with where it is at a close. Cheap when no Ruby is loaded. */
void pql_runtime_saw_open(void);

/* True when the calling thread is inside a runtime's teardown: Python finalization, perl_destruct,
 * PHP's request or module shutdown, Ruby's exit finalizers; or inside a Python finalizer (__del__) of
 * an object the program dropped. */
bool pql_runtime_in_teardown(void);

#endif
