/* Test program (core.unwind_fallback): leaks one connection opened below a frame that has no unwind
 * information (nocfi_x86_64.S: hand-written, no CFI directives, rbp-chained). unwind.c cannot follow
 * that frame; the shim then walks the stack with libunwind, whose frame-pointer guess goes on to main. */
#include <libpq-fe.h>
#include <stdio.h>

void nocfi_call(void (*fn)(void));

static PGconn *leaked;

static void open_leak(void)
{
    leaked = PQconnectdb("");
}

int main(void)
{
    nocfi_call(open_leak);
    printf("status=%d\n", PQstatus(leaked) == CONNECTION_OK);
    return 0;
}
