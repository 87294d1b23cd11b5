/* Connection targets, copied field by field from libpq's accessors; passwords never stored. Every
 * password given is known before any field is copied, and a value is checked whole, before it is cut
 * to its field's size: a cut copy could otherwise keep the start of a password. The fields are
 * gathered in fixed buffers on the stack, then interned as one tuple in a never-freed store (one
 * hash lookup under a leaf lock, reset in a forked child). A connection whose fields all equal the
 * thread's last tuple, and hold no password, takes that tuple without any copy (same_as_last). */
#define _GNU_SOURCE
#include "target.h"

#include "proc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The fields while they are gathered. */
struct fields {
    char host[PQL_TARGET_HOST_MAX + 1];
    char port[PQL_TARGET_PORT_MAX + 1];
    char dbname[PQL_TARGET_NAME_MAX + 1];
    char user[PQL_TARGET_NAME_MAX + 1];
    char appname[PQL_TARGET_NAME_MAX + 1];
};

/* FNV-1a over the tuple's bytes: short keys, far cheaper than uthash's default on the connect path. */
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = fnv1a((const unsigned char *)(keyptr), (keylen)))
static unsigned fnv1a(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}
#define HASH_NONFATAL_OOM      1
#define uthash_nonfatal_oom(e) (store_oom = true)
static bool store_oom;
#include <uthash.h>

/* One distinct target: its five strings, back to back, are the key. */
struct tuple {
    struct pql_target t;
    UT_hash_handle hh;
    size_t len;
    char blob[];
};

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tuple *store;
static unsigned stored;

static void fork_child(void)
{
    pthread_mutex_init(&store_lock, NULL);
}

void pql_target_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
}

struct pql_target pql_target_empty(void)
{
    return (struct pql_target){"", "", "", "", ""};
}

/* A tuple's key: the five strings back to back, each with its terminator. */
struct key {
    size_t len, n[5];
    char b[sizeof(struct fields)];
};

static void make_key(struct key *k, const struct fields *f)
{
    const char *v[5] = {f->host, f->port, f->dbname, f->user, f->appname};
    k->len = 0;
    for (int i = 0; i < 5; i++) {
        k->n[i] = strlen(v[i]) + 1;
        memcpy(k->b + k->len, v[i], k->n[i]);
        k->len += k->n[i];
    }
}

/* The tuple of k, found or added; NULL when the store is full or memory ran out. Called with store_lock
 * held. */
static const struct tuple *find_or_add(const struct key *k)
{
    struct tuple *e;
    HASH_FIND(hh, store, k->b, k->len, e);
    if (e || stored >= PQL_TARGET_STORE_MAX || !(e = malloc(sizeof(*e) + k->len)))
        return e;
    memcpy(e->blob, k->b, k->len);
    e->len = k->len;
    const char **out[5] = {&e->t.host, &e->t.port, &e->t.dbname, &e->t.user, &e->t.appname};
    for (size_t i = 0, o = 0; i < 5; o += k->n[i], i++)
        *out[i] = e->blob + o;
    store_oom = false;
    HASH_ADD_KEYPTR(hh, store, e->blob, k->len, e);
    if (store_oom) {
        free(e);
        return NULL;
    }
    stored++;
    return e;
}

/* The tuple this thread interned last: a program connects to the same target again and again, and
 * finding it there takes no lock and no hash. Tuples are never freed. */
static __thread const struct tuple *last __attribute__((tls_model("initial-exec")));

/* Sets *t to the interned copy of f. A full store keeps the target without its application_name, if
 * that is there already, else "[not kept]" for every field. */
static void intern(struct pql_target *t, struct fields *f)
{
    struct key k;
    make_key(&k, f);
    const struct tuple *e = last;
    if (e && e->len == k.len && !memcmp(e->blob, k.b, k.len)) {
        *t = e->t;
        return;
    }
    pthread_mutex_lock(&store_lock);
    e = find_or_add(&k);
    if (!e) {
        strcpy(f->appname, "[not kept]");
        make_key(&k, f);
        e = find_or_add(&k);
    }
    pthread_mutex_unlock(&store_lock);
    static const char not_kept[] = "[not kept]";
    if (e)
        last = e;
    *t = e ? e->t : (struct pql_target){not_kept, not_kept, not_kept, not_kept, not_kept};
}

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

/* Copies src (NULL: "") to dst of size len, cut to len - 1 bytes. */
static void copy(char *dst, size_t len, const char *src)
{
    size_t n = src ? strnlen(src, len - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
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

static bool is_connstr(const char *v);

/* Whether a string given to libpq may set application_name: naming it, or a service (whose file may). */
static bool may_name_app(const char *v)
{
    return strstr(v, "application_name") || strstr(v, "service");
}

/* The application_name libpq takes from what a connect was given, found without building its option
 * array: *v is the value, NULL for none. False when only libpq can tell cheaply: a conninfo string or
 * expanded dbname that may name one (it would need parsing anyway), or a service. */
static bool given_appname(const struct pql_connect_args *a, const char **v)
{
    *v = NULL;
    if (getenv("PGSERVICE"))
        return false;
    if (a->conninfo && may_name_app(a->conninfo))
        return false;
    for (int i = 0; !a->conninfo && a->keywords && a->keywords[i]; i++) {
        const char *k = a->keywords[i], *val = a->values[i];
        if (!val || !*val) /* libpq ignores empty values */
            continue;
        if (!strcmp(k, "service") ||
            (a->expand_dbname && !strcmp(k, "dbname") && is_connstr(val) && may_name_app(val)))
            return false;
        if (!strcmp(k, "application_name"))
            *v = val;
    }
    if (!*v)
        *v = getenv("PGAPPNAME"); /* libpq's default */
    return true;
}

/* A connection's fields as libpq holds them (borrowed), before any check or cut. */
struct raw {
    const char *v[5]; /* host, port, dbname, user, application_name; NULL: "" */
    const char *pass; /* the password given, NULL or "" for none */
};

/* Sets *t to the thread's last tuple when every raw field equals it whole and holds no password: what a
 * program that connects to the same target again and again finds at the cost of five short compares,
 * without copying, cutting or hashing anything. */
static bool same_as_last(struct pql_target *t, const struct raw *r)
{
    const struct tuple *e = last;
    if (!e)
        return false;
    const char *kept[5] = {e->t.host, e->t.port, e->t.dbname, e->t.user, e->t.appname};
    bool secret = r->pass && *r->pass;
    for (int i = 0; i < 5; i++) {
        const char *v = r->v[i] ? r->v[i] : "";
        if (strcmp(v, kept[i]) || (secret && strstr(v, r->pass)))
            return false;
    }
    *t = e->t;
    return true;
}

/* The application_name from PQconninfo, the names the client gave: the name itself when the server has
 * not echoed one, and when the echo may be an altered copy of a given name, a password in that name
 * hides the echo too. */
static void conninfo_appname(struct fields *f, PGconn *conn, const char *echo, const struct secrets *sec,
                             const struct pql_target_api *api)
{
    bool hide = false;
    PQconninfoOption *opts = api->conninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val ||
            (strcmp(o->keyword, "application_name") && strcmp(o->keyword, "fallback_application_name")))
            continue;
        if (!echo && !strcmp(o->keyword, "application_name"))
            copy_safe(f->appname, sizeof(f->appname), o->val, sec);
        for (int i = 0; echo && i < sec->n; i++)
            hide = hide || strstr(o->val, sec->v[i]);
    }
    if (opts)
        api->conninfo_free(opts);
    if (hide)
        copy(f->appname, sizeof(f->appname), "[redacted]");
}

static void from_conn(struct pql_target *t, PGconn *conn, const struct pql_connect_args *given,
                      const struct pql_target_api *api)
{
    /* PQpass is the password given (in the conninfo, a URI or the keywords), used or not. */
    struct raw r = {{api->host(conn), api->port(conn), api->db(conn), api->user(conn), NULL},
                    api->pass(conn)};
    struct secrets sec = {{0}, 0};
    add_secret(&sec, r.pass);
    /* Where application_name comes from, when it is certain without PQconninfo. Connected: the server
     * reports it, far cheaper than building the whole PQconninfo array, unless the echo may be an
     * altered copy of a given name that held the password. Not connected: the name given, when the
     * call's arguments tell it for certain. */
    const char *echo = NULL;
    bool certain = false;
    if (api->status(conn) == CONNECTION_OK) {
        r.v[4] = echo = api->parameter_status(conn, "application_name");
        certain = sec.n == 0 || !echo || !altered(echo);
    } else if (given && given_appname(given, &r.v[4])) {
        certain = true;
    } else {
        r.v[4] = NULL; /* only PQconninfo can tell */
    }
    if (certain && same_as_last(t, &r))
        return;
    struct fields f;
    char *out[5] = {f.host, f.port, f.dbname, f.user, f.appname};
    size_t size[5] = {sizeof(f.host), sizeof(f.port), sizeof(f.dbname), sizeof(f.user), sizeof(f.appname)};
    for (int i = 0; i < 5; i++)
        copy_safe(out[i], size[i], r.v[i], &sec);
    if (!certain)
        conninfo_appname(&f, conn, echo, &sec, api);
    intern(t, &f);
}

void pql_target_from_open(struct pql_target *t, PGconn *conn, const struct pql_connect_args *args,
                          const struct pql_target_api *api)
{
    if (conn) {
        from_conn(t, conn, args, api);
    } else {
        struct fields f = {"", "", "", "", ""};
        intern(t, &f);
    }
}

void pql_target_from_conn(struct pql_target *t, PGconn *conn, const struct pql_target_api *api)
{
    pql_target_from_open(t, conn, NULL, api);
}

static void apply(struct fields *t, const char *k, const char *v, const struct secrets *sec)
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

static void from_options(struct fields *t, const char *conninfo, const char *const *keywords,
                         const char *const *values, int expand_dbname, const struct pql_target_api *api)
{
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
    struct fields given = *t;
    for (PQconninfoOption *o = defs; o && o->keyword; o++) {
        if (!strcmp(o->keyword, "password"))
            continue;
        struct fields d;
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

void pql_target_from_options(struct pql_target *t, const char *conninfo, const char *const *keywords,
                             const char *const *values, int expand_dbname, const struct pql_target_api *api)
{
    struct fields f;
    memset(&f, 0, sizeof(f));
    from_options(&f, conninfo, keywords, values, expand_dbname, api);
    intern(t, &f);
}

bool pql_target_same(const struct pql_target *a, const struct pql_target *b)
{
    return !strcmp(a->host, b->host) && !strcmp(a->port, b->port) && !strcmp(a->dbname, b->dbname) &&
           !strcmp(a->user, b->user);
}
