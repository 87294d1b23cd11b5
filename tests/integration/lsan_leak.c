/* Leaks a (failed) PGconn the way a program loses one: the last pointer to it is dropped. Built with
 * -fsanitize=leak: LeakSanitizer must still find it with the shim preloaded (the shim keeps only
 * masked pointers, which LeakSanitizer does not follow). */
#include <libpq-fe.h>
#include <stdio.h>

int main(void)
{
    PGconn *c = PQconnectdb("host=/nonexistent-pqleak-dir");
    printf("status %d\n", (int)PQstatus(c));
    c = NULL;
    return 0;
}
