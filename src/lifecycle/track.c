/* Connection events to registry records: captures the open stack (raw addresses only), copies the
 * target through libpq's accessors, keeps state and server pid current, takes and gives back checkout
 * slots, and has the output layer word refusals, misuse and trace lines. Application threads, called
 * by the interposers (outermost call only); never in signal context. */
#define _GNU_SOURCE
#include "track.h"

#include "checkout.h"
#include "log.h"
#include "misuse.h"
#include "proc.h"
#include "query.h"
#include "real.h"
#include "registry.h"
#include "reporter.h"
#include "runtime.h"
#include "stack.h"
#include "target.h"
#include "testname.h"
#include "text.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

static const struct pql_settings *cfg;
static bool caps; /* a cap is set: connects check out a slot */

/* Inline: 12 loads of atomic members, out of line a call and a copy of the struct per connect. */
static inline __attribute__((always_inline)) struct pql_target_api target_api(void)
{
    return (struct pql_target_api){
        pql_real.PQhost,         pql_real.PQport,     pql_real.PQdb,           pql_real.PQuser,
        pql_real.PQpass,         pql_real.PQconninfo, pql_real.PQconninfoFree, pql_real.PQconninfoParse,
        pql_real.PQconndefaults, pql_real.PQfreemem,  pql_real.PQstatus,       pql_real.PQparameterStatus};
}

/* Messages of refused connections, by PGconn, until PQfinish. refusals_live lets PQerrorMessage skip
 * the lock when there is none, which is always the case without caps. */
struct refusal {
    uintptr_t conn; /* masked like the registry's keys: LeakSanitizer must not see a reference */
    struct refusal *next;
    char msg[];
};
static pthread_mutex_t refusals_lock = PTHREAD_MUTEX_INITIALIZER;
static struct refusal *refusals;
static atomic_int refusals_live;

static void refusal_add(const PGconn *conn, const char *msg)
{
    struct refusal *r = malloc(sizeof(*r) + strlen(msg) + 1);
    if (!r)
        return;
    r->conn = pql_registry_key(conn);
    strcpy(r->msg, msg);
    pthread_mutex_lock(&refusals_lock);
    r->next = refusals;
    refusals = r;
    atomic_fetch_add(&refusals_live, 1);
    pthread_mutex_unlock(&refusals_lock);
}

static void refusal_remove(const PGconn *conn)
{
    if (atomic_load_explicit(&refusals_live, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&refusals_lock);
    for (struct refusal **p = &refusals; *p; p = &(*p)->next) {
        if ((*p)->conn == pql_registry_key(conn)) {
            struct refusal *r = *p;
            *p = r->next;
            free(r);
            atomic_fetch_sub(&refusals_live, 1);
            break;
        }
    }
    pthread_mutex_unlock(&refusals_lock);
}

char *pql_track_refusal_message(const PGconn *conn)
{
    if (atomic_load_explicit(&refusals_live, memory_order_relaxed) == 0 || !conn)
        return NULL;
    char *msg = NULL;
    pthread_mutex_lock(&refusals_lock);
    for (struct refusal *r = refusals; r && !msg; r = r->next)
        if (r->conn == pql_registry_key(conn))
            msg = r->msg;
    pthread_mutex_unlock(&refusals_lock);
    return msg;
}

static const char *state_name(enum pql_state s)
{
    return s == PQL_OK ? "ok" : s == PQL_BAD ? "failed" : "connecting";
}

/* The local TCP port, which pg_stat_activity shows as client_port; 0 for a unix socket. */
static int client_port(const PGconn *conn)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = pql_real.PQsocket(conn);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* The rare path: kept for the reports (a finding, like a leak) and warned about, with this call's stack
 * and the stack that opened the connection. closed: a forked child's PQfinish. */
static void misuse_report(const struct pql_conn *rec, bool forked, int other_tid, bool closed)
{
    uintptr_t frames[PQL_MAX_FRAMES];
    uint32_t here = pql_stack_intern(frames, pql_stack_capture(frames, cfg->stack_depth));
    struct pql_misuse_event e = {.kind = forked ? PQL_MISUSE_FORK : PQL_MISUSE_THREADS,
                                 .conn = rec->id,
                                 .server_pid = rec->server_pid,
                                 .pid = pql_pid(),
                                 .opened_by = rec->pid,
                                 .other_tid = other_tid,
                                 .closed = closed,
                                 .time = pql_clock_s(CLOCK_REALTIME),
                                 .mono_ns = pql_mono_ns(),
                                 .stack = here,
                                 .open_stack = rec->stack,
                                 .last_use_fork = PQL_FORKS_UNKNOWN,
                                 .opener_fork = forked && rec->pid == pql_born_of ? pql_born_fork : 0};
    pql_misuse_add(&e);
    pql_text_misuse(rec, forked, other_tid, here);
}

/* Inlined: a frame of its own would be one more for every open stack's unwinding to step through. */
static inline __attribute__((always_inline)) void new_record(struct pql_conn *rec,
                                                             const struct pql_unwind_start *caller)
{
    memset(rec, 0, sizeof(*rec));
    rec->target = pql_target_empty();
    rec->pid = pql_pid();
    rec->tid = pql_tid();
    rec->opened_wall = pql_clock_s(CLOCK_REALTIME);
    rec->opened_mono = pql_clock_s(CLOCK_MONOTONIC);
    uintptr_t frames[PQL_MAX_FRAMES];
    int n = pql_stack_capture_from(frames, cfg->stack_depth, caller);
    rec->stack = pql_stack_intern(frames, n);
    rec->test = pql_testname_now();
    /* Idle: nothing sent yet. Without the query hooks nothing will say otherwise: unknown. */
    rec->tx_status = cfg->track_queries ? PQTRANS_IDLE : PQTRANS_UNKNOWN;
}

static void options_target(struct pql_target *t, const struct pql_connect_args *args)
{
    struct pql_target_api api = target_api();
    pql_target_from_options(t, args->conninfo, args->keywords, args->values, args->expand_dbname, &api);
}

PGconn *pql_track_checkout(bool nonblocking, const struct pql_connect_args *args, struct pql_slot *slot,
                           const struct pql_unwind_start *caller)
{
    memset(slot, 0, sizeof(*slot));
    if (!caps)
        return NULL;
    struct pql_target t, *target = NULL;
    if (cfg->max_conns_per_target > 0) {
        options_target(&t, args);
        target = &t;
    }
    struct pql_refusal why;
    if (pql_checkout_acquire(target, !nonblocking, slot, &why))
        return NULL;
    char msg[2048];
    pql_text_refusal(msg, sizeof(msg), &why);
    if (cfg->trace)
        pql_log("refused: %.*s", (int)strcspn(msg, "\n"), msg);
    /* A real PGconn in CONNECTION_BAD, made without any system call: an unknown option. */
    PGconn *conn = pql_real.PQconnectStart("pqleak_refused=1");
    if (!conn)
        return NULL; /* out of memory: let the real connect run rather than fail twice */
    struct pql_conn rec;
    new_record(&rec, caller);
    rec.state = PQL_BAD;
    rec.refused = true;
    if (!target) /* a refusal by PQLEAK_MAX_CONNS alone: its target, parsed only now, for the reports */
        options_target(&t, args);
    rec.target = t;
    refusal_add(conn, msg);
    pql_registry_add(conn, &rec);
    return conn;
}

void pql_track_open(PGconn *conn, bool nonblocking, const struct pql_connect_args *args,
                    struct pql_slot *slot, const struct pql_unwind_start *caller)
{
    if (!conn) { /* libpq ran out of memory: nothing to track */
        pql_checkout_release(slot);
        return;
    }
    const struct pql_settings *set = cfg;
    struct pql_conn rec;
    new_record(&rec, caller);
    ConnStatusType st = pql_real.PQstatus(conn);
    rec.state = st == CONNECTION_OK ? PQL_OK : st == CONNECTION_BAD ? PQL_BAD : PQL_CONNECTING;
    if (!nonblocking && rec.state == PQL_CONNECTING)
        rec.state = PQL_BAD;
    rec.server_pid = rec.state == PQL_OK ? pql_real.PQbackendPID(conn) : 0;
    struct pql_target_api api = target_api();
    pql_target_from_open(&rec.target, conn, args, &api);
    /* A socket directory as host: a unix socket, no port to find. */
    rec.client_port = rec.state == PQL_OK && rec.target.host[0] != '/' ? client_port(conn) : 0;
    if (rec.state == PQL_BAD)
        pql_checkout_release(slot); /* a failed connect holds no slot */
    else
        rec.slot = *slot;
    uint64_t id = pql_registry_add(conn, &rec);
    pql_reporter_ensure(set);
    pql_runtime_saw_open();
    if (!id) {
        pql_checkout_release(&rec.slot);
        pql_log("out of memory: a connection is not tracked");
    } else if (set->trace) {
        pql_log("open #%llu %s host=%s port=%s dbname=%s user=%s (thread %d)", (unsigned long long)id,
                state_name(rec.state), rec.target.host, rec.target.port, rec.target.dbname, rec.target.user,
                (int)rec.tid);
    }
}

static void set_from_status(PGconn *conn, enum pql_state state)
{
    struct pql_target t;
    struct pql_target_api api = target_api();
    pql_target_from_conn(&t, conn, &api);
    int server_pid = state == PQL_OK ? pql_real.PQbackendPID(conn) : 0;
    /* The client port is kept in the record from open; a reset connection may get a new one, which a
     * later report would miss: acceptable, pg_stat_activity also has the server pid. */
    struct pql_slot released;
    bool tracked = pql_registry_set_state(conn, state, server_pid, &t, &released);
    pql_checkout_release(&released);
    if (tracked && cfg->trace)
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
    if (!conn)
        return;
    enum pql_leak_kind kind = PQL_LEAK_UNCLOSED;
    /* Asked first: in a process without a language runtime it costs nothing, and only a teardown close
     * needs the record before it is removed. */
    if (pql_runtime_in_teardown() && pql_registry_get(conn, &rec) && rec.pid == pql_pid() &&
        !rec.refused) { /* a refused connection held nothing: freeing it is no leak */
        /* Without the query hooks, libpq itself says: the connection is still open here. */
        if (!cfg->track_queries && rec.state == PQL_OK)
            rec.tx_status = pql_real.PQtransactionStatus(conn);
        /* The runtime closes what the program forgot: work in flight is silently rolled back. */
        bool in_tx = rec.active || rec.tx_status == PQTRANS_ACTIVE || rec.tx_status == PQTRANS_INTRANS ||
                     rec.tx_status == PQTRANS_INERROR || rec.ended_in_teardown;
        kind = rec.state == PQL_OK && in_tx ? PQL_LEAK_TEARDOWN : PQL_LEAK_HELD;
    }
    if (!pql_registry_remove(conn, &rec, kind))
        return;
    /* PQfinish in a forked child sends the server a Terminate message: the parent's session ends. */
    if (rec.pid != pql_pid() && !rec.warned_fork)
        misuse_report(&rec, true, 0, true);
    if (kind != PQL_LEAK_UNCLOSED)
        pql_sym_note_modules(); /* the runtime may unload its modules before the exit report */
    if (rec.refused)
        refusal_remove(conn);
    /* A forked child closing its parent's connection frees none of its own slots. */
    if (rec.pid == pql_pid())
        pql_checkout_release(&rec.slot);
    /* After a fork: the parent's last use, for the command's hand-off rule. Without the query hooks it
     * is unknown, and no note lets the rule take the opening for it. */
    if (cfg->track_queries)
        pql_misuse_note_close(&rec);
    if (rec.suspect)
        pql_text_suspect_closed(&rec, pql_clock_s(CLOCK_MONOTONIC));
    if (cfg->trace)
        pql_log("close #%llu after %.3f s%s", (unsigned long long)rec.id,
                pql_clock_s(CLOCK_MONOTONIC) - rec.opened_mono,
                kind == PQL_LEAK_TEARDOWN ? " by the runtime's teardown, in a transaction"
                : kind == PQL_LEAK_HELD   ? " by the runtime's teardown"
                                          : "");
}

/* A query call found misuse of conn (query.h): warns with this call's stack and the open stack. */
static void track_misuse(PGconn *conn, const struct pql_misuse *m)
{
    struct pql_conn rec;
    if (!pql_registry_get(conn, &rec))
        return;
    if (m->forked)
        misuse_report(&rec, true, 0, false);
    if (m->other_tid)
        misuse_report(&rec, false, m->other_tid, false);
}

/* Another parent thread may have held the refusal table's lock. */
static void fork_child(void)
{
    pthread_mutex_init(&refusals_lock, NULL);
}

void pql_track_setup(const struct pql_settings *s)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    cfg = s;
    caps = pql_checkout_setup(s);
    pql_query_on_misuse(track_misuse);
    pql_atfork_once(&once, NULL, NULL, fork_child);
}
