/* The query hooks (query.c): per-call bookkeeping of a connection's live state, lock-free, and the
 * misuse found on the way. Application threads, outermost interposed call only; not signal-safe. */
#ifndef PQL_QUERY_H
#define PQL_QUERY_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"

struct pql_live;

/* What a query call found wrong with the use of its connection; each is found once per connection. */
struct pql_misuse {
    bool forked;   /* used in a forked child of the process that opened it */
    int other_tid; /* used while this thread was using it too; 0 when not */
};

/* Turns the hooks on (they do nothing before) with the settings' stack depth. */
void pql_query_setup(const struct pql_settings *s);

/* Around a query call. begin returns NULL when conn is not tracked, and fills *m (zeroed by the
 * caller) with any misuse found. end takes begin's result (NULL does nothing). */
struct pql_live *pql_query_begin(PGconn *conn, struct pql_misuse *m);
void pql_query_end(struct pql_live *l, PGconn *conn);

#endif
