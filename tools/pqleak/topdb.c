/* The server's side of `pqleak top` (topmodel.h): one libpq connection and one query of
 * pg_stat_activity per server, and the join of tracked connections to backends by pid. The only file of
 * the command that calls libpq. Command-line process only; single-threaded. */
#include "topmodel.h"

#include "names.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT "5" /* seconds; a server that does not answer must not hold the whole screen */

/* Every client backend but our own, with max_connections on every row; the outer join keeps one row
 * (pid NULL) when there is no other backend, so that max_connections is known anyway. Times in the
 * reports' format (UTC, milliseconds). 12 columns, read by take_rows. */
static const char activity_sql[] =
    "SELECT current_setting('max_connections'), a.pid, a.state, "
    "to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "to_char(a.query_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "a.query, a.wait_event, a.application_name, host(a.client_addr), a.client_port, "
    "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "extract(epoch FROM now() - a.xact_start) "
    "FROM (SELECT 1) one LEFT JOIN pg_stat_activity a "
    "ON a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() ORDER BY a.pid";

/* Connects to host:port (either NULL: from db or the environment) with db's other parameters (a
 * conninfo string, or NULL for the caller's PG* environment). */
static PGconn *connect_to(const char *db, const char *host, const char *port)
{
    const char *kw[8], *val[8];
    int n = 0;
    kw[n] = "connect_timeout", val[n++] = CONNECT_TIMEOUT;
    /* pg_stat_activity is the same in every database: without one named, the one every cluster has. */
    kw[n] = "dbname", val[n++] = db ? db : getenv("PGDATABASE") ? NULL : "postgres";
    if (host && *host)
        kw[n] = "host", val[n++] = host;
    if (port && *port)
        kw[n] = "port", val[n++] = port;
    kw[n] = "client_encoding", val[n++] = "UTF8"; /* the JSON is UTF-8 */
    kw[n] = "application_name", val[n++] = "pqleak top";
    kw[n] = NULL, val[n] = NULL;
    return PQconnectdbParams(kw, val, db != NULL);
}

/* libpq's message as one line (it never holds the password). Caller frees. */
static char *one_line(const char *m)
{
    char *s = cli_xstrdup(m && *m ? m : "unknown error");
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    return s;
}

static char *opt_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : cli_xstrdup(PQgetvalue(res, row, col));
}

/* Reads the rows of activity_sql into s. */
static void take_rows(struct top_server *s, const PGresult *res)
{
    int rows = PQntuples(res);
    s->b = cli_xcalloc(rows ? (size_t)rows : 1, sizeof *s->b);
    for (int i = 0; i < rows; i++) {
        if (i == 0)
            s->max_connections = strtol(PQgetvalue(res, i, 0), NULL, 10);
        if (PQgetisnull(res, i, 1))
            continue;
        struct top_backend *b = &s->b[s->nb++];
        b->pid = strtol(PQgetvalue(res, i, 1), NULL, 10);
        b->state = opt_str(res, i, 2);
        b->xact_start = opt_str(res, i, 3);
        b->query_start = opt_str(res, i, 4);
        b->query = opt_str(res, i, 5);
        b->wait_event = opt_str(res, i, 6);
        b->application_name = opt_str(res, i, 7);
        b->client_addr = opt_str(res, i, 8);
        b->client_port = PQgetisnull(res, i, 9) ? 0 : strtol(PQgetvalue(res, i, 9), NULL, 10);
        b->backend_start = opt_str(res, i, 10);
        b->xact_age = PQgetisnull(res, i, 11) ? -1 : strtod(PQgetvalue(res, i, 11), NULL);
    }
}

/* Runs the query on an open connection; false with s->error set (one line). */
static bool query(struct top_server *s, PGconn *conn)
{
    char *why = NULL;
    if (PQstatus(conn) != CONNECTION_OK) {
        why = cli_xasprintf("cannot connect: %s", PQerrorMessage(conn));
    } else {
        PGresult *res = PQexec(conn, activity_sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == 12)
            take_rows(s, res);
        else
            why = cli_xasprintf("cannot read pg_stat_activity: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    if (!why)
        return true;
    s->error = one_line(why);
    free(why);
    return false;
}

static void join_conns(struct top_round *r, struct top_server *s)
{
    for (size_t i = 0; i < r->nc; i++) {
        struct top_conn *c = &r->c[i];
        const json_t *spid = json_object_get(c->c, PQL_F_SERVER_PID);
        if (c->srv != s || !json_is_integer(spid))
            continue;
        for (size_t j = 0; j < s->nb; j++)
            if (s->b[j].pid == json_integer_value(spid)) {
                c->back = &s->b[j];
                s->b[j].owned = true;
            }
    }
}

void cli_top_add_default_server(struct top_round *r, const char *db)
{
    struct top_server s = {0};
    PGconn *conn = connect_to(db, NULL, NULL);
    /* libpq names the host and port it tried even when it failed. */
    const char *h = PQhost(conn), *p = PQport(conn);
    for (size_t i = 0; h && p && i < r->ns; i++)
        if (strcmp(r->s[i]->host, h) == 0 && strcmp(r->s[i]->port, p) == 0) {
            if (!r->s[i]->queried && !r->s[i]->error) { /* asked now: no second connection */
                r->s[i]->queried = query(r->s[i], conn);
            }
            PQfinish(conn);
            return;
        }
    s.host = cli_xstrdup(h ? h : "");
    s.port = cli_xstrdup(p ? p : "");
    /* Which server was meant is all the caller can be told; never the conninfo (a password). */
    s.name = h && p ? cli_xasprintf("%s:%s", h, p)
                    : cli_xstrdup(db ? "the server of --db" : "the server of the PG* environment");
    s.queried = query(&s, conn);
    PQfinish(conn);
    struct top_server *copy = cli_xmalloc(sizeof *copy);
    *copy = s;
    cli_top_add_server(r, copy);
}

void cli_top_join(struct top_round *r, const char *db)
{
    for (size_t i = 0; i < r->ns; i++) {
        struct top_server *s = r->s[i];
        if (!s->queried && !s->error) {
            PGconn *conn = connect_to(db, s->host, s->port);
            s->queried = query(s, conn);
            PQfinish(conn);
        }
        if (s->queried)
            join_conns(r, s);
    }
}

void cli_top_add_server(struct top_round *r, struct top_server *s)
{
    r->s = cli_xrealloc(r->s, (r->ns + 1) * sizeof *r->s);
    r->s[r->ns++] = s;
}

void cli_top_server_free(struct top_server *s)
{
    for (size_t i = 0; i < s->nb; i++) {
        struct top_backend *b = &s->b[i];
        free(b->state);
        free(b->xact_start);
        free(b->query_start);
        free(b->query);
        free(b->wait_event);
        free(b->application_name);
        free(b->client_addr);
        free(b->backend_start);
    }
    free(s->b);
    free(s->host);
    free(s->port);
    free(s->name);
    free(s->error);
}
