/* One source line that connects in a loop the compiler unrolls (-O2 -funroll-all-loops): two call
 * instructions, two return addresses, one line to fix. The report must show one group of two. */
#include <libpq-fe.h>
#include <stdio.h>

PGconn *kept[2];

int main(void)
{
    for (int i = 0; i < 2; i++)
        kept[i] = PQconnectdb(""); /* never closed */
    printf("%d %d\n", PQstatus(kept[0]), PQstatus(kept[1]));
    return 0;
}
