/* Test program: loads the module named by argv[1] (deepmod.c) with RTLD_DEEPBIND, as PHP loads its
 * extensions, runs it and prints "which=N": 2 when the module kept its own lookup scope (its dependency's
 * pqleak_test_which), 1 when it was bound to this program's. The module's connection is left open for
 * the exit report (tests/integration/test_core.py deepbind_module). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int pqleak_test_which(void);

int pqleak_test_which(void)
{
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int (*run)(void) = (int (*)(void))dlsym(h, "deepmod_run");
    if (!run)
        return 2;
    printf("which=%d\n", run());
    return 0;
}
