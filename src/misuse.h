/* Misuse that libpq cannot survive, reported once per connection with both stacks: a connection
 * used in a forked child that did not open it, and one connection used by two threads at once.
 * Called on the offending application thread (rare path: it symbolizes). */
#ifndef PQL_MISUSE_H
#define PQL_MISUSE_H

#include <libpq-fe.h>

enum pql_misuse { PQL_MISUSE_FORK, PQL_MISUSE_THREADS };

struct pql_conn;

/* Logs the misuse of the connection of rec with the stack of this call and the stack that opened it.
 * other_tid is the thread already using it (PQL_MISUSE_THREADS). */
void pql_misuse_report(const struct pql_conn *rec, enum pql_misuse kind, int other_tid);

#endif
