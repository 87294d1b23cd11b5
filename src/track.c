/* Connection events to registry records: captures the open stack (raw addresses only), copies the
 * target through libpq's accessors, keeps state and server pid current, and writes trace lines. */
#define _GNU_SOURCE
#include "track.h"

#include "log.h"
#include "real.h"
#include "registry.h"
#include "shim.h"
#include "stack.h"
#include "target.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

static struct pql_target_api target_api(void)
{
    return (struct pql_target_api){pql_real.PQhost, pql_real.PQport, pql_real.PQdb,          pql_real.PQuser,
                                   pql_real.PQpass, pql_real.PQconninfo, pql_real.PQconninfoFree};
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *state_name(enum pql_state s)
{
    return s == PQL_OK ? "ok" : s == PQL_BAD ? "failed" : "connecting";
}

void pql_track_open(PGconn *conn, bool nonblocking)
{
    if (!conn) /* libpq ran out of memory: nothing to track */
        return;
    const struct pql_settings *set = pql_shim_settings();
    struct pql_conn rec;
    memset(&rec, 0, sizeof(rec));
    rec.pid = getpid();
    rec.tid = gettid();
    rec.opened_wall = clock_s(CLOCK_REALTIME);
    rec.opened_mono = clock_s(CLOCK_MONOTONIC);
    ConnStatusType st = pql_real.PQstatus(conn);
    rec.state = st == CONNECTION_OK ? PQL_OK : st == CONNECTION_BAD ? PQL_BAD : PQL_CONNECTING;
    if (!nonblocking && rec.state == PQL_CONNECTING)
        rec.state = PQL_BAD;
    rec.server_pid = rec.state == PQL_OK ? pql_real.PQbackendPID(conn) : 0;
    struct pql_target_api api = target_api();
    pql_target_from_conn(&rec.target, conn, &api);
    uintptr_t frames[PQL_MAX_FRAMES];
    int n = pql_stack_capture(frames, set->stack_depth);
    rec.stack = pql_stack_intern(frames, n);
    uint64_t id = pql_registry_add(conn, &rec);
    if (!id)
        pql_log("out of memory: a connection is not tracked");
    else if (set->trace)
        pql_log("open #%llu %s host=%s port=%s dbname=%s user=%s (thread %d)", (unsigned long long)id,
                state_name(rec.state), rec.target.host, rec.target.port, rec.target.dbname, rec.target.user,
                (int)rec.tid);
}

static void set_from_status(PGconn *conn, enum pql_state state)
{
    struct pql_target t;
    struct pql_target_api api = target_api();
    pql_target_from_conn(&t, conn, &api);
    int server_pid = state == PQL_OK ? pql_real.PQbackendPID(conn) : 0;
    if (pql_registry_set_state(conn, state, server_pid, &t) && pql_shim_settings()->trace)
        pql_log("%s host=%s port=%s dbname=%s user=%s", state == PQL_OK ? "connected" : "connect failed",
                t.host, t.port, t.dbname, t.user);
}

void pql_track_polled(PGconn *conn, PostgresPollingStatusType st)
{
    if (conn && st == PGRES_POLLING_OK)
        set_from_status(conn, PQL_OK);
    else if (conn && st == PGRES_POLLING_FAILED)
        set_from_status(conn, PQL_BAD);
}

void pql_track_reset(PGconn *conn)
{
    if (conn)
        set_from_status(conn, pql_real.PQstatus(conn) == CONNECTION_OK ? PQL_OK : PQL_BAD);
}

void pql_track_close(PGconn *conn)
{
    struct pql_conn rec;
    if (conn && pql_registry_remove(conn, &rec) && pql_shim_settings()->trace)
        pql_log("close #%llu after %.3f s", (unsigned long long)rec.id,
                clock_s(CLOCK_MONOTONIC) - rec.opened_mono);
}
