/* The C half of the dlsym/dlopen hooks (see dlhook.h): resolving the real functions with dlvsym,
 * deciding when to answer a lookup with an interposer, and reading a module's DT_NEEDED (or its name,
 * for PHP's FFI) to decide what a RTLD_DEEPBIND load needs: a module that needs libpq keeps its own
 * lookup scope and has its libpq imports pointed at the interposers once loaded (gotpatch.h); PHP's
 * FFI loses RTLD_DEEPBIND. Any thread, including library constructors that run before the shim's own;
 * not signal-safe. */
#define _GNU_SOURCE
#include "dlhook.h"

#include "codemap.h"
#include "config.h"
#include "gotpatch.h"
#include "log.h"
#include "path.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read by the trampolines; hidden. */
void *(*pql_real_dlsym)(void *, const char *);
void *(*pql_real_dlopen)(const char *, int);

static int hooks = -1; /* -1 unknown, 0 off, 1 on */

static const char *env(const char *name)
{
    return getenv(name);
}

static void *libc_fn(const char *name)
{
    /* dlvsym, not dlsym: it is not hooked, so this never recurses. */
    void *p = dlvsym(RTLD_NEXT, name, "GLIBC_2.34");
    return p ? p : dlvsym(RTLD_NEXT, name, "GLIBC_2.2.5");
}

void pql_dlhook_resolve(void)
{
    if (!pql_real_dlsym)
        pql_real_dlsym = (void *(*)(void *, const char *))libc_fn("dlsym");
    if (!pql_real_dlopen)
        pql_real_dlopen = (void *(*)(const char *, int))libc_fn("dlopen");
    /* Secure execution reads no variable and stays inert. */
    if (hooks < 0)
        hooks = !getauxval(AT_SECURE) && pql_settings_early_bool("PQLEAK_HOOK_DLSYM", env) &&
                !pql_settings_early_bool("PQLEAK_DISABLE", env);
}

void *pql_dlsym(void *handle, const char *name)
{
    if (!pql_real_dlsym)
        pql_dlhook_resolve();
    return pql_real_dlsym(handle, name);
}

static bool in_libpq(void *addr)
{
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fname)
        return false;
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    return !strncmp(base, "libpq.so", 8);
}

/* True when addr is in the shim itself (or, in unit tests, the program the core is linked into). */
static bool in_self(void *addr)
{
    Dl_info mine, theirs;
    return dladdr((void *)&in_self, &mine) && dladdr(addr, &theirs) && mine.dli_fbase == theirs.dli_fbase;
}

void *pql_dlsym_handle(void *handle, const char *name)
{
    void *r = pql_dlsym(handle, name);
    if (!r || hooks != 1 || !name || name[0] != 'P' || name[1] != 'Q')
        return r;
    if (!in_libpq(r))
        return r;
    /* In the global scope the preloaded shim comes before libpq: there, an interposed name is ours. */
    void *ours = pql_real_dlsym(RTLD_DEFAULT, name);
    return ours && ours != r && in_self(ours) ? ours : r;
}

/* True when the ELF file at path lists a libpq.so* in DT_NEEDED. Reads the file; never loads it. */
static bool needs_libpq(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool found = false;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(ElfW(Ehdr))) {
        const unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            size_t size = (size_t)st.st_size;
            const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)m;
            bool ok = !memcmp(eh->e_ident, ELFMAG, SELFMAG) && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
                      eh->e_shoff && eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) <= size;
            for (int i = 0; ok && !found && i < eh->e_shnum; i++) {
                const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(m + eh->e_shoff) + i;
                if (sh->sh_type != SHT_DYNAMIC || sh->sh_link >= eh->e_shnum ||
                    sh->sh_offset + sh->sh_size > size)
                    continue;
                const ElfW(Shdr) *str = (const ElfW(Shdr) *)(m + eh->e_shoff) + sh->sh_link;
                if (str->sh_offset + str->sh_size > size)
                    continue;
                const ElfW(Dyn) *d = (const ElfW(Dyn) *)(m + sh->sh_offset);
                for (size_t j = 0; j < sh->sh_size / sizeof(*d) && d[j].d_tag != DT_NULL; j++)
                    if (d[j].d_tag == DT_NEEDED && d[j].d_un.d_val < str->sh_size &&
                        !strncmp((const char *)m + str->sh_offset + d[j].d_un.d_val, "libpq.so", 8))
                        found = true;
            }
            munmap((void *)m, size);
        }
    }
    close(fd);
    return found;
}

/* PHP's FFI extension, which PHP loads with RTLD_DEEPBIND like every extension: its dlsym, and the
 * RTLD_DEFAULT lookups FFI::cdef makes through it, would then find libc's _exit (and libpq's own
 * functions) before the shim's. */
static bool is_php_ffi(const char *path)
{
    return !strcmp(pql_base_name(path), "ffi.so");
}

static _Atomic unsigned dlopens;

unsigned pql_dlopen_count(void)
{
    return atomic_load_explicit(&dlopens, memory_order_relaxed);
}

int pql_dlopen_mode(const char *file, int mode)
{
    atomic_fetch_add_explicit(&dlopens, 1, memory_order_relaxed);
    pql_dlhook_resolve();
    if (hooks != 1 || !file || !strchr(file, '/') || !(mode & RTLD_DEEPBIND))
        return mode;
    if (is_php_ffi(file))
        return mode & ~RTLD_DEEPBIND;
    /* A path with a dynamic string token ($ORIGIN) is expanded against the caller, which
     * pql_dlopen_redirect's own call would change: such a module loses RTLD_DEEPBIND instead. */
    if (needs_libpq(file))
        return strchr(file, '$') ? mode & ~RTLD_DEEPBIND : PQL_DLOPEN_REDIRECT;
    return mode;
}

/* gotpatch's target for a module that needs libpq: the shim's interposer of each libpq function it
 * has (its exports are the interposers; arg: the shim's symbols). */
static void *shim_interposer(const char *name, void *arg)
{
    if (name[0] != 'P' || name[1] != 'Q')
        return NULL;
    return pql_symbols_function(arg, name);
}

void *pql_dlopen_redirect(const char *file, int mode)
{
    void *h = pql_real_dlopen(file, mode);
    struct link_map *lm = NULL;
    struct dl_find_object self;
    struct pql_symbols shim;
    if (h &&
        (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || _dl_find_object((void *)pql_dlopen_redirect, &self) != 0 ||
         !pql_symbols_of(self.dlfo_link_map, &shim) ||
         pql_got_redirect(lm, shim_interposer, &shim, true) < 0))
        pql_log("%s: its calls into libpq could not be pointed at pqleak (its bindings stay read-only): "
                "its connections go unseen",
                file);
    return h;
}
