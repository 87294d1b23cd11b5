/* Code ranges of loaded objects (codemap.h), read from the loader's program headers. */
#define _GNU_SOURCE
#include "codemap.h"

#include <link.h>

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
