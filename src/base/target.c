/* Connection targets, copied field by field from libpq's accessors; passwords never stored. Every
 * password given is known before any field is copied, and a value is checked whole, before it is cut
 * to its field's size: a cut copy could otherwise keep the start of a password. */
#include "target.h"

#include <stdio.h>
#include <string.h>

/* The passwords given for one connection (borrowed): a conninfo's, the keyword arrays', the expanded
 * dbname's, the environment's default. */
struct secrets {
    const char *v[8];
    int n;
};

/* Beyond eight, a new one replaces the last: the one given last is the one libpq uses. */
static void add_secret(struct secrets *s, const char *v)
{
    if (!v || !*v)
        return;
    if (s->n == (int)(sizeof(s->v) / sizeof(s->v[0])))
        s->n--;
    s->v[s->n++] = v;
}

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

/* Copies src, or "[redacted]" when src contains one of the secrets. */
static void copy_safe(char *dst, size_t len, const char *src, const struct secrets *s)
{
    for (int i = 0; src && i < s->n; i++) {
        if (strstr(src, s->v[i])) {
            copy(dst, len, "[redacted]");
            return;
        }
    }
    copy(dst, len, src);
}

/* True when a server's application_name may be an altered copy of the name given: the server replaces
 * each byte outside printable ASCII ('?' before PostgreSQL 16, "\\xNN" since) and cuts the name to
 * NAMEDATALEN - 1 (63) bytes, so a password in the given name may come back out of strstr's reach. */
static bool altered(const char *echo)
{
    return strlen(echo) >= 63 || strchr(echo, '?') || strstr(echo, "\\x");
}

void pql_target_from_conn(struct pql_target *t, PGconn *conn, const struct pql_target_api *api)
{
    memset(t, 0, sizeof(*t));
    if (!conn)
        return;
    /* PQpass is the password given (in the conninfo, a URI or the keywords), used or not. */
    struct secrets sec = {{0}, 0};
    add_secret(&sec, api->pass(conn));
    copy_safe(t->host, sizeof(t->host), api->host(conn), &sec);
    copy_safe(t->port, sizeof(t->port), api->port(conn), &sec);
    copy_safe(t->dbname, sizeof(t->dbname), api->db(conn), &sec);
    copy_safe(t->user, sizeof(t->user), api->user(conn), &sec);
    const char *echo = NULL;
    if (api->status(conn) == CONNECTION_OK) {
        /* The server reports application_name: far cheaper than building the whole PQconninfo array. */
        echo = api->parameter_status(conn, "application_name");
        copy_safe(t->appname, sizeof(t->appname), echo, &sec);
        if (sec.n == 0 || !echo || !altered(echo))
            return;
    }
    /* The names the client gave. When the server's echo may be an altered copy of one of them, a
     * password in the given name hides the echo too. */
    bool hide = false;
    PQconninfoOption *opts = api->conninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val ||
            (strcmp(o->keyword, "application_name") && strcmp(o->keyword, "fallback_application_name")))
            continue;
        if (!echo && !strcmp(o->keyword, "application_name"))
            copy_safe(t->appname, sizeof(t->appname), o->val, &sec);
        for (int i = 0; echo && i < sec.n; i++)
            hide = hide || strstr(o->val, sec.v[i]);
    }
    if (opts)
        api->conninfo_free(opts);
    if (hide)
        copy(t->appname, sizeof(t->appname), "[redacted]");
}

static void apply(struct pql_target *t, const char *k, const char *v, const struct secrets *sec)
{
    if (!v || !*v)
        return;
    if (!strcmp(k, "host"))
        copy_safe(t->host, sizeof(t->host), v, sec);
    else if (!strcmp(k, "hostaddr") && !*t->host)
        copy_safe(t->host, sizeof(t->host), v, sec);
    else if (!strcmp(k, "port"))
        copy_safe(t->port, sizeof(t->port), v, sec);
    else if (!strcmp(k, "dbname"))
        copy_safe(t->dbname, sizeof(t->dbname), v, sec);
    else if (!strcmp(k, "user"))
        copy_safe(t->user, sizeof(t->user), v, sec);
    else if (!strcmp(k, "application_name"))
        copy_safe(t->appname, sizeof(t->appname), v, sec);
}

static const char *option(const PQconninfoOption *opts, const char *name)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, name))
            return o->val;
    return NULL;
}

/* Parses a conninfo string or URI; NULL when malformed. Free with api->conninfo_free. */
static PQconninfoOption *parse(const char *conninfo, const struct pql_target_api *api)
{
    char *err = NULL;
    PQconninfoOption *opts = api->conninfo_parse(conninfo, &err);
    if (err)
        api->freemem(err);
    return opts;
}

static bool is_connstr(const char *v)
{
    return v && (strchr(v, '=') || !strncmp(v, "postgresql://", 13) || !strncmp(v, "postgres://", 11));
}

void pql_target_from_options(struct pql_target *t, const char *conninfo, const char *const *keywords,
                             const char *const *values, int expand_dbname, const struct pql_target_api *api)
{
    memset(t, 0, sizeof(*t));
    /* Every password first, so that no field is copied before all of them are known: the expanded
     * dbname's password must also hide an application_name given in a later keyword. */
    struct secrets sec = {{0}, 0};
    PQconninfoOption *defs = api->conndefaults();
    add_secret(&sec, option(defs, "password")); /* PGPASSWORD: first, as the least likely used */
    PQconninfoOption *parsed = NULL;            /* conninfo, or the expanded dbname */
    int expanded = -1;                          /* index of the expanded dbname keyword */
    if (conninfo) {
        parsed = parse(conninfo, api);
        add_secret(&sec, option(parsed, "password"));
    } else {
        for (int i = 0; keywords && keywords[i]; i++) {
            if (!strcmp(keywords[i], "password"))
                add_secret(&sec, values[i]);
            if (expand_dbname && expanded < 0 && !strcmp(keywords[i], "dbname") && is_connstr(values[i])) {
                parsed = parse(values[i], api);
                add_secret(&sec, option(parsed, "password"));
                expanded = i;
            }
        }
    }

    if (conninfo) {
        for (PQconninfoOption *o = parsed; o && o->keyword; o++)
            apply(t, o->keyword, o->val, &sec);
    } else {
        for (int i = 0; keywords && keywords[i]; i++) {
            if (i == expanded) {
                for (PQconninfoOption *o = parsed; o && o->keyword; o++)
                    apply(t, o->keyword, o->val, &sec);
            } else {
                apply(t, keywords[i], values[i], &sec);
            }
        }
    }
    struct pql_target given = *t;
    for (PQconninfoOption *o = defs; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "password"))
            continue;
        struct pql_target d;
        memset(&d, 0, sizeof(d));
        apply(&d, o->keyword, o->val, &sec);
        if (!*given.host && *d.host)
            copy(t->host, sizeof(t->host), d.host);
        if (!*given.port && *d.port)
            copy(t->port, sizeof(t->port), d.port);
        if (!*given.dbname && *d.dbname)
            copy(t->dbname, sizeof(t->dbname), d.dbname);
        if (!*given.user && *d.user)
            copy(t->user, sizeof(t->user), d.user);
    }
    if (!*t->dbname)
        copy(t->dbname, sizeof(t->dbname), t->user);
    /* The secrets point into these: freed last. */
    if (defs)
        api->conninfo_free(defs);
    if (parsed)
        api->conninfo_free(parsed);
}

bool pql_target_same(const struct pql_target *a, const struct pql_target *b)
{
    return !strcmp(a->host, b->host) && !strcmp(a->port, b->port) && !strcmp(a->dbname, b->dbname) &&
           !strcmp(a->user, b->user);
}
