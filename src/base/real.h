/* The real libpq functions behind the interposers, resolved lazily: libpq may be loaded after the shim
 * (Python and Perl load it as a local dependency of a dlopen'ed module). Any thread; not signal-safe. */
#ifndef PQL_REAL_H
#define PQL_REAL_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

struct pql_real {
    /* interposed */
    PGconn *(*PQconnectdb)(const char *);
    PGconn *(*PQconnectdbParams)(const char *const *, const char *const *, int);
    PGconn *(*PQsetdbLogin)(const char *, const char *, const char *, const char *, const char *,
                            const char *, const char *);
    PGconn *(*PQconnectStart)(const char *);
    PGconn *(*PQconnectStartParams)(const char *const *, const char *const *, int);
    PostgresPollingStatusType (*PQconnectPoll)(PGconn *);
    void (*PQfinish)(PGconn *);
    void (*PQreset)(PGconn *);
    int (*PQresetStart)(PGconn *);
    PostgresPollingStatusType (*PQresetPoll)(PGconn *);
    PGPing (*PQping)(const char *);
    PGPing (*PQpingParams)(const char *const *, const char *const *, int);
    /* accessors the shim uses itself */
    ConnStatusType (*PQstatus)(const PGconn *);
    char *(*PQhost)(const PGconn *);
    char *(*PQport)(const PGconn *);
    char *(*PQdb)(const PGconn *);
    char *(*PQuser)(const PGconn *);
    char *(*PQpass)(const PGconn *);
    int (*PQbackendPID)(const PGconn *);
    PQconninfoOption *(*PQconninfo)(PGconn *);
    void (*PQconninfoFree)(PQconninfoOption *);
    PQconninfoOption *(*PQconninfoParse)(const char *, char **);
    PQconninfoOption *(*PQconndefaults)(void);
    char *(*PQerrorMessage)(const PGconn *);
    void (*PQfreemem)(void *);
    PGTransactionStatusType (*PQtransactionStatus)(const PGconn *);
    int (*PQsocket)(const PGconn *);
    const char *(*PQparameterStatus)(const PGconn *, const char *);
    /* query entry points (live state) */
    PGresult *(*PQexec)(PGconn *, const char *);
    PGresult *(*PQexecParams)(PGconn *, const char *, int, const Oid *, const char *const *, const int *,
                              const int *, int);
    PGresult *(*PQexecPrepared)(PGconn *, const char *, int, const char *const *, const int *, const int *,
                                int);
    PGresult *(*PQprepare)(PGconn *, const char *, const char *, int, const Oid *);
    int (*PQsendQuery)(PGconn *, const char *);
    int (*PQsendQueryParams)(PGconn *, const char *, int, const Oid *, const char *const *, const int *,
                             const int *, int);
    int (*PQsendQueryPrepared)(PGconn *, const char *, int, const char *const *, const int *, const int *,
                               int);
    int (*PQsendPrepare)(PGconn *, const char *, const char *, int, const Oid *);
    PGresult *(*PQgetResult)(PGconn *);
};

/* The resolved functions. A member is NULL until libpq is found. */
extern struct pql_real pql_real;

/* True once every member is resolved (pql_real_ready reads it inline on the query path). */
extern atomic_bool pql_real_resolved __attribute__((visibility("hidden")));

/* Resolves every member from the loaded libpq if not done yet. Returns true when libpq was found;
 * false (and members stay NULL) while no libpq is loaded. Never loads libpq itself. */
bool pql_real_resolve(void);

/* pql_real_resolve with its common case inline: one load once libpq is resolved. */
static inline bool pql_real_ready(void)
{
    return atomic_load_explicit(&pql_real_resolved, memory_order_acquire) || pql_real_resolve();
}

/* Resolves a libc function the shim interposes (_exit and the like) with dlsym(RTLD_NEXT). */
void *pql_real_libc(const char *name);

/* Registers the fork handler (the resolver's lock is reset in a child). */
void pql_real_setup(void);

#endif
