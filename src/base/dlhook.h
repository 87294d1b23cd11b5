/* Seeing libpq calls that bypass ordinary interposition: psycopg 3 (ctypes) looks libpq's functions up
 * with dlsym on libpq's own handle, and PHP loads pgsql.so/pdo_pgsql.so/ffi.so with RTLD_DEEPBIND. The
 * shim's dlsym answers such lookups with its own interposers, and its dlopen drops RTLD_DEEPBIND for
 * modules that need libpq and for PHP's FFI (whose lookups would otherwise bind _exit past the shim). Both
 * are tail-jumping trampolines (dlhook_x86_64.S) so that glibc still sees the real caller: dlsym(RTLD_NEXT)
 * and dlopen's search path depend on it. PQLEAK_HOOK_DLSYM=0 turns it off. */
#ifndef PQL_DLHOOK_H
#define PQL_DLHOOK_H

#include <stdbool.h>

/* The real dlsym, for the shim's own lookups (never answered by the hook). */
void *pql_dlsym(void *handle, const char *name);

/* Behind the trampolines: */
void pql_dlhook_resolve(void);
void *pql_dlsym_handle(void *handle, const char *name);
int pql_dlopen_mode(const char *file, int mode);

#endif
