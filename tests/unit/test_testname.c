/* Unit tests of the test-name table (src/model/testname.c): one id per distinct name, names kept one
 * line long and cut at a character boundary, threads interning the same new name at once all get the
 * one id, and a full table gives 0 without losing the names it holds. Run under ASan and TSan by
 * tools/test --sanitize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testname.h"

static uint16_t now_for(const char *name)
{
    setenv(PQL_TESTNAME_VAR, name, 1);
    return pql_testname_now();
}

static void test_ids(void **state)
{
    (void)state;
    uint16_t a = now_for("t.py::test_a (call)");
    assert_true(a >= 1 && a < PQL_TESTNAME_MAX);
    assert_string_equal(pql_testname(a), "t.py::test_a (call)");
    uint16_t b = now_for("t.py::test_b (call)");
    assert_true(b >= 1 && b != a);
    assert_int_equal(now_for("t.py::test_a (call)"), a);
    assert_int_equal(now_for(""), 0);
    unsetenv(PQL_TESTNAME_VAR);
    assert_int_equal(pql_testname_now(), 0);
    assert_null(pql_testname(0));
    assert_null(pql_testname(PQL_TESTNAME_MAX));
}

static void test_kept_form(void **state)
{
    (void)state;
    assert_string_equal(pql_testname(now_for("t.py::test_c[a\nb\x7f] (call)")), "t.py::test_c[a?b?] (call)");
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *kept = pql_testname(now_for(longname));
    assert_int_equal(strlen(kept), PQL_TESTNAME_LEN - 1);
    assert_string_equal(kept + PQL_TESTNAME_LEN - 4, "...");
    /* The same long name again, and one differing only past the cut: the same kept name, the same id. */
    longname[300] = 'y';
    assert_ptr_equal(pql_testname(now_for(longname)), kept);
    /* Three-byte characters from byte 1: byte 252 falls inside the 84th, cut before that one. */
    char wide[400] = "a";
    for (int i = 0; i < 120; i++)
        strcat(wide, "\xe2\x82\xac");
    kept = pql_testname(now_for(wide));
    assert_int_equal(strlen(kept), 1 + 83 * 3 + 3);
    assert_string_equal(kept + 1 + 83 * 3, "...");
}

enum { THREADS = 4, ROUNDS = 200 };
static pthread_barrier_t start, done;
static uint16_t got[THREADS];

static void *racer(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&start);
        got[me] = pql_testname_now();
        pthread_barrier_wait(&done);
    }
    return NULL;
}

static void test_threads_one_id(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i), 0);
    for (int r = 0; r < ROUNDS; r++) {
        char name[64];
        snprintf(name, sizeof name, "race.py::test_%d (call)", r);
        setenv(PQL_TESTNAME_VAR, name, 1); /* the threads are waiting at the barrier */
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&done);
        for (int i = 0; i < THREADS; i++) {
            assert_true(got[i] >= 1);
            assert_int_equal(got[i], got[0]);
        }
        assert_string_equal(pql_testname(got[0]), name);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static void test_full_table(void **state)
{
    (void)state;
    uint16_t first = now_for("full.py::test_first (call)");
    int zero = 0;
    for (int i = 0; i < PQL_TESTNAME_MAX + 100; i++) {
        char name[64];
        snprintf(name, sizeof name, "full.py::test_%d (call)", i);
        zero += now_for(name) == 0;
    }
    assert_true(zero >= 100);
    assert_string_equal(pql_testname(first), "full.py::test_first (call)");
    assert_int_equal(now_for("full.py::test_first (call)"), first);
}

int main(void)
{
    /* Set before the first call: the process is no Python one, the variable turns naming on. */
    setenv(PQL_TESTNAME_VAR, "start", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_kept_form),
        cmocka_unit_test(test_threads_one_id),
        cmocka_unit_test(test_full_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
