/* Unit tests of the real libpq functions (src/base/real.c): every member is set once libpq is found; a
 * member is a stub until its first call, then libpq's own function (a process pays the lookup only of
 * the functions it uses); threads making the first call at once all get libpq's answer, and the member
 * ends up libpq's function. Run under ASan and TSan by tools/test --sanitize. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>

#include "real.h"

/* libpq's own function, as the program (linked against it) sees it. */
static void *libpq_fn(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

static void test_members_set(void **state)
{
    (void)state;
    assert_true(pql_real_resolve());
#define SET(ret, name, params, args) assert_non_null((void *)pql_real.name);
    PQL_REAL_FUNCTIONS(SET)
#undef SET
}

static void test_stub_until_first_call(void **state)
{
    (void)state;
    assert_true(pql_real_resolve());
    void *status = libpq_fn("PQstatus");
    assert_non_null(status);
    assert_ptr_not_equal((void *)pql_real.PQstatus, status);
    assert_int_equal(pql_real.PQstatus(NULL), CONNECTION_BAD);
    assert_ptr_equal((void *)pql_real.PQstatus, status);
    assert_int_equal(pql_real.PQstatus(NULL), CONNECTION_BAD);
    /* A function returning nothing, and one taking no argument. */
    pql_real.PQfreemem(NULL);
    assert_ptr_equal((void *)pql_real.PQfreemem, libpq_fn("PQfreemem"));
    PQconninfoOption *defs = pql_real.PQconndefaults();
    assert_non_null(defs);
    pql_real.PQconninfoFree(defs);
    assert_ptr_equal((void *)pql_real.PQconndefaults, libpq_fn("PQconndefaults"));
}

enum { THREADS = 8 };
static pthread_barrier_t start;
static char *got_db[THREADS];
static int got_pid[THREADS];

static void *first_call(void *arg)
{
    int me = (int)(intptr_t)arg;
    pthread_barrier_wait(&start);
    got_db[me] = pql_real.PQdb(NULL);
    got_pid[me] = pql_real.PQbackendPID(NULL);
    return NULL;
}

static void test_first_calls_at_once(void **state)
{
    (void)state;
    assert_true(pql_real_resolve());
    assert_ptr_not_equal((void *)pql_real.PQdb, libpq_fn("PQdb"));
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        got_db[i] = (char *)"unset";
        got_pid[i] = -1;
        assert_int_equal(pthread_create(&t[i], NULL, first_call, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_null(got_db[i]); /* libpq's answer for no connection */
        assert_int_equal(got_pid[i], 0);
    }
    assert_ptr_equal((void *)pql_real.PQdb, libpq_fn("PQdb"));
    assert_ptr_equal((void *)pql_real.PQbackendPID, libpq_fn("PQbackendPID"));
}

int main(void)
{
    /* A direct use, so that the program needs libpq (as a C client does) and the linker keeps it. */
    if (PQlibVersion() <= 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_set),
        cmocka_unit_test(test_stub_until_first_call),
        cmocka_unit_test(test_first_calls_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
