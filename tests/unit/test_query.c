/* Unit tests of the query hooks' slow path: with the hooks on, a miss fills the thread's cache with the
 * connection's live state, and the inline fast path then hits; with them off (PQLEAK_TRACK_QUERIES=0,
 * or PQLEAK_DISABLE=1) the miss marks the thread instead, so that every later call of the thread takes
 * the nested call's path straight to libpq. The PGconn pointers are addresses inside an array: only
 * keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "query.h"
#include "registry.h"

static char area[3][16];

static const PGconn *add(int i)
{
    struct pql_conn r;
    memset(&r, 0, sizeof(r));
    r.pid = getpid();
    r.state = PQL_OK;
    r.target = pql_target_empty();
    pql_registry_add((const PGconn *)area[i], &r);
    return (const PGconn *)area[i];
}

static void test_on(void **state)
{
    (void)state;
    pql_query_setup(&(struct pql_settings){.stack_depth = 8, .track_queries = true});
    const PGconn *c = add(0);
    struct pql_live *l = pql_query_find(c);
    assert_non_null(l);
    assert_ptr_equal(l, pql_registry_live(c));
    assert_int_equal(pql_query_tls.key, pql_registry_key(c));
    assert_false(pql_query_nested(pql_query_tls.key));
    assert_true(pql_query_hit(c, pql_query_tls.key));
    /* A connection the registry does not have goes straight through and leaves the cache alone. */
    assert_null(pql_query_find((const PGconn *)area[2]));
    assert_int_equal(pql_query_tls.key, pql_registry_key(c));
    assert_true(pql_registry_remove(c, NULL, PQL_LEAK_UNCLOSED));
}

static void off(const struct pql_settings *s)
{
    pql_query_setup(s);
    pql_query_tls.key = 0; /* the thread's cache as a new thread's */
    const PGconn *c = add(1);
    assert_null(pql_query_find(c));
    assert_int_equal(pql_query_tls.key, PQL_QUERY_INSIDE);
    assert_true(pql_query_nested(pql_query_tls.key));
    assert_true(pql_registry_remove(c, NULL, PQL_LEAK_UNCLOSED));
}

static void test_off(void **state)
{
    (void)state;
    off(&(struct pql_settings){.stack_depth = 8, .track_queries = false});
}

static void test_disabled(void **state)
{
    (void)state;
    off(&(struct pql_settings){.stack_depth = 8, .track_queries = true, .disable = true});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
