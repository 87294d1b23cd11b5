/* Unit tests of codemap: a function's extent from its object's GNU hash table, checked against what
 * dladdr1 (which scans every symbol) says of the same function, in libpq and libc. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <libpq-fe.h>
#include <link.h>
#include <stdint.h>

#include "codemap.h"

/* What dladdr1 says of name's definition: its address and size. */
static void dladdr_range(const char *name, uintptr_t *lo, uintptr_t *hi)
{
    void *fn = dlsym(RTLD_DEFAULT, name);
    assert_non_null(fn);
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    assert_true(dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT));
    assert_non_null(sym);
    assert_true(sym->st_size > 0);
    *lo = (uintptr_t)fn;
    *hi = *lo + sym->st_size;
}

static void test_same_as_dladdr1(void **state)
{
    (void)state;
    const char *names[] = {"PQconnectdb", "PQfinish", "PQexec", "pthread_create", "dlopen", "qsort"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
        uintptr_t lo = 0, hi = 0, want_lo, want_hi;
        dladdr_range(names[i], &want_lo, &want_hi);
        assert_true(pql_function_range(dlsym(RTLD_DEFAULT, names[i]), names[i], &lo, &hi));
        assert_int_equal(lo, want_lo);
        assert_int_equal(hi, want_hi);
    }
}

static void test_not_that_function(void **state)
{
    (void)state;
    uintptr_t lo = 0, hi = 0;
    /* Another function's name, a name no object defines, no address. */
    assert_false(pql_function_range(dlsym(RTLD_DEFAULT, "PQconnectdb"), "PQfinish", &lo, &hi));
    assert_false(pql_function_range(dlsym(RTLD_DEFAULT, "qsort"), "pqleak_no_such_function", &lo, &hi));
    assert_false(pql_function_range(NULL, "qsort", &lo, &hi));
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 0);
}

int main(void)
{
    /* libpq is looked up by name below: a reference keeps it among the program's libraries. */
    PGconn *(*volatile keep)(const char *) = PQconnectdb;
    (void)keep;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_dladdr1),
        cmocka_unit_test(test_not_that_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
