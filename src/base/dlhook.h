/* Seeing libpq calls that bypass ordinary interposition: psycopg 3 (ctypes) looks libpq's functions up
 * with dlsym on libpq's own handle, and PHP loads pgsql.so/pdo_pgsql.so/ffi.so with RTLD_DEEPBIND. The
 * shim's dlsym answers such lookups with its own interposers; its dlopen points a RTLD_DEEPBIND module
 * that needs libpq at the interposers once loaded, and drops RTLD_DEEPBIND for PHP's FFI (whose
 * lookups would otherwise bind _exit past the shim). Both
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
/* The mode the trampoline passes on to glibc's dlopen, or PQL_DLOPEN_REDIRECT: the trampoline then
 * jumps to pql_dlopen_redirect with the caller's arguments. */
#define PQL_DLOPEN_REDIRECT (-1)
int pql_dlopen_mode(const char *file, int mode);
/* How many dlopen calls went through the trampoline (counted as each begins): code at an address an
 * unloaded object had is loaded by one of them, so a rule cached for that address before it is stale
 * (unwind.c). Any thread, signal handlers. */
unsigned pql_dlopen_count(void);
/* Loads a module that needs libpq with RTLD_DEEPBIND as asked (its own lookup scope first: libpq and
 * its TLS and Kerberos libraries bind among themselves, as the program wants), then points the module's
 * own imports of libpq's functions at the shim's interposers. Its dlopen call is the shim's: used only
 * for a path without dynamic string tokens, whose load does not depend on the caller. */
void *pql_dlopen_redirect(const char *file, int mode);

#endif
