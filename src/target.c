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
    PQconninfoOption *opts = api->conninfo(conn);
    const char *given_password = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "application_name") && o->val)
            copy(t->appname, sizeof(t->appname), o->val);
        else if (!strcmp(o->keyword, "password"))
            given_password = o->val;
    }
    /* A password given in the conninfo but not (yet) used must not leak either. */
    pql_target_scrub(t, given_password);
    if (opts)
        api->conninfo_free(opts);
    pql_target_scrub(t, api->pass(conn));
}

bool pql_target_same(const struct pql_target *a, const struct pql_target *b)
{
    return !strcmp(a->host, b->host) && !strcmp(a->port, b->port) && !strcmp(a->dbname, b->dbname) &&
           !strcmp(a->user, b->user);
}
