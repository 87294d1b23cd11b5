/* Leaks a (failed) PGconn the way a program loses one: the last pointer to it is dropped. Built with
 * -fsanitize=leak: LeakSanitizer must still find it with the shim preloaded (the shim keeps only
 * masked pointers, which LeakSanitizer does not follow). The pointer lives only in a frame that has
 * returned and whose stack is then overwritten, so that no stale copy can hide the leak. */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

static __attribute__((noinline)) void lose_one(void)
{
    PGconn *c = PQconnectdb("host=/nonexistent-pqleak-dir");
    printf("status %d\n", (int)PQstatus(c));
}

static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[64 * 1024];
    memset((char *)junk, 0, sizeof(junk));
}

int main(void)
{
    lose_one();
    scrub_stack();
    return 0;
}
