/* Code ranges of loaded objects (codemap.h), read from the loader's program headers, and functions'
 * sizes from the objects' dynamic symbol tables. */
#define _GNU_SOURCE
#include "codemap.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

struct code_range {
    uintptr_t addr, lo, hi;
};

static int find_range(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct code_range *r = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (r->addr >= lo && r->addr < hi) {
            r->lo = lo;
            r->hi = hi;
            return 1;
        }
    }
    return 0;
}

bool pql_code_range(uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
    struct code_range r = {addr, 0, 0};
    if (!dl_iterate_phdr(find_range, &r))
        return false;
    *lo = r.lo;
    *hi = r.hi;
    return true;
}

static uint32_t gnu_hash(const char *name)
{
    uint32_t h = 5381;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = h * 33 + *c;
    return h;
}

uintptr_t pql_dyn_ptr(const struct link_map *lm, ElfW(Addr) p)
{
    return p < lm->l_addr ? lm->l_addr + p : p;
}

bool pql_symbols_of(const struct link_map *lm, struct pql_symbols *t)
{
    *t = (struct pql_symbols){.lm = lm};
    for (const ElfW(Dyn) *d = lm ? lm->l_ld : NULL; d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_GNU_HASH)
            t->gnu_hash = (const uint32_t *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_SYMTAB)
            t->symtab = (const ElfW(Sym) *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            t->strtab = (const char *)pql_dyn_ptr(lm, d->d_un.d_ptr);
    }
    return t->gnu_hash && t->symtab && t->strtab && t->gnu_hash[0];
}

/* The symbol name in a GNU hash table (pql_symbols_of gave true), defined (at fn, unless fn is NULL);
 * NULL when it is not there. */
static const ElfW(Sym) * gnu_lookup(const struct pql_symbols *t, const void *fn, const char *name)
{
    const uint32_t *table = t->gnu_hash;
    uint32_t nbuckets = table[0], symoffset = table[1], bloom_words = table[2];
    const uint32_t *buckets = table + 4 + bloom_words * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t h = gnu_hash(name);
    for (uint32_t i = buckets[h % nbuckets]; i >= symoffset; i++) {
        uint32_t ch = chain[i - symoffset];
        const ElfW(Sym) *sym = &t->symtab[i];
        if ((ch | 1) == (h | 1) && sym->st_shndx != SHN_UNDEF &&
            (!fn || t->lm->l_addr + sym->st_value == (uintptr_t)fn) &&
            !strcmp(t->strtab + sym->st_name, name))
            return sym;
        if (ch & 1)
            break;
    }
    return NULL;
}

bool pql_function_range(const void *fn, const char *name, uintptr_t *lo, uintptr_t *hi)
{
    struct dl_find_object dlfo;
    if (!fn || _dl_find_object((void *)fn, &dlfo) != 0)
        return false;
    struct pql_symbols t;
    bool has_table = pql_symbols_of(dlfo.dlfo_link_map, &t);
    const ElfW(Sym) *sym = has_table ? gnu_lookup(&t, fn, name) : NULL;
    Dl_info info;
    if (!has_table && (!dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) || !info.dli_sname ||
                       strcmp(info.dli_sname, name) != 0))
        return false;
    if (!sym || !sym->st_size)
        return false;
    *lo = (uintptr_t)fn;
    *hi = *lo + sym->st_size;
    return true;
}

void *pql_symbols_function(const struct pql_symbols *t, const char *name)
{
    const ElfW(Sym) *sym = gnu_lookup(t, NULL, name);
    if (!sym || ELF64_ST_TYPE(sym->st_info) != STT_FUNC)
        return NULL;
    return (void *)(t->lm->l_addr + sym->st_value);
}
