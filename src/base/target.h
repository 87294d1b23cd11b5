/* Where a connection goes: host, port, dbname, user, application_name. Only these whitelisted fields
 * are ever copied out of libpq, and any of them that contains the connection's password is blanked,
 * so no password reaches a record, log line or report. The strings are interned: each distinct target
 * is stored once, for the life of the process, and a target is five pointers into that store, cheap to
 * copy and safe to read from any thread at any time. Any thread; not signal-safe. */
#ifndef PQL_TARGET_H
#define PQL_TARGET_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Longest kept value of each field, in bytes: a longer one is cut (after its check for a password). */
#define PQL_TARGET_HOST_MAX 255
#define PQL_TARGET_PORT_MAX 31
#define PQL_TARGET_NAME_MAX 127 /* dbname, user, application_name */

/* Distinct targets kept; beyond, a new target keeps no application_name, then only "[not kept]". */
#define PQL_TARGET_STORE_MAX 100000

/* Never NULL: "" when unknown (pql_target_empty). Valid for the life of the process. */
struct pql_target {
    const char *host;
    const char *port;
    const char *dbname;
    const char *user;
    const char *appname;
};

/* Registers the fork handler (the store's lock is reset in a child). */
void pql_target_setup(void);

/* The unknown target: every field "". */
struct pql_target pql_target_empty(void);

/* Room for "host\x1fport\x1fdbname\x1fuser" (a per-target bucket's key), terminator included. */
#define PQL_TARGET_KEY_MAX (PQL_TARGET_HOST_MAX + PQL_TARGET_PORT_MAX + 2 * PQL_TARGET_NAME_MAX + 4)

/* The libpq accessors used, passed in so that unit tests can give libpq's own. */
struct pql_target_api {
    char *(*host)(const PGconn *);
    char *(*port)(const PGconn *);
    char *(*db)(const PGconn *);
    char *(*user)(const PGconn *);
    char *(*pass)(const PGconn *);
    PQconninfoOption *(*conninfo)(PGconn *);
    void (*conninfo_free)(PQconninfoOption *);
    PQconninfoOption *(*conninfo_parse)(const char *, char **);
    PQconninfoOption *(*conndefaults)(void);
    void (*freemem)(void *);
    ConnStatusType (*status)(const PGconn *);
    const char *(*parameter_status)(const PGconn *, const char *);
};

/* What a connect call was given: conninfo (a string or URI), or keyword arrays. */
struct pql_connect_args {
    const char *conninfo;
    const char *const *keywords, *const *values;
    int expand_dbname;
};

/* Fills *t from a live PGconn (connected, in progress or failed). Unknown fields are "". */
void pql_target_from_conn(struct pql_target *t, PGconn *conn, const struct pql_target_api *api);

/* The same, for a connection just returned by a connect call that was given args: one not connected
 * (failed or in progress) takes its application_name from args (or PGAPPNAME) where that is certain,
 * rather than from PQconninfo, which builds and frees libpq's whole option array. */
void pql_target_from_open(struct pql_target *t, PGconn *conn, const struct pql_connect_args *args,
                          const struct pql_target_api *api);

/* Fills *t before connecting, from a conninfo string or URI (conninfo non-NULL) or from keyword arrays,
 * with libpq's defaults (environment included) for what they leave out, as libpq itself would. Used
 * for the per-target cap. (Service files are not read: a service's host counts as the default.) */
void pql_target_from_options(struct pql_target *t, const char *conninfo, const char *const *keywords,
                             const char *const *values, int expand_dbname, const struct pql_target_api *api);

/* True when a and b name the same host+port+dbname+user (application_name is not part of it). */
bool pql_target_same(const struct pql_target *a, const struct pql_target *b);

#endif
