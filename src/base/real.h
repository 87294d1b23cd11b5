/* The real libpq functions behind the interposers, resolved lazily: libpq may be loaded after the shim
 * (Python and Perl load it as a local dependency of a dlopen'ed module). Any thread; not signal-safe. */
#ifndef PQL_REAL_H
#define PQL_REAL_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Every libpq function the shim calls: return type, name, parameters, arguments. */
#define PQL_REAL_FUNCTIONS(X)                                                                                \
    /* interposed */                                                                                         \
    X(PGconn *, PQconnectdb, (const char *a), (a))                                                           \
    X(PGconn *, PQconnectdbParams, (const char *const *a, const char *const *b, int c), (a, b, c))           \
    X(PGconn *, PQsetdbLogin,                                                                                \
      (const char *a, const char *b, const char *c, const char *d, const char *e, const char *f,             \
       const char *g),                                                                                       \
      (a, b, c, d, e, f, g))                                                                                 \
    X(PGconn *, PQconnectStart, (const char *a), (a))                                                        \
    X(PGconn *, PQconnectStartParams, (const char *const *a, const char *const *b, int c), (a, b, c))        \
    X(PostgresPollingStatusType, PQconnectPoll, (PGconn * a), (a))                                           \
    X(void, PQfinish, (PGconn * a), (a))                                                                     \
    X(void, PQreset, (PGconn * a), (a))                                                                      \
    X(int, PQresetStart, (PGconn * a), (a))                                                                  \
    X(PostgresPollingStatusType, PQresetPoll, (PGconn * a), (a))                                             \
    X(PGPing, PQping, (const char *a), (a))                                                                  \
    X(PGPing, PQpingParams, (const char *const *a, const char *const *b, int c), (a, b, c))                  \
    /* accessors the shim uses itself */                                                                     \
    X(ConnStatusType, PQstatus, (const PGconn *a), (a))                                                      \
    X(char *, PQhost, (const PGconn *a), (a))                                                                \
    X(char *, PQport, (const PGconn *a), (a))                                                                \
    X(char *, PQdb, (const PGconn *a), (a))                                                                  \
    X(char *, PQuser, (const PGconn *a), (a))                                                                \
    X(char *, PQpass, (const PGconn *a), (a))                                                                \
    X(int, PQbackendPID, (const PGconn *a), (a))                                                             \
    X(PQconninfoOption *, PQconninfo, (PGconn * a), (a))                                                     \
    X(void, PQconninfoFree, (PQconninfoOption * a), (a))                                                     \
    X(PQconninfoOption *, PQconninfoParse, (const char *a, char **b), (a, b))                                \
    X(PQconninfoOption *, PQconndefaults, (void), ())                                                        \
    X(char *, PQerrorMessage, (const PGconn *a), (a))                                                        \
    X(void, PQfreemem, (void *a), (a))                                                                       \
    X(PGTransactionStatusType, PQtransactionStatus, (const PGconn *a), (a))                                  \
    X(int, PQsocket, (const PGconn *a), (a))                                                                 \
    X(const char *, PQparameterStatus, (const PGconn *a, const char *b), (a, b))                             \
    /* query entry points (live state) */                                                                    \
    X(PGresult *, PQexec, (PGconn * a, const char *b), (a, b))                                               \
    X(PGresult *, PQexecParams,                                                                              \
      (PGconn * a, const char *b, int c, const Oid *d, const char *const *e, const int *f, const int *g,     \
       int h),                                                                                               \
      (a, b, c, d, e, f, g, h))                                                                              \
    X(PGresult *, PQexecPrepared,                                                                            \
      (PGconn * a, const char *b, int c, const char *const *d, const int *e, const int *f, int g),           \
      (a, b, c, d, e, f, g))                                                                                 \
    X(PGresult *, PQprepare, (PGconn * a, const char *b, const char *c, int d, const Oid *e),                \
      (a, b, c, d, e))                                                                                       \
    X(int, PQsendQuery, (PGconn * a, const char *b), (a, b))                                                 \
    X(int, PQsendQueryParams,                                                                                \
      (PGconn * a, const char *b, int c, const Oid *d, const char *const *e, const int *f, const int *g,     \
       int h),                                                                                               \
      (a, b, c, d, e, f, g, h))                                                                              \
    X(int, PQsendQueryPrepared,                                                                              \
      (PGconn * a, const char *b, int c, const char *const *d, const int *e, const int *f, int g),           \
      (a, b, c, d, e, f, g))                                                                                 \
    X(int, PQsendPrepare, (PGconn * a, const char *b, const char *c, int d, const Oid *e), (a, b, c, d, e))  \
    X(PGresult *, PQgetResult, (PGconn * a), (a))

/* One atomic pointer per function: a plain load on x86-64, so a call through it costs what a call
 * through a plain pointer does, and a first call's store (below) races with nothing. */
#define PQL_REAL_MEMBER(ret, name, params, args) ret(*_Atomic name) params;
struct pql_real {
    PQL_REAL_FUNCTIONS(PQL_REAL_MEMBER)
};
#undef PQL_REAL_MEMBER

/* The functions. A member is NULL until libpq is found; then it points at a stub that looks the function
 * up (dlsym) at its first call and puts it in the member's place: a process pays for the lookups of the
 * functions it uses, not of all 39. */
extern struct pql_real pql_real;

/* True once libpq is found and every member set (pql_real_ready reads it inline on the query path). */
extern atomic_bool pql_real_resolved __attribute__((visibility("hidden")));

/* Finds the loaded libpq and sets every member if not done yet. Returns true when libpq was found;
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
