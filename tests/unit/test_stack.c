/* Unit tests of the stack depot (identical stacks stored once, ids stable) and of raw capture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdint.h>

#include "stack.h"
#include "symbolize.h"

static void test_intern(void **state)
{
    (void)state;
    uintptr_t a[] = {0x1000, 0x2000, 0x3000}, b[] = {0x1000, 0x2000, 0x3001};
    uint32_t before = pql_stack_count();
    uint32_t ia = pql_stack_intern(a, 3), ib = pql_stack_intern(b, 3), ia2 = pql_stack_intern(a, 3);
    uint32_t prefix = pql_stack_intern(a, 2);
    assert_true(ia >= 1);
    assert_int_not_equal(ia, ib);
    assert_int_equal(ia, ia2);
    assert_int_not_equal(ia, prefix);
    assert_int_equal(pql_stack_count(), before + 3);
    int n = 0;
    const uintptr_t *f = pql_stack_get(ib, &n);
    assert_non_null(f);
    assert_int_equal(n, 3);
    assert_int_equal(f[2], 0x3001);
    assert_int_equal(pql_stack_intern(a, 0), 0);
    assert_null(pql_stack_get(0, &n));
    assert_null(pql_stack_get(100000, &n));
}

static void *intern_many(void *arg)
{
    uintptr_t base = (uintptr_t)arg;
    for (uintptr_t i = 0; i < 500; i++) {
        uintptr_t f[] = {base, i};
        uintptr_t g[] = {0xdead, i}; /* shared between threads */
        assert_true(pql_stack_intern(f, 2) >= 1);
        assert_true(pql_stack_intern(g, 2) >= 1);
    }
    return NULL;
}

static void test_concurrent_intern(void **state)
{
    (void)state;
    uint32_t before = pql_stack_count();
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, intern_many, (void *)(0x10000 + i));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(pql_stack_count(), before + 4 * 500 + 500);
}

static void __attribute__((noinline)) capture_here(uintptr_t *frames, int *n)
{
    *n = pql_stack_capture(frames, 16);
}

static void test_capture_and_symbolize(void **state)
{
    (void)state;
    pql_stack_setup();
    uintptr_t frames[16];
    int n = 0;
    capture_here(frames, &n);
    /* The core is linked into this test program, so its frames count as the shim's own and are
     * dropped; libc's start-up frames remain. */
    assert_true(n >= 1);
    struct pql_symbolizer *s = pql_sym_open();
    assert_non_null(s);
    const struct pql_frame *f = pql_sym_frame(s, frames[n - 1]);
    assert_non_null(f);
    assert_non_null(f->module);
    assert_true(pql_sym_frame(s, frames[n - 1]) == f); /* cached */
    pql_sym_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern),
        cmocka_unit_test(test_concurrent_intern),
        cmocka_unit_test(test_capture_and_symbolize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
