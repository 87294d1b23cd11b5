/* Connection targets, copied field by field from libpq's accessors; passwords never stored. */
#include "target.h"

#include <stdio.h>
#include <string.h>

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

void pql_target_scrub(struct pql_target *t, const char *secret)
{
    if (!secret || !*secret)
        return;
    char *fields[] = {t->host, t->port, t->dbname, t->user, t->appname};
    size_t sizes[] = {sizeof(t->host), sizeof(t->port), sizeof(t->dbname), sizeof(t->user),
                      sizeof(t->appname)};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strstr(fields[i], secret))
            copy(fields[i], sizes[i], "[redacted]");
}

void pql_target_from_conn(struct pql_target *t, PGconn *conn, const struct pql_target_api *api)
{
    memset(t, 0, sizeof(*t));
    if (!conn)
        return;
    copy(t->host, sizeof(t->host), api->host(conn));
    copy(t->port, sizeof(t->port), api->port(conn));
    copy(t->dbname, sizeof(t->dbname), api->db(conn));
    copy(t->user, sizeof(t->user), api->user(conn));
    if (api->status(conn) == CONNECTION_OK) {
        /* The server reports application_name: far cheaper than building the whole PQconninfo array. */
        copy(t->appname, sizeof(t->appname), api->parameter_status(conn, "application_name"));
    } else {
        PQconninfoOption *opts = api->conninfo(conn);
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
            if (!strcmp(o->keyword, "application_name") && o->val)
                copy(t->appname, sizeof(t->appname), o->val);
        if (opts)
            api->conninfo_free(opts);
    }
    /* PQpass is the password given (in the conninfo, a URI or the keywords), used or not. */
    pql_target_scrub(t, api->pass(conn));
}

static void apply(struct pql_target *t, const char *k, const char *v, const char **password)
{
    if (!v || !*v)
        return;
    if (!strcmp(k, "host"))
        copy(t->host, sizeof(t->host), v);
    else if (!strcmp(k, "hostaddr") && !*t->host)
        copy(t->host, sizeof(t->host), v);
    else if (!strcmp(k, "port"))
        copy(t->port, sizeof(t->port), v);
    else if (!strcmp(k, "dbname"))
        copy(t->dbname, sizeof(t->dbname), v);
    else if (!strcmp(k, "user"))
        copy(t->user, sizeof(t->user), v);
    else if (!strcmp(k, "application_name"))
        copy(t->appname, sizeof(t->appname), v);
    else if (!strcmp(k, "password"))
        *password = v;
}

/* Applies a conninfo string or URI; the password it holds is scrubbed before its storage goes. */
static void apply_conninfo(struct pql_target *t, const char *conninfo, const struct pql_target_api *api)
{
    char *err = NULL;
    PQconninfoOption *opts = api->conninfo_parse(conninfo, &err);
    if (err)
        api->freemem(err);
    const char *password = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        apply(t, o->keyword, o->val, &password);
    pql_target_scrub(t, password);
    if (opts)
        api->conninfo_free(opts);
}

static bool is_connstr(const char *v)
{
    return v && (strchr(v, '=') || !strncmp(v, "postgresql://", 13) || !strncmp(v, "postgres://", 11));
}

void pql_target_from_options(struct pql_target *t, const char *conninfo, const char *const *keywords,
                             const char *const *values, int expand_dbname, const struct pql_target_api *api)
{
    memset(t, 0, sizeof(*t));
    const char *password = NULL;
    if (conninfo) {
        apply_conninfo(t, conninfo, api);
    } else {
        bool expanded = false;
        for (int i = 0; keywords && keywords[i]; i++) {
            if (expand_dbname && !expanded && !strcmp(keywords[i], "dbname") && is_connstr(values[i])) {
                apply_conninfo(t, values[i], api);
                expanded = true;
            } else {
                apply(t, keywords[i], values[i], &password);
            }
        }
    }
    struct pql_target given = *t;
    PQconninfoOption *defs = api->conndefaults();
    const char *unused = NULL;
    for (PQconninfoOption *o = defs; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "password"))
            continue;
        struct pql_target d;
        memset(&d, 0, sizeof(d));
        apply(&d, o->keyword, o->val, &unused);
        if (!*given.host && *d.host)
            copy(t->host, sizeof(t->host), d.host);
        if (!*given.port && *d.port)
            copy(t->port, sizeof(t->port), d.port);
        if (!*given.dbname && *d.dbname)
            copy(t->dbname, sizeof(t->dbname), d.dbname);
        if (!*given.user && *d.user)
            copy(t->user, sizeof(t->user), d.user);
    }
    if (defs)
        api->conninfo_free(defs);
    if (!*t->dbname)
        copy(t->dbname, sizeof(t->dbname), t->user);
    pql_target_scrub(t, password);
}

bool pql_target_same(const struct pql_target *a, const struct pql_target *b)
{
    return !strcmp(a->host, b->host) && !strcmp(a->port, b->port) && !strcmp(a->dbname, b->dbname) &&
           !strcmp(a->user, b->user);
}
