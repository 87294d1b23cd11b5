/* The second leak_site_a of cli_leaker, in a file of its own ("twin" mode): the same function name as
 * cli_leaker.c's, static so that both link. A baseline written for cli_leaker.c's leak_site_a must not
 * cover this one (the over-match of issue 12 item 7). */
#include <libpq-fe.h>

void cli_leaker_keep(PGconn *c);
void twin_site(int n);

/* Calls PQconnectdb itself, so it is the innermost frame of the user's code in its stack. */
__attribute__((noinline)) static void leak_site_a(int n)
{
    for (int i = 0; i < n; i++)
        cli_leaker_keep(PQconnectdb(""));
}

void twin_site(int n)
{
    leak_site_a(n);
}
