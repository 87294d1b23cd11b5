/* libFuzzer target: the shim's connection-target parsers (src/base/target.c) on conninfo strings, URIs and
 * keyword arrays, and on a connection's accessors (simulated from the parsed options: no network).
 * Property: no target field contains a password given, whatever other position it was given in, and
 * a value containing it is redacted whole, even where the field's size would cut it. Input: a mode
 * byte, then text in which "@PW@" stands for a random marker chosen at start-up. */
#define _GNU_SOURCE
#include "fuzz.h"
#include "target.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char marker[24];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keep_stderr();
    /* libpq's defaults come from PG* variables and service files: none, so that runs are reproducible. */
    extern char **environ;
    for (char **e = environ; *e;) {
        if (!strncmp(*e, "PG", 2)) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
            unsetenv(name);
        } else {
            e++;
        }
    }
    setenv("PGSYSCONFDIR", "/nonexistent-pqleak-fuzz", 1);
    setenv("PGSERVICEFILE", "/nonexistent-pqleak-fuzz/service", 1);
    /* Letters and digits: a valid bare conninfo value and URI component, never quoted or encoded. */
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)(rand() ^ getpid());
    memcpy(marker, "Pw", 2);
    for (size_t i = 0; i < sizeof rnd; i++)
        marker[2 + i] = alnum[rnd[i] % (sizeof alnum - 1)];
    marker[18] = '\0';
    /* To reproduce a failure, give the marker it printed. */
    const char *fixed = getenv("PQLEAK_FUZZ_MARKER");
    if (fixed && *fixed)
        snprintf(marker, sizeof marker, "%s", fixed);
    return 0;
}

/* The input text with every "@PW@" replaced by the marker; NUL bytes end it, as they would in C. */
static char *expand(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *out = malloc(len * (sizeof marker) / 4 + 64);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (i + 4 <= len && !memcmp(data + i, "@PW@", 4)) {
            o += (size_t)sprintf(out + o, "%s", marker);
            i += 4;
        } else {
            out[o++] = (char)data[i++];
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- libpq's accessors, simulated from parsed options ---- */

static const char *sim_text;
static PQconninfoOption *sim_opts;
static ConnStatusType sim_status;

static char *opt(const char *name)
{
    for (PQconninfoOption *o = sim_opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, name))
            return o->val;
    return NULL;
}

static char *sim_host(const PGconn *c) { (void)c; return opt("host") ? opt("host") : opt("hostaddr"); }
static char *sim_port(const PGconn *c) { (void)c; return opt("port"); }
static char *sim_db(const PGconn *c) { (void)c; return opt("dbname"); }
static char *sim_user(const PGconn *c) { (void)c; return opt("user"); }
static char *sim_pass(const PGconn *c) { (void)c; return opt("password"); }
static ConnStatusType sim_stat(const PGconn *c) { (void)c; return sim_status; }
static PQconninfoOption *sim_conninfo(PGconn *c) { (void)c; return PQconninfoParse(sim_text, NULL); }
static const char *sim_param(const PGconn *c, const char *name)
{
    (void)c;
    return !strcmp(name, "application_name") ? opt("application_name") : NULL;
}

/* ---- the property ---- */

/* source: the whole value the field was given, when the harness knows it (NULL otherwise). */
static void check_field(const char *name, const char *field, size_t size, const char *pw, const char *source,
                        const char *input)
{
    size_t len = strnlen(field, size);
    if (len == size)
        fuzz_fail("target.%s is not NUL-terminated\ninput: %s", name, input);
    /* "[redacted]" itself may contain a short password ("red"): that is no leak. */
    if (!pw || !*pw || !strcmp(field, "[redacted]"))
        return;
    if (strstr(field, pw))
        fuzz_fail("target.%s contains the password '%s': '%s' (PQLEAK_FUZZ_MARKER=%s)\ninput: %s", name, pw, field,
                  marker, input);
    /* A value that contains the password must be redacted whole, even where the field keeps only the part
     * of it before the password: a value cut inside the password would keep its start. */
    if (source && strstr(source, pw))
        fuzz_fail("target.%s was given a value with the password in it but shows '%s' (PQLEAK_FUZZ_MARKER=%s)\n"
                  "input: %s", name, field, marker, input);
}

/* The value of an option, NULL when absent or empty. */
static const char *value_of(PQconninfoOption *opts, const char *name)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, name))
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

/* opts: the parsed options the fields came from, when known (NULL for keyword arrays). */
static void check(const struct pql_target *t, const char *pw, PQconninfoOption *opts, const char *input)
{
    const char *host = value_of(opts, "host") ? value_of(opts, "host") : value_of(opts, "hostaddr");
    check_field("host", t->host, PQL_TARGET_HOST_MAX + 1, pw, host, input);
    check_field("port", t->port, PQL_TARGET_PORT_MAX + 1, pw, value_of(opts, "port"), input);
    check_field("dbname", t->dbname, PQL_TARGET_NAME_MAX + 1, pw, value_of(opts, "dbname"), input);
    check_field("user", t->user, PQL_TARGET_NAME_MAX + 1, pw, value_of(opts, "user"), input);
    check_field("application_name", t->appname, PQL_TARGET_NAME_MAX + 1, pw, value_of(opts, "application_name"), input);
}

/* The password of a conninfo string or URI, or NULL (owned by the caller). */
static char *password_of(const char *conninfo)
{
    PQconninfoOption *o = PQconninfoParse(conninfo, NULL), *p;
    char *pw = NULL;
    for (p = o; p && p->keyword; p++)
        if (!strcmp(p->keyword, "password") && p->val && *p->val)
            pw = strdup(p->val);
    PQconninfoFree(o);
    return pw;
}

static bool is_connstr(const char *v)
{
    return v && (strchr(v, '=') || !strncmp(v, "postgresql://", 13) || !strncmp(v, "postgres://", 11));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return -1;
    int mode = data[0] % 5;
    char *text = expand(data + 1, size - 1);
    struct pql_target_api api = {sim_host,        sim_port,         sim_db,          sim_user,
                                 sim_pass,        sim_conninfo,     PQconninfoFree,  PQconninfoParse,
                                 PQconndefaults,  PQfreemem,        sim_stat,        sim_param};
    struct pql_target t;
    if (mode == 0 || mode >= 3) {
        char *pw = password_of(text);
        if (mode == 0) {
            pql_target_from_options(&t, text, NULL, NULL, 0, &api);
        } else {
            sim_text = text;
            sim_opts = PQconninfoParse(text, NULL);
            sim_status = mode == 3 ? CONNECTION_OK : CONNECTION_BAD;
            static char dummy;
            pql_target_from_conn(&t, (PGconn *)&dummy, &api);
            PQconninfoFree(sim_opts);
            sim_opts = NULL;
        }
        PQconninfoOption *opts = PQconninfoParse(text, NULL);
        check(&t, pw, opts, text);
        PQconninfoFree(opts);
        free(pw);
    } else {
        /* Keyword arrays: one "keyword=value" a line; a line without '=' gives a NULL value. */
        const char *kw[33], *val[33];
        int n = 0;
        for (char *line = text, *next; line && n < 32; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            char *eq = strchr(line, '=');
            if (eq)
                *eq = '\0';
            kw[n] = line;
            val[n++] = eq ? eq + 1 : NULL;
        }
        kw[n] = val[n] = NULL;
        int expand_dbname = mode == 2;
        pql_target_from_options(&t, NULL, kw, val, expand_dbname, &api);
        /* The passwords given: the last non-empty password keyword (libpq ignores empty values), and the
         * one inside the first dbname when that is expanded as a connection string. */
        const char *pw = NULL;
        char *inner = NULL;
        bool expanded = false;
        for (int i = 0; i < n; i++) {
            if (!strcmp(kw[i], "password") && val[i] && *val[i])
                pw = val[i];
            if (expand_dbname && !expanded && !strcmp(kw[i], "dbname") && is_connstr(val[i])) {
                inner = password_of(val[i]);
                expanded = true;
            }
        }
        check(&t, pw, NULL, "(keyword arrays)");
        check(&t, inner, NULL, "(keyword arrays, expanded dbname)");
        free(inner);
    }
    free(text);
    return 0;
}
