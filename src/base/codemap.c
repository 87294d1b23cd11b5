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

/* The symbol name in lm's GNU hash table, defined (at fn, unless fn is NULL); NULL when it is not there.
 * *has_table says whether the object has such a table. */
static const ElfW(Sym) *
    gnu_lookup(const struct link_map *lm, const void *fn, const char *name, bool *has_table)
{
    const uint32_t *table = NULL;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    for (const ElfW(Dyn) *d = lm->l_ld; d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_GNU_HASH)
            table = (const uint32_t *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)pql_dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            strtab = (const char *)pql_dyn_ptr(lm, d->d_un.d_ptr);
    }
    *has_table = table && symtab && strtab && table[0];
    if (!*has_table)
        return NULL;
    uint32_t nbuckets = table[0], symoffset = table[1], bloom_words = table[2];
    const uint32_t *buckets = table + 4 + bloom_words * (sizeof(ElfW(Addr)) / 4);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t h = gnu_hash(name);
    for (uint32_t i = buckets[h % nbuckets]; i >= symoffset; i++) {
        uint32_t ch = chain[i - symoffset];
        const ElfW(Sym) *sym = &symtab[i];
        if ((ch | 1) == (h | 1) && sym->st_shndx != SHN_UNDEF &&
            (!fn || lm->l_addr + sym->st_value == (uintptr_t)fn) && !strcmp(strtab + sym->st_name, name))
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
    bool has_table = false;
    const ElfW(Sym) *sym = gnu_lookup(dlfo.dlfo_link_map, fn, name, &has_table);
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

void *pql_object_function(const void *in_object, const char *name)
{
    struct dl_find_object dlfo;
    if (!in_object || _dl_find_object((void *)in_object, &dlfo) != 0)
        return NULL;
    bool has_table = false;
    const ElfW(Sym) *sym = gnu_lookup(dlfo.dlfo_link_map, NULL, name, &has_table);
    if (!sym || ELF64_ST_TYPE(sym->st_info) != STT_FUNC)
        return NULL;
    return (void *)(dlfo.dlfo_link_map->l_addr + sym->st_value);
}
