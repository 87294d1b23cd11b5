/* Unit tests of target extraction: the whitelisted fields come out of conninfo strings, URIs and
 * keyword arrays, and no password does, whatever field it hides in. Every case puts its password in
 * a field too (mostly application_name), so that a password the code fails to know as a secret shows
 * up in that field and fails the test. Uses libpq itself (failed connections to a socket directory
 * that does not exist: no server needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"

static const struct pql_target_api api = {PQhost,         PQport,     PQdb,           PQuser,
                                          PQpass,         PQconninfo, PQconninfoFree, PQconninfoParse,
                                          PQconndefaults, PQfreemem,  PQstatus,       PQparameterStatus};

static void assert_no_secret(const struct pql_target *t, const char *secret)
{
    const char *fields[] = {t->host, t->port, t->dbname, t->user, t->appname};
    for (int i = 0; i < 5; i++)
        assert_null(strstr(fields[i], secret));
}

static void test_conninfo(void **state)
{
    (void)state;
    PGconn *c = PQconnectdb("host=/nonexistent-dir port=6543 dbname=app user=alice password=S3cret-a "
                            "application_name=worker-S3cret-a");
    struct pql_target t;
    pql_target_from_conn(&t, c, &api);
    assert_string_equal(t.host, "/nonexistent-dir");
    assert_string_equal(t.port, "6543");
    assert_string_equal(t.dbname, "app");
    assert_string_equal(t.user, "alice");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-a");
    PQfinish(c);
}

static void test_uri(void **state)
{
    (void)state;
    PGconn *c =
        PQconnectdb("postgresql://bob:S3cret-b@/shop?host=/nonexistent-dir&application_name=web-S3cret-b");
    struct pql_target t;
    pql_target_from_conn(&t, c, &api);
    assert_string_equal(t.user, "bob");
    assert_string_equal(t.dbname, "shop");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-b");
    PQfinish(c);
}

static void test_keywords_and_password_in_other_fields(void **state)
{
    (void)state;
    const char *kw[] = {"host", "dbname", "user", "password", "application_name", NULL};
    const char *val[] = {"/nonexistent-dir", "db-S3cret-c", "carol", "S3cret-c", "S3cret-c", NULL};
    PGconn *c = PQconnectdbParams(kw, val, 0);
    struct pql_target t;
    pql_target_from_conn(&t, c, &api);
    assert_string_equal(t.user, "carol");
    assert_string_equal(t.dbname, "[redacted]");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-c");
    PQfinish(c);
}

static void test_expand_dbname(void **state)
{
    (void)state;
    const char *kw[] = {"dbname", NULL};
    const char *val[] = {
        "postgresql://dave:S3cret-d@/inv?host=/nonexistent-dir&application_name=inv-S3cret-d", NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    struct pql_target t;
    pql_target_from_conn(&t, c, &api);
    assert_string_equal(t.user, "dave");
    assert_string_equal(t.dbname, "inv");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-d");
    PQfinish(c);
}

/* Before connecting (per-target caps): the same fields from the options and libpq's defaults. */
static void test_from_options(void **state)
{
    (void)state;
    setenv("PGPORT", "7777", 1);
    setenv("PGUSER", "envuser", 1);
    struct pql_target t;
    pql_target_from_options(&t, "host=/sock dbname=app password=S3cret-e application_name=S3cret-e", NULL,
                            NULL, 0, &api);
    assert_string_equal(t.host, "/sock");
    assert_string_equal(t.port, "7777");
    assert_string_equal(t.dbname, "app");
    assert_string_equal(t.user, "envuser");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-e");

    pql_target_from_options(&t, "postgresql://u1:S3cret-f@h1:5433/d1?application_name=uri-S3cret-f", NULL,
                            NULL, 0, &api);
    assert_string_equal(t.host, "h1");
    assert_string_equal(t.port, "5433");
    assert_string_equal(t.user, "u1");
    assert_string_equal(t.dbname, "d1");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-f");

    /* The expanded dbname's password (not the password keyword's) is in its own application_name. */
    const char *kw[] = {"dbname", "port", "password", NULL};
    const char *val[] = {"postgresql://u2:S3cret-g@h2/d2?application_name=exp-S3cret-g", "6000", "S3cret-h",
                         NULL};
    pql_target_from_options(&t, NULL, kw, val, 1, &api);
    assert_string_equal(t.host, "h2");
    assert_string_equal(t.port, "6000");
    assert_string_equal(t.user, "u2");
    assert_string_equal(t.dbname, "d2");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-g");
    assert_no_secret(&t, "S3cret-h");

    /* A conninfo string as expanded dbname, its password in an application_name given in a later keyword. */
    const char *kw2[] = {"dbname", "application_name", NULL};
    const char *val2[] = {"host=h3 dbname=d3 user=u3 password=S3cret-i", "app-S3cret-i", NULL};
    pql_target_from_options(&t, NULL, kw2, val2, 1, &api);
    assert_string_equal(t.host, "h3");
    assert_string_equal(t.user, "u3");
    assert_string_equal(t.dbname, "d3");
    assert_string_equal(t.appname, "[redacted]");
    assert_no_secret(&t, "S3cret-i");

    /* No dbname: libpq uses the user name. */
    pql_target_from_options(&t, NULL, kw + 3, val + 3, 0, &api);
    assert_string_equal(t.user, "envuser");
    assert_string_equal(t.dbname, "envuser");
    unsetenv("PGPORT");
    unsetenv("PGUSER");
}

/* A connected session: application_name is the server's echo of the name given, which the server
 * cleans (each byte outside printable ASCII becomes '?', "\\xNN" since PostgreSQL 16) and cuts to 63
 * bytes. The echo below is what the server sent back; the password must not survive in it. */
static const char *echo;
static ConnStatusType status_ok(const PGconn *c)
{
    (void)c;
    return CONNECTION_OK;
}
static const char *echo_of(const PGconn *c, const char *name)
{
    (void)c;
    return strcmp(name, "application_name") == 0 ? echo : NULL;
}

/* The target of conninfo's PGconn as if connected, the server having echoed server_echo. */
static struct pql_target connected(const char *conninfo, const char *server_echo)
{
    struct pql_target_api fake = api;
    fake.status = status_ok;
    fake.parameter_status = echo_of;
    echo = server_echo;
    PGconn *c = PQconnectdb(conninfo);
    struct pql_target t;
    pql_target_from_conn(&t, c, &fake);
    PQfinish(c);
    return t;
}

static void check_echo(const char *conninfo, const char *server_echo, const char *want, const char *secret)
{
    struct pql_target t = connected(conninfo, server_echo);
    assert_string_equal(t.appname, want);
    assert_no_secret(&t, secret);
}

static void test_connected_echo(void **state)
{
    (void)state;
    /* Cut at 63 bytes in the middle of the password. */
    check_echo("host=/nonexistent-dir password=Zq9Secret-77 application_name="
               "a-long-service-name-that-goes-on-and-on-and-on-password=Zq9Secret-77",
               "a-long-service-name-that-goes-on-and-on-and-on-password=Zq9Secr", "[redacted]", "Zq9Sec");
    /* Non-ASCII bytes replaced. */
    check_echo("host=/nonexistent-dir password=P\xc3\xa4ssw\xc3\xb6rd-7788 "
               "application_name=P\xc3\xa4ssw\xc3\xb6rd-7788",
               "P??ssw??rd-7788", "[redacted]", "rd-7788");
    check_echo("host=/nonexistent-dir password=P\xc3\xa4ssw\xc3\xb6rd-7788 "
               "application_name=P\xc3\xa4ssw\xc3\xb6rd-7788",
               "P\\xc3\\xa4ssw\\xc3\\xb6rd-7788", "[redacted]", "rd-7788");
    /* A name without the password is kept as the server says it, altered or not. */
    check_echo("host=/nonexistent-dir password=S3cret-j application_name=caf\xc3\xa9", "caf??", "caf??",
               "S3cret-j");
    check_echo("host=/nonexistent-dir password=S3cret-j application_name=plain", "plain", "plain",
               "S3cret-j");
}

/* A thread connecting to the same target again gets the tuple it got last time without copying, and
 * only when every field is the same whole and the new password is in none of them. */
static void test_again(void **state)
{
    (void)state;
    const char *ci = "host=/nonexistent-dir port=5999 dbname=db-S3cret-k user=kim";
    struct pql_target a = connected(ci, "app1"), b = connected(ci, "app1");
    assert_string_equal(a.dbname, "db-S3cret-k");
    assert_ptr_equal(a.dbname, b.dbname); /* interned: the same tuple */
    assert_ptr_equal(a.appname, b.appname);
    /* Each field counts, application_name included. */
    b = connected(ci, "app2");
    assert_string_equal(b.appname, "app2");
    b = connected("host=/nonexistent-dir port=5999 dbname=db-S3cret-k user=kit", "app2");
    assert_string_equal(b.user, "kit");
    b = connected("host=/nonexistent-dir port=5998 dbname=db-S3cret-k user=kit", "app2");
    assert_string_equal(b.port, "5998");
    /* A longer value than a field keeps is cut: its cut copy is no match for the whole. */
    char longdb[300];
    memset(longdb, 'd', sizeof(longdb) - 1);
    longdb[sizeof(longdb) - 1] = '\0';
    char lci[400];
    snprintf(lci, sizeof(lci), "host=/nonexistent-dir port=5998 dbname=%s user=kit", longdb);
    b = connected(lci, "app2");
    b = connected(lci, "app2");
    assert_int_equal(strlen(b.dbname), PQL_TARGET_NAME_MAX);
    /* The same fields, now with a password that one of them contains. */
    b = connected(ci, "app1");
    assert_string_equal(b.dbname, "db-S3cret-k");
    b = connected("host=/nonexistent-dir port=5999 dbname=db-S3cret-k user=kim password=S3cret-k", "app1");
    assert_string_equal(b.dbname, "[redacted]");
    assert_no_secret(&b, "S3cret-k");
    b = connected("host=/nonexistent-dir port=5999 dbname=db-S3cret-k user=kim password=S3cret-k", "app1");
    assert_string_equal(b.dbname, "[redacted]");
    b = connected("host=/nonexistent-dir port=5999 dbname=db user=kim", "app1-S3cret-k");
    assert_string_equal(b.appname, "app1-S3cret-k"); /* no password given this time */
    b = connected("host=/nonexistent-dir port=5999 dbname=db user=kim password=S3cret-k", "app1-S3cret-k");
    assert_string_equal(b.appname, "[redacted]");
}

static void test_same(void **state)
{
    (void)state;
    struct pql_target a = {"h", "1", "d", "u", "x"}, b = {"h", "1", "d", "u", "y"},
                      c = {"h", "2", "d", "u", "x"};
    assert_true(pql_target_same(&a, &b));
    assert_false(pql_target_same(&a, &c));
}

/* A connect that did not connect takes its application_name from the call's arguments (or PGAPPNAME)
 * instead of PQconninfo: the same name, the same redaction, for every shape of arguments. */
static void check_open(const struct pql_connect_args *a, const char *want)
{
    PGconn *c =
        a->conninfo ? PQconnectdb(a->conninfo) : PQconnectdbParams(a->keywords, a->values, a->expand_dbname);
    struct pql_target t, slow;
    pql_target_from_open(&t, c, a, &api);
    pql_target_from_conn(&slow, c, &api);
    assert_string_equal(t.appname, want);
    assert_string_equal(slow.appname, want);
    assert_string_equal(t.host, slow.host);
    assert_no_secret(&t, "S3cret-o");
    PQfinish(c);
}

static void test_from_open(void **state)
{
    (void)state;
    const char *kw[] = {"host", "password", "application_name", "application_name", NULL};
    const char *val[] = {"/nonexistent-dir", "S3cret-o", "first", "", NULL};
    check_open(&(struct pql_connect_args){.keywords = kw, .values = val}, "first");
    val[2] = "w-S3cret-o";
    check_open(&(struct pql_connect_args){.keywords = kw, .values = val}, "[redacted]");
    setenv("PGAPPNAME", "from-env", 1);
    kw[2] = NULL;
    check_open(&(struct pql_connect_args){.keywords = kw, .values = val}, "from-env");
    check_open(&(struct pql_connect_args){.conninfo = "host=/nonexistent-dir"}, "from-env");
    check_open(&(struct pql_connect_args){.conninfo = "host=/nonexistent-dir application_name=given"},
               "given");
    const char *ekw[] = {"dbname", NULL};
    const char *eval[] = {"host=/nonexistent-dir application_name=expanded", NULL};
    check_open(&(struct pql_connect_args){.keywords = ekw, .values = eval, .expand_dbname = 1}, "expanded");
    unsetenv("PGAPPNAME");
    check_open(&(struct pql_connect_args){.conninfo = "host=/nonexistent-dir"}, "");
}

/* libpq's defaults come from PG* variables (PGDATABASE, PGAPPNAME, PGSERVICE...): the cases set the ones
 * they test and expect none of the others, whatever the environment the suite runs in. */
static void clear_libpq_environment(void)
{
    extern char **environ;
    char names[64][64];
    int n = 0;
    for (char **e = environ; *e && n < 64; e++) {
        size_t len = strcspn(*e, "=");
        if (!strncmp(*e, "PG", 2) && len < sizeof(names[0]))
            snprintf(names[n++], sizeof(names[0]), "%.*s", (int)len, *e);
    }
    for (int i = 0; i < n; i++)
        unsetenv(names[i]);
}

int main(void)
{
    clear_libpq_environment();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conninfo),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_keywords_and_password_in_other_fields),
        cmocka_unit_test(test_expand_dbname),
        cmocka_unit_test(test_from_options),
        cmocka_unit_test(test_connected_echo),
        cmocka_unit_test(test_again),
        cmocka_unit_test(test_same),
        cmocka_unit_test(test_from_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
