/* A tiny "service" with a classic connection leak, used by tools/demo: handle_request() returns early
 * on a failed lookup without calling PQfinish, so every failed lookup leaks one connection. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static int handle_request(int user_id)
{
    PGconn *conn = PQconnectdb("application_name=leaky_service");
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    char id[16];
    snprintf(id, sizeof(id), "%d", user_id);
    const char *params[] = {id};
    PGresult *res = PQexecParams(conn, "select $1::int where $1::int % 3 <> 0", 1, NULL, params, NULL, NULL, 0);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return -1; /* BUG: the connection is never closed on this path */
    }
    PQclear(res);
    PQfinish(conn);
    return 0;
}

PGconn *cache_conn; /* kept for the life of the process, never closed */

static void warm_up_cache(void)
{
    cache_conn = PQconnectdb("application_name=cache");
}

int main(void)
{
    warm_up_cache();
    int failed = 0;
    for (int user = 1; user <= 10; user++)
        failed += handle_request(user) != 0;
    printf("served 10 requests, %d not found\n", failed);
    return 0;
}
