/* Test module, linked -z now (every GOT slot read-only after loading, as Debian builds PHP's pgsql.so):
 * loaded by deepbind.c with RTLD_DEEPBIND, it opens a connection it never closes and says which
 * pqleak_test_which it is bound to (tests/integration/test_core.py deepbind_module). */
#include <libpq-fe.h>

int pqleak_test_which(void);
int deepmod_run(void);

static PGconn *kept;

int deepmod_run(void)
{
    kept = PQconnectdb(""); /* deepmod: leak */
    return PQstatus(kept) == CONNECTION_OK ? pqleak_test_which() : -1;
}
