/* Test program: libpq loaded with dlopen, one connection made and closed through it, then the handle
 * closed. Prints whether libpq is still loaded: pqleak keeps a reference, so that the functions it calls
 * are never unmapped under it (tests/integration/test_core.py libpq_dlclose). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

static int find(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    return strstr(info->dlpi_name, "/libpq.so") != NULL;
}

int main(void)
{
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    void *(*connectdb)(const char *) = (void *(*)(const char *))dlsym(h, "PQconnectdb");
    void (*finish)(void *) = (void (*)(void *))dlsym(h, "PQfinish");
    if (!connectdb || !finish)
        return 2;
    finish(connectdb(""));
    dlclose(h);
    puts(dl_iterate_phdr(find, NULL) ? "loaded" : "unloaded");
    return 0;
}
