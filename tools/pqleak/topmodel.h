/* What one round of `pqleak top` gathered (top.c fills it, topdb.c joins the servers' view, topout.c
 * prints it): the tracked processes and their live reports, the servers their connections use, each
 * server's client backends, and one row per tracked connection. Command-line process only. */
#ifndef CLI_TOPMODEL_H
#define CLI_TOPMODEL_H

#include "args.h"
#include "frame.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* A server's utilization at or above these percentages of max_connections is WARNING, CRITICAL. */
#define TOP_WARN_PCT 80
#define TOP_CRIT_PCT 95

/* A process that runs the shim. */
struct top_proc {
    int pid;
    uid_t uid;
    char *user;    /* its user's name, or the uid in digits */
    char *program; /* the report's program, else /proc/PID/exe; NULL when unknown */
    char *script;  /* an interpreter's script (its first argument that is no option), or NULL */
    json_t *root;  /* its live report; NULL when it did not answer */
    char *why;     /* why it did not answer (one line), when root is NULL */
};

/* A client backend of a server, one row of pg_stat_activity. Strings are NULL where the server says
 * NULL. */
struct top_backend {
    long pid;
    char *state, *xact_start, *query_start, *query, *wait_event, *application_name, *client_addr;
    char *backend_start;
    long client_port; /* 0 when NULL (a unix socket) */
    double xact_age;  /* seconds since xact_start; < 0 when not in a transaction */
    bool owned;       /* a tracked connection of this host is this backend */
};

/* A server the tracked connections use, or the one --db names. */
struct top_server {
    char *host, *port; /* as the connections' targets name them (PQhost, PQport); "" when unknown */
    char *name;        /* "host:port", for people and for the JSON's "server" members */
    bool queried;      /* pg_stat_activity was read */
    char *error;       /* why not (one line, no password), when !queried */
    long max_connections;
    struct top_backend *b;
    size_t nb;
    size_t tracked; /* tracked connections that use it */
};

/* One tracked connection: its process and report object, and what the join found. */
struct top_conn {
    struct top_proc *proc;
    const json_t *c;          /* the report's connection object (owned by proc->root) */
    struct top_server *srv;   /* NULL when it has no server yet (failed, connecting) */
    struct top_backend *back; /* the server's row for its backend pid; NULL when not found or not queried */
    struct cli_stack site;    /* one frame: the line holding it (the headline rule); none when n is 0 */
    bool site_last_used;      /* the site is where it was last used (a pooled connection), not opened */
};

struct top_round {
    char time[32]; /* UTC, ISO 8601 with milliseconds, as the reports write it */
    struct top_proc *p;
    size_t np;
    struct top_server **s; /* each allocated alone: connections point to their server while s grows */
    size_t ns;
    struct top_conn *c;
    size_t nc;
    enum top_sort sort; /* the order of c */
};

/* Reads pg_stat_activity of every server in r (one connection and one query each, with the caller's
 * PG* environment, or db: a conninfo string whose host and port are replaced by each server's), and
 * joins each connection of r to its backend by pid. A server that cannot be queried keeps its error;
 * its connections stay unjoined. */
void cli_top_join(struct top_round *r, const char *db);

/* Adds the server that db (or, when NULL, the PG* environment) names, unless r has it already, so that
 * its unattributed backends are listed. */
void cli_top_add_default_server(struct top_round *r, const char *db);

/* Appends s (allocated by the caller, owned by r from now on) to r's servers. */
void cli_top_add_server(struct top_round *r, struct top_server *s);

/* Frees a server's strings and backends. */
void cli_top_server_free(struct top_server *s);

/* Sorts r->c: oldest transaction (server's xact_start, else the client's idle time in a transaction)
 * first, or the longest open, or the longest idle. */
void cli_top_sort(struct top_round *r, enum top_sort by);

/* The round's Nagios status: CLI_STATUS_CRITICAL or _WARNING when a server's client backends reach
 * TOP_CRIT_PCT or TOP_WARN_PCT of its max_connections; else _UNKNOWN when a process did not answer or a
 * server could not be queried; else _OK. */
int cli_top_status(const struct top_round *r);

/* Writes the round, of status (cli_top_status), as one line of JSON (schema pqleak-top/1, docs/top.md).
 * False when out failed. */
bool cli_top_write_json(FILE *out, const struct top_round *r, int status);

/* Writes the round as text: the plugin line, processes, servers, connections, unattributed backends. */
void cli_top_write_text(FILE *out, const struct top_round *r, int status);

#endif
