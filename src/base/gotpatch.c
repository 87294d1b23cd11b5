/* GOT slots redirected (gotpatch.h). */
#define _GNU_SOURCE
#include "gotpatch.h"

#include "codemap.h"

#include <elf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* Slots changed by one call at most: the shim redirects a few dozen imports. */
#define MAX_SLOTS 128

/* Held around a RELRO range's write window, so that two redirections of one object (two threads
 * loading it at once) never make it read-only under each other. */
static pthread_mutex_t relro_lock = PTHREAD_MUTEX_INITIALIZER;

struct relro_find {
    ElfW(Addr) base;
    uintptr_t lo, hi; /* the pages the loader made read-only after relocation; 0, 0: none */
};

static int find_relro(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct relro_find *f = arg;
    if (info->dlpi_addr != f->base)
        return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_GNU_RELRO) {
            /* As the loader rounds it (both ends down): a last page the segment shares with writable
             * data stays writable, and must not be made read-only here either. */
            f->lo = (f->base + p->p_vaddr) & ~(page - 1);
            f->hi = (f->base + p->p_vaddr + p->p_memsz) & ~(page - 1);
        }
    }
    return 1;
}

struct change {
    uintptr_t slot;
    void *fn;
};

/* Adds the slots of rel[0, n) of type want whose import target names; false when there are too many. */
static bool collect(const struct link_map *lm, const ElfW(Rela) * rel, size_t n, unsigned want,
                    const ElfW(Sym) * symtab, const char *strtab, pql_got_target_fn target, void *arg,
                    struct change *out, size_t *nout)
{
    for (size_t i = 0; rel && i < n; i++) {
        if (ELF64_R_TYPE(rel[i].r_info) != want)
            continue;
        const ElfW(Sym) *sym = &symtab[ELF64_R_SYM(rel[i].r_info)];
        if (sym->st_shndx != SHN_UNDEF) /* the object's own definition, not an import */
            continue;
        void *fn = target(strtab + sym->st_name, arg);
        uintptr_t slot = lm->l_addr + rel[i].r_offset;
        if (!fn || atomic_load_explicit((_Atomic(void *) *)slot, memory_order_relaxed) == fn)
            continue;
        if (*nout == MAX_SLOTS)
            return false;
        out[(*nout)++] = (struct change){slot, fn};
    }
    return true;
}

int pql_got_redirect(const struct link_map *lm, pql_got_target_fn target, void *arg, bool relro)
{
    if (!lm || !lm->l_ld)
        return -1;
    const ElfW(Rela) *jmprel = NULL, *rela = NULL;
    size_t jmprelsz = 0, relasz = 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_JMPREL)
            jmprel = (const ElfW(Rela) *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_PLTRELSZ)
            jmprelsz = d->d_un.d_val;
        else if (d->d_tag == DT_RELA)
            rela = (const ElfW(Rela) *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_RELASZ)
            relasz = d->d_un.d_val;
        else if (d->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            strtab = (const char *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if ((d->d_tag == DT_PLTREL && d->d_un.d_val != DT_RELA) || d->d_tag == DT_REL)
            return -1;
    }
    if (!symtab || !strtab)
        return -1;
    struct change changes[MAX_SLOTS];
    size_t n = 0;
    if (!collect(lm, jmprel, jmprelsz / sizeof(*jmprel), R_X86_64_JUMP_SLOT, symtab, strtab, target, arg,
                 changes, &n) ||
        !collect(lm, rela, relasz / sizeof(*rela), R_X86_64_GLOB_DAT, symtab, strtab, target, arg, changes,
                 &n))
        return -1;
    if (!n)
        return 0;
    struct relro_find rf = {.base = lm->l_addr};
    dl_iterate_phdr(find_relro, &rf);
    bool in_relro = false;
    for (size_t i = 0; i < n; i++)
        in_relro |= changes[i].slot >= rf.lo && changes[i].slot < rf.hi;
    if (in_relro) {
        if (!relro)
            return -1;
        pthread_mutex_lock(&relro_lock);
        if (mprotect((void *)rf.lo, rf.hi - rf.lo, PROT_READ | PROT_WRITE) != 0) {
            pthread_mutex_unlock(&relro_lock);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit((_Atomic(void *) *)changes[i].slot, changes[i].fn, memory_order_release);
    if (in_relro) {
        mprotect((void *)rf.lo, rf.hi - rf.lo, PROT_READ);
        pthread_mutex_unlock(&relro_lock);
    }
    return (int)n;
}
