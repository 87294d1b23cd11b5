/* What the shim records at each connection event: open (with its stack), connect completion, reset
 * and close. Called by the interposers on the application's thread, outermost call only. */
#ifndef PQL_TRACK_H
#define PQL_TRACK_H

#include <libpq-fe.h>
#include <stdbool.h>

/* A connection was made: by a blocking call (complete) or a PQconnectStart* call (in progress). */
void pql_track_open(PGconn *conn, bool nonblocking);

/* PQconnectPoll or PQresetPoll returned st for conn. */
void pql_track_polled(PGconn *conn, PostgresPollingStatusType st);

/* PQreset finished or PQresetStart failed: take the state from PQstatus. */
void pql_track_reset(PGconn *conn);

/* PQfinish is about to free conn. */
void pql_track_close(PGconn *conn);

#endif
