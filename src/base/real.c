/* Finds the loaded libpq and its functions. First pql_dlsym(RTLD_NEXT), which works when libpq is in the
 * global scope; otherwise the loaded object whose file name starts with "libpq.so" (never the shim:
 * "libpqleak.so" also contains "libpq"). Called from interposers on any thread; not signal-safe. */
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

#define RESOLVE(h, fn) (pql_real.fn = (__typeof__(pql_real.fn))pql_dlsym(h, #fn))

bool pql_real_resolve(void)
{
    if (atomic_load_explicit(&pql_real_resolved, memory_order_acquire))
        return true;
    pthread_mutex_lock(&resolve_lock);
    if (!atomic_load_explicit(&pql_real_resolved, memory_order_relaxed)) {
        void *h = libpq_handle();
        if (h) {
            RESOLVE(h, PQconnectdb);
            RESOLVE(h, PQconnectdbParams);
            RESOLVE(h, PQsetdbLogin);
            RESOLVE(h, PQconnectStart);
            RESOLVE(h, PQconnectStartParams);
            RESOLVE(h, PQconnectPoll);
            RESOLVE(h, PQfinish);
            RESOLVE(h, PQreset);
            RESOLVE(h, PQresetStart);
            RESOLVE(h, PQresetPoll);
            RESOLVE(h, PQping);
            RESOLVE(h, PQpingParams);
            RESOLVE(h, PQstatus);
            RESOLVE(h, PQhost);
            RESOLVE(h, PQport);
            RESOLVE(h, PQdb);
            RESOLVE(h, PQuser);
            RESOLVE(h, PQpass);
            RESOLVE(h, PQbackendPID);
            RESOLVE(h, PQconninfo);
            RESOLVE(h, PQconninfoFree);
            RESOLVE(h, PQconninfoParse);
            RESOLVE(h, PQconndefaults);
            RESOLVE(h, PQerrorMessage);
            RESOLVE(h, PQfreemem);
            RESOLVE(h, PQtransactionStatus);
            RESOLVE(h, PQsocket);
            RESOLVE(h, PQparameterStatus);
            RESOLVE(h, PQexec);
            RESOLVE(h, PQexecParams);
            RESOLVE(h, PQexecPrepared);
            RESOLVE(h, PQprepare);
            RESOLVE(h, PQsendQuery);
            RESOLVE(h, PQsendQueryParams);
            RESOLVE(h, PQsendQueryPrepared);
            RESOLVE(h, PQsendPrepare);
            RESOLVE(h, PQgetResult);
            /* The handle's reference is kept on purpose: libpq must not be unloaded under us. */
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
