/* What the shim records at each connection event: checkout before a connect, open (with its stack),
 * connect completion, reset and close; and pqleak's own refusals with their messages. Called by the
 * interposers on the application's thread, outermost call only. */
#ifndef PQL_TRACK_H
#define PQL_TRACK_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"
#include "registry.h"
#include "target.h"
#include "unwind.h"

/* caller below: the interposer's caller (PQL_UNWIND_CALLER), where the record's stack begins. */

/* Before a connect. Returns NULL when it may go ahead (a checkout slot, if caps are set, is in *slot),
 * or a refused PGconn (CONNECTION_BAD, pqleak's message in PQerrorMessage) to return instead. */
PGconn *pql_track_checkout(bool nonblocking, const struct pql_connect_args *args, struct pql_slot *slot,
                           const struct pql_unwind_start *caller);

/* A connection was made: by a blocking call (complete) or a PQconnectStart* call (in progress). The
 * record takes over the slot; a failed connect gives it back at once. */
void pql_track_open(PGconn *conn, bool nonblocking, const struct pql_connect_args *args,
                    struct pql_slot *slot, const struct pql_unwind_start *caller);

/* PQconnectPoll or PQresetPoll returned st for conn. */
void pql_track_polled(PGconn *conn, PostgresPollingStatusType st);

/* PQreset finished or PQresetStart failed: take the state from PQstatus. */
void pql_track_reset(PGconn *conn);

/* PQfinish is about to free conn. */
void pql_track_close(PGconn *conn);

/* pqleak's message for a connection it refused, or NULL for any other (cheap when nothing was refused). */
char *pql_track_refusal_message(const PGconn *conn);

/* Takes the settings (kept) and sets up the checkout; registers the fork handler. */
void pql_track_setup(const struct pql_settings *s);

#endif
