/* A second preloaded library, as a sanitizer runtime or another interposer would be: its puts wraps
 * libc's through dlsym(RTLD_NEXT). If the shim's dlsym broke RTLD_NEXT's caller-relative lookup, this
 * would find itself and recurse, or find nothing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int puts(const char *s)
{
    int (*real)(const char *) = (int (*)(const char *))dlsym(RTLD_NEXT, "puts");
    if (!real || real == puts)
        return -1;
    fputs("[nextcheck] ", stdout);
    return real(s);
}
