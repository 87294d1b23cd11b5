/* Finds the loaded libpq and its functions. First pql_dlsym(RTLD_NEXT), which works when libpq is in the
 * global scope; otherwise the loaded object whose file name starts with "libpq.so" (never the shim:
 * "libpqleak.so" also contains "libpq"). Each function is looked up at its first call (a stub in its
 * place until then), so that a process pays only for the ones it uses. Called from interposers on any
 * thread; not signal-safe. */
#define _GNU_SOURCE
#include "real.h"

#include <dlfcn.h>

#include "dlhook.h"
#include "path.h"
#include "proc.h"
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct pql_real pql_real;

static pthread_mutex_t resolve_lock = PTHREAD_MUTEX_INITIALIZER;
atomic_bool pql_real_resolved;

static int find_libpq(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (strncmp(pql_base_name(info->dlpi_name), "libpq.so", 8) != 0)
        return 0;
    *(const char **)data = info->dlpi_name;
    return 1;
}

/* Whether the main program (the first object listed) has a DT_NEEDED entry named *data: 1, else -1. */
static int main_needs(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    uintptr_t strtab = 0;
    for (const ElfW(Dyn) *d = dyn; d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_STRTAB)
            strtab = d->d_un.d_ptr;
    if (!strtab)
        return -1;
    if (strtab < info->dlpi_addr) /* not relocated in place (a read-only dynamic section) */
        strtab += info->dlpi_addr;
    for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_NEEDED &&
            !strcmp(pql_base_name((const char *)strtab + d->d_un.d_val), *(const char **)data))
            return 1;
    return -1;
}

/* A handle to the loaded libpq, or NULL. Found through RTLD_NEXT, libpq is in the global scope; when
 * the main program needs it, it was loaded at start-up and is never unloaded, so RTLD_NEXT serves as
 * the handle (dlopen of an object loaded as a dependency builds its whole dependency list, ~110k
 * instructions). Otherwise dlopen with RTLD_NOLOAD takes a reference, so that a dlclose of the
 * program's does not unload it under us. */
static void *libpq_handle(void)
{
    void *sym = pql_dlsym(RTLD_NEXT, "PQconnectdb");
    Dl_info info;
    if (sym && dladdr(sym, &info) && info.dli_fname) {
        const char *name = pql_base_name(info.dli_fname);
        if (dl_iterate_phdr(main_needs, &name) == 1)
            return RTLD_NEXT;
        return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    }
    const char *name = NULL;
    dl_iterate_phdr(find_libpq, &name);
    return name ? dlopen(name, RTLD_LAZY | RTLD_NOLOAD) : NULL;
}

static void *libpq; /* the handle the stubs look functions up in; set before pql_real_resolved */

/* A member's first call: the function looked up, put in the member's place (every later call goes
 * straight to it) and called. Two threads may both look it up; they store the same pointer. A function
 * the loaded libpq lacks returns its type's zero (none of these is newer than PostgreSQL 9.1, so no
 * supported libpq lacks one; before the stubs, the call went to a NULL pointer). */
#define PQL_REAL_STUB(ret, name, params, args)                                                               \
    static ret stub_##name params                                                                            \
    {                                                                                                        \
        __typeof__(stub_##name) *fn = (__typeof__(fn))pql_dlsym(libpq, #name);                               \
        if (!fn)                                                                                             \
            return (ret)0;                                                                                   \
        pql_real.name = fn;                                                                                  \
        return fn args;                                                                                      \
    }
PQL_REAL_FUNCTIONS(PQL_REAL_STUB)
#undef PQL_REAL_STUB

/* Each entry of the list has libpq-fe.h's own type. */
#define PQL_REAL_SAME_TYPE(ret, name, params, args)                                                          \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), ret(*) params), #name " as libpq-fe.h");
PQL_REAL_FUNCTIONS(PQL_REAL_SAME_TYPE)
#undef PQL_REAL_SAME_TYPE

bool pql_real_resolve(void)
{
    if (atomic_load_explicit(&pql_real_resolved, memory_order_acquire))
        return true;
    pthread_mutex_lock(&resolve_lock);
    if (!atomic_load_explicit(&pql_real_resolved, memory_order_relaxed)) {
        /* The handle's reference is kept on purpose: libpq must not be unloaded under us. */
        libpq = libpq_handle();
        if (libpq) {
#define PQL_REAL_SET_STUB(ret, name, params, args) pql_real.name = stub_##name;
            PQL_REAL_FUNCTIONS(PQL_REAL_SET_STUB)
#undef PQL_REAL_SET_STUB
            atomic_store_explicit(&pql_real_resolved, true, memory_order_release);
        }
    }
    pthread_mutex_unlock(&resolve_lock);
    return atomic_load_explicit(&pql_real_resolved, memory_order_acquire);
}

void *pql_real_libc(const char *name)
{
    return pql_dlsym(RTLD_NEXT, name);
}

/* Another parent thread may have held the resolver's lock. */
static void fork_child(void)
{
    pthread_mutex_init(&resolve_lock, NULL);
}

void pql_real_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
}
