/* A C program with a language runtime's library loaded but never run (libpython, dlopen'ed before the first
 * connect): its connect comes from a deep C stack with no interpreter frame in it. Where a runtime is loaded
 * the capture walks a few frames first, looking for the interpreter's, and must then walk them all: the
 * report keeps the whole stack (PQLEAK_STACK_DEPTH frames), main included.
 *
 *   lang_deep_c LIBPYTHON DEPTH      prints the connection's status; exits 77 when LIBPYTHON cannot load */
#include <dlfcn.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

PGconn *kept; /* never closed */
void deep_call(int n);

__attribute__((noinline)) void deep_call(int n)
{
    if (n <= 0)
        kept = PQconnectdb("application_name=lang_deep_c");
    else
        deep_call(n - 1);
    __asm__ volatile("" ::: "memory"); /* no tail call: every level keeps its frame */
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    if (!dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) {
        fprintf(stderr, "lang_deep_c: %s\n", dlerror());
        return 77;
    }
    deep_call(atoi(argv[2]));
    printf("%d\n", PQstatus(kept));
    return 0;
}
