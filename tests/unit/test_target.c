/* Unit tests of target extraction: the whitelisted fields come out of conninfo strings, URIs and
 * keyword arrays, and no password does, whatever field it hides in. Uses libpq itself (failed
 * connections to a socket directory that does not exist: no server needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "target.h"

static const struct pql_target_api api = {PQhost, PQport, PQdb, PQuser, PQpass, PQconninfo, PQconninfoFree};

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
                            "application_name=worker");
    struct pql_target t;
    pql_target_from_conn(&t, c, &api);
    assert_string_equal(t.host, "/nonexistent-dir");
    assert_string_equal(t.port, "6543");
    assert_string_equal(t.dbname, "app");
    assert_string_equal(t.user, "alice");
    assert_string_equal(t.appname, "worker");
    assert_no_secret(&t, "S3cret-a");
    PQfinish(c);
}

static void test_uri(void **state)
{
    (void)state;
    PGconn *c = PQconnectdb("postgresql://bob:S3cret-b@/shop?host=/nonexistent-dir&application_name=web");
    struct pql_target t;
    pql_target_from_conn(&t, c, &api);
    assert_string_equal(t.user, "bob");
    assert_string_equal(t.dbname, "shop");
    assert_string_equal(t.appname, "web");
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
    const char *val[] = {"postgresql://dave:S3cret-d@/inv?host=/nonexistent-dir", NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    struct pql_target t;
    pql_target_from_conn(&t, c, &api);
    assert_string_equal(t.user, "dave");
    assert_string_equal(t.dbname, "inv");
    assert_no_secret(&t, "S3cret-d");
    PQfinish(c);
}

static void test_same(void **state)
{
    (void)state;
    struct pql_target a = {"h", "1", "d", "u", "x"}, b = {"h", "1", "d", "u", "y"}, c = {"h", "2", "d", "u", "x"};
    assert_true(pql_target_same(&a, &b));
    assert_false(pql_target_same(&a, &c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conninfo),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_keywords_and_password_in_other_fields),
        cmocka_unit_test(test_expand_dbname),
        cmocka_unit_test(test_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
