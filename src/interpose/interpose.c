/* The interposers in C: libpq's connect, finish and query entry points, PQerrorMessage (for the
 * refusals made at a cap), and _exit/_Exit so that programs leaving through them (Python's os._exit)
 * still get their exit report. The dlsym/dlopen trampolines (dlhook_x86_64.S) are the only other
 * exported symbols (exports.map). Each wrapper calls the real function and records; only the outermost
 * call on a thread records, because libpq calls its own exports (PQconnectdb -> PQconnectStart ->
 * PQconnectPoll, PQping -> PQconnectStart + PQfinish): one connection, one record. Application threads;
 * never signal context except _exit, which does no work in a process that never connected. */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "query.h"
#include "real.h"
#include "shim.h"
#include "track.h"

#define PQL_EXPORT __attribute__((visibility("default")))

/* Nesting depth of interposed calls on this thread. The shim is preloaded, so static TLS is there. */
static __thread int depth __attribute__((tls_model("initial-exec")));

/* Enters an interposed call; true for the outermost one, which is the only one that records. */
static bool enter(void)
{
    return depth++ == 0;
}

static void leave(void)
{
    depth--;
}

/* Every connect has one shape: resolve, check out a slot (or return pqleak's refusal), call, record. */
#define CONNECT_WRAPPER(call, nonblocking, ...)                                                              \
    do {                                                                                                     \
        if (depth) /* nested in libpq (PQconnectdb -> PQconnectStart): set only once libpq is resolved */    \
            return call;                                                                                     \
        if (!pql_real_resolve())                                                                             \
            return NULL;                                                                                     \
        enter(); /* the outermost call (depth was 0): it records when the shim is active */                  \
        bool track = pql_shim_active();                                                                      \
        struct pql_slot slot = {0};                                                                          \
        struct pql_connect_args args = {__VA_ARGS__};                                                        \
        /* The record's stack begins at our caller: the walk need not step through the shim's frames. */     \
        struct pql_unwind_start caller = PQL_UNWIND_CALLER();                                                \
        if (track) {                                                                                         \
            PGconn *refused = pql_track_checkout(nonblocking, &args, &slot, &caller);                        \
            if (refused) {                                                                                   \
                leave();                                                                                     \
                return refused;                                                                              \
            }                                                                                                \
        }                                                                                                    \
        PGconn *conn = call;                                                                                 \
        leave();                                                                                             \
        if (track)                                                                                           \
            pql_track_open(conn, nonblocking, &args, &slot, &caller);                                        \
        return conn;                                                                                         \
    } while (0)

PQL_EXPORT PGconn *PQconnectdb(const char *conninfo)
{
    CONNECT_WRAPPER(pql_real.PQconnectdb(conninfo), false, .conninfo = conninfo);
}

PQL_EXPORT PGconn *PQconnectdbParams(const char *const *keywords, const char *const *values,
                                     int expand_dbname)
{
    CONNECT_WRAPPER(pql_real.PQconnectdbParams(keywords, values, expand_dbname), false, .keywords = keywords,
                    .values = values, .expand_dbname = expand_dbname);
}

PQL_EXPORT PGconn *PQsetdbLogin(const char *pghost, const char *pgport, const char *pgoptions,
                                const char *pgtty, const char *dbName, const char *login, const char *pwd)
{
    /* libpq treats a dbName with '=' or a URI as a conninfo string; so does expand_dbname. The password
     * is passed on only so that no field of the target (a refusal message names it) can show it. */
    const char *kw[] = {"host", "port", "user", "dbname", "password", NULL};
    const char *val[] = {pghost, pgport, login, dbName, pwd, NULL};
    CONNECT_WRAPPER(pql_real.PQsetdbLogin(pghost, pgport, pgoptions, pgtty, dbName, login, pwd), false,
                    .keywords = kw, .values = val, .expand_dbname = 1);
}

PQL_EXPORT PGconn *PQconnectStart(const char *conninfo)
{
    CONNECT_WRAPPER(pql_real.PQconnectStart(conninfo), true, .conninfo = conninfo);
}

PQL_EXPORT PGconn *PQconnectStartParams(const char *const *keywords, const char *const *values,
                                        int expand_dbname)
{
    CONNECT_WRAPPER(pql_real.PQconnectStartParams(keywords, values, expand_dbname), true,
                    .keywords = keywords, .values = values, .expand_dbname = expand_dbname);
}

PQL_EXPORT PostgresPollingStatusType PQconnectPoll(PGconn *conn)
{
    if (depth) /* nested: PQconnectdb polls inside libpq */
        return pql_real.PQconnectPoll(conn);
    if (!pql_real_resolve())
        return PGRES_POLLING_FAILED;
    enter(); /* the outermost call (depth was 0) */
    PostgresPollingStatusType st = pql_real.PQconnectPoll(conn);
    leave();
    if (pql_shim_active())
        pql_track_polled(conn, st);
    return st;
}

PQL_EXPORT void PQfinish(PGconn *conn)
{
    if (!pql_real_resolve())
        return;
    bool outer = enter();
    /* Before the real call: once freed, the address may be reused by another thread's connect. */
    if (outer && pql_shim_active())
        pql_track_close(conn);
    pql_real.PQfinish(conn);
    leave();
}

PQL_EXPORT void PQreset(PGconn *conn)
{
    if (!pql_real_resolve())
        return;
    bool outer = enter();
    pql_real.PQreset(conn);
    leave();
    if (outer && pql_shim_active())
        pql_track_reset(conn);
}

PQL_EXPORT int PQresetStart(PGconn *conn)
{
    if (!pql_real_resolve())
        return 0;
    bool outer = enter();
    int ok = pql_real.PQresetStart(conn);
    leave();
    if (outer && !ok && pql_shim_active())
        pql_track_reset(conn);
    return ok;
}

PQL_EXPORT PostgresPollingStatusType PQresetPoll(PGconn *conn)
{
    if (!pql_real_resolve())
        return PGRES_POLLING_FAILED;
    bool outer = enter();
    PostgresPollingStatusType st = pql_real.PQresetPoll(conn);
    leave();
    if (outer && pql_shim_active())
        pql_track_polled(conn, st);
    return st;
}

/* PQping opens and closes a connection of its own inside libpq: not the program's, never recorded. */
PQL_EXPORT PGPing PQping(const char *conninfo)
{
    if (!pql_real_resolve())
        return PQPING_NO_ATTEMPT;
    enter();
    PGPing r = pql_real.PQping(conninfo);
    leave();
    return r;
}

PQL_EXPORT PGPing PQpingParams(const char *const *keywords, const char *const *values, int expand_dbname)
{
    if (!pql_real_resolve())
        return PQPING_NO_ATTEMPT;
    enter();
    PGPing r = pql_real.PQpingParams(keywords, values, expand_dbname);
    leave();
    return r;
}

/* The query entry points keep each connection's live state (activity, transaction status, where the
 * transaction began): lock-free, outermost call only. One compare with the thread's cache (query.h)
 * tells a call libpq makes itself (PQexec -> PQsendQuery -> PQgetResult: the cache says INSIDE), which
 * goes straight to libpq, from an outermost call on the connection the thread used last, which runs the
 * inline fast path; anything else (another connection, an untracked one, the shim not started, a call
 * nested in a connect) goes through query_miss. DONE(r) says what the call did: SENT (a command was sent
 * when r is true), COMPLETED (a synchronous call: the command has ended) or GOT (PQgetResult: a command
 * may have ended when r is NULL). */
#define SENT(r)      pql_query_sent(r)
#define COMPLETED(r) ((void)(r), pql_query_completed(__builtin_frame_address(0)))
#define GOT(r)       ((r) == NULL ? pql_query_completed(__builtin_frame_address(0)) : (void)0)

/* The live state for an outermost call that missed the cache; NULL when the call goes straight to libpq
 * (nested in a connect, libpq not resolved, the shim not started, the connection not tracked). */
static struct pql_live *query_miss(const PGconn *conn)
{
    if (depth || !pql_real_ready())
        return NULL;
    return pql_query_find(conn);
}

/* The call itself, on the connection in the thread's cache, marked by MARK (the fast path's
 * pql_query_enter, or the slow path's pql_query_mark, which looks for another thread first). */
#define QUERY_CALL(type, MARK, DONE, name, args)                                                             \
    MARK;                                                                                                    \
    type r = pql_real.name args;                                                                             \
    DONE(r);                                                                                                 \
    pql_query_leave();                                                                                       \
    return r

/* A nested call costs one compare and a jump straight to libpq; anything but a hit jumps to miss_NAME,
 * out of line, and a hit to hit_NAME, which needs nothing kept across the call: neither the nested call
 * nor the miss sets up the fast path's frame. */
#define QUERY_ENTRY(type, fail, DONE, name, params, args)                                                    \
    static __attribute__((noinline)) type miss_##name params                                                 \
    {                                                                                                        \
        if (!query_miss(conn))                                                                               \
            return pql_real_ready() ? pql_real.name args : fail;                                             \
        QUERY_CALL(type, pql_query_mark(conn), DONE, name, args);                                            \
    }                                                                                                        \
    static __attribute__((noinline)) type hit_##name params                                                  \
    {                                                                                                        \
        QUERY_CALL(type, pql_query_enter(), DONE, name, args);                                               \
    }                                                                                                        \
    PQL_EXPORT type name params                                                                              \
    {                                                                                                        \
        uintptr_t cached = pql_query_tls.key;                                                                \
        if (pql_query_nested(cached))                                                                        \
            return pql_real.name args;                                                                       \
        if (__builtin_expect(!pql_query_hit(conn, cached), 0))                                               \
            return miss_##name args;                                                                         \
        return hit_##name args;                                                                              \
    }

QUERY_ENTRY(PGresult *, NULL, COMPLETED, PQexec, (PGconn * conn, const char *query), (conn, query))

QUERY_ENTRY(PGresult *, NULL, COMPLETED, PQexecParams,
            (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,
             const char *const *paramValues, const int *paramLengths, const int *paramFormats,
             int resultFormat),
            (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat))

QUERY_ENTRY(PGresult *, NULL, COMPLETED, PQexecPrepared,
            (PGconn * conn, const char *stmtName, int nParams, const char *const *paramValues,
             const int *paramLengths, const int *paramFormats, int resultFormat),
            (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat))

QUERY_ENTRY(PGresult *, NULL, COMPLETED, PQprepare,
            (PGconn * conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes),
            (conn, stmtName, query, nParams, paramTypes))

QUERY_ENTRY(int, 0, SENT, PQsendQuery, (PGconn * conn, const char *query), (conn, query))

QUERY_ENTRY(int, 0, SENT, PQsendQueryParams,
            (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,
             const char *const *paramValues, const int *paramLengths, const int *paramFormats,
             int resultFormat),
            (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat))

QUERY_ENTRY(int, 0, SENT, PQsendQueryPrepared,
            (PGconn * conn, const char *stmtName, int nParams, const char *const *paramValues,
             const int *paramLengths, const int *paramFormats, int resultFormat),
            (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat))

QUERY_ENTRY(int, 0, SENT, PQsendPrepare,
            (PGconn * conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes),
            (conn, stmtName, query, nParams, paramTypes))

QUERY_ENTRY(PGresult *, NULL, GOT, PQgetResult, (PGconn * conn), (conn))

/* pqleak's own message for a connection it refused at the cap; libpq's for every other. */
PQL_EXPORT char *PQerrorMessage(const PGconn *conn)
{
    if (!pql_real_resolve())
        return (char *)"";
    char *msg = pql_track_refusal_message(conn);
    return msg ? msg : pql_real.PQerrorMessage(conn);
}

PQL_EXPORT void _exit(int status)
{
    pql_shim_exit(status);
}

PQL_EXPORT void _Exit(int status)
{
    pql_shim_exit(status);
}
