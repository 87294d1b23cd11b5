/* Unit tests of common/frames.c, the one frame classifier: native frames by module (libpq, libc,
 * ld.so, the shim, interpreters, the program and its other libraries), interpreted frames by source
 * file (the program's scripts, installed packages, the standard library, frozen modules), and the
 * origin names of folded frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "frames.h"

static enum pql_frame_kind native(const char *module)
{
    return pql_frame_classify("f", NULL, module, "c");
}

static enum pql_frame_kind py(const char *file)
{
    return pql_frame_classify("f", file, NULL, "python");
}

static void test_native(void **state)
{
    (void)state;
    assert_int_equal(native("/usr/lib/x86_64-linux-gnu/libpq.so.5"), PQL_FRAME_LIBPQ);
    assert_int_equal(native("libpq.so.5.16"), PQL_FRAME_LIBPQ);

    assert_int_equal(native("/lib/x86_64-linux-gnu/libc.so.6"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib/x86_64-linux-gnu/libc-2.31.so"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib64/ld-linux-x86-64.so.2"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib/ld64.so.1"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib/ld-musl-x86_64.so.1"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib/x86_64-linux-gnu/libpthread.so.0"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib/x86_64-linux-gnu/libpthread-2.31.so"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib/x86_64-linux-gnu/libdl.so.2"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/lib/x86_64-linux-gnu/libdl-2.31.so"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/usr/lib/x86_64-linux-gnu/libunwind.so.8"), PQL_FRAME_SYSTEM);
    assert_int_equal(native("/opt/pqleak/lib/libpqleak.so"), PQL_FRAME_SYSTEM);

    assert_int_equal(native("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"), PQL_FRAME_RUNTIME);
    assert_int_equal(native("/usr/bin/python3.11"), PQL_FRAME_RUNTIME);
    assert_int_equal(native("/usr/bin/perl"), PQL_FRAME_RUNTIME);
    assert_int_equal(native("/usr/lib/x86_64-linux-gnu/libperl.so.5.36"), PQL_FRAME_RUNTIME);
    assert_int_equal(native("/usr/bin/ruby3.1"), PQL_FRAME_RUNTIME);
    assert_int_equal(native("/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1"), PQL_FRAME_RUNTIME);
    assert_int_equal(native("/usr/bin/php8.2"), PQL_FRAME_RUNTIME);
    assert_int_equal(native("/usr/lib/libphp.so"), PQL_FRAME_RUNTIME);

    /* The user's binaries and their own libraries are the program's; shared objects installed in the
     * system's library directories (libpqxx, libffi, a driver's C extension module) are libraries. */
    assert_int_equal(native("/usr/local/bin/app"), PQL_FRAME_APP);
    assert_int_equal(native("/home/u/build/leaker"), PQL_FRAME_APP);
    assert_int_equal(native("/home/u/build/libapp.so.1"), PQL_FRAME_APP);
    assert_int_equal(native("/usr/local/lib/libapp.so.1"), PQL_FRAME_APP);
    assert_int_equal(native("/usr/lib/postgresql/15/bin/pg_basebackup"), PQL_FRAME_APP);
    assert_int_equal(native("/usr/lib/libapp.so.1"), PQL_FRAME_LIBRARY);
    assert_int_equal(
        native("/usr/lib/python3/dist-packages/psycopg2/_psycopg.cpython-311-x86_64-linux-gnu.so"),
        PQL_FRAME_LIBRARY);
    assert_int_equal(native("/usr/lib/x86_64-linux-gnu/perl5/5.36/auto/DBD/Pg/Pg.so"), PQL_FRAME_LIBRARY);
    assert_int_equal(native("/usr/lib/x86_64-linux-gnu/libffi.so.8"), PQL_FRAME_LIBRARY);
    /* Near misses of the system names: libraries, not the system. */
    assert_int_equal(native("/usr/lib/libc-client.so.2007e"), PQL_FRAME_LIBRARY);
    assert_int_equal(native("/usr/lib/libpqxx-7.7.so"), PQL_FRAME_LIBRARY);
    assert_int_equal(native("/usr/lib/libcurl.so.4"), PQL_FRAME_LIBRARY);
    /* lang NULL is native too; the module's directory does not count, only its name. */
    assert_int_equal(pql_frame_classify("f", NULL, "/usr/lib/python3.11/app", NULL), PQL_FRAME_APP);
    assert_int_equal(pql_frame_classify(NULL, NULL, "libc.so.6", NULL), PQL_FRAME_SYSTEM);
}

static void test_native_without_module(void **state)
{
    (void)state;
    /* Nothing known: nothing to show, folded like the system's frames. */
    assert_int_equal(pql_frame_classify(NULL, NULL, NULL, "c"), PQL_FRAME_SYSTEM);
    assert_int_equal(pql_frame_classify(NULL, NULL, NULL, NULL), PQL_FRAME_SYSTEM);
    /* A name without a module (hand-written reports): the program's. */
    assert_int_equal(pql_frame_classify("main", NULL, NULL, "c"), PQL_FRAME_APP);
    assert_int_equal(pql_frame_classify(NULL, "app.c", NULL, "c"), PQL_FRAME_APP);
}

static void test_native_inlined_header(void **state)
{
    (void)state;
    /* Code of an installed header inlined into the program: the library's; the program's own lines and
     * the system's modules keep their kind. */
    const char *hxx = "/usr/include/pqxx/basic_connection.hxx";
    assert_int_equal(pql_frame_classify("f", hxx, "/home/u/app", "c"), PQL_FRAME_LIBRARY);
    assert_int_equal(pql_frame_classify("f", "/usr/include/c++/12/bits/unique_ptr.h", "/home/u/app", "c"),
                     PQL_FRAME_LIBRARY);
    assert_int_equal(pql_frame_classify("f", hxx, NULL, "c"), PQL_FRAME_LIBRARY);
    assert_int_equal(pql_frame_classify("f", "/home/u/include/db.h", "/home/u/app", "c"), PQL_FRAME_APP);
    assert_int_equal(pql_frame_classify("f", "/usr/include/stdio.h", "/lib/x86_64-linux-gnu/libc.so.6", "c"),
                     PQL_FRAME_SYSTEM);
}

static void test_interpreted(void **state)
{
    (void)state;
    /* The user's script. */
    assert_int_equal(py("/srv/app/db.py"), PQL_FRAME_APP);
    assert_int_equal(py("app.py"), PQL_FRAME_APP);
    assert_int_equal(py("/home/u/lib/python-tools/x.py"), PQL_FRAME_APP);
    assert_int_equal(py("<string>"), PQL_FRAME_APP); /* python -c, exec(): the program's own code */
    assert_int_equal(py("<stdin>"), PQL_FRAME_APP);

    /* Installed packages. */
    assert_int_equal(py("/usr/lib/python3/dist-packages/psycopg2/__init__.py"), PQL_FRAME_LIBRARY);
    assert_int_equal(py("/home/u/venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py"),
                     PQL_FRAME_LIBRARY);
    assert_int_equal(py("/usr/local/lib/python3.11/dist-packages/six.py"), PQL_FRAME_LIBRARY);
    /* The standard library. */
    assert_int_equal(py("/usr/lib/python3.11/threading.py"), PQL_FRAME_LIBRARY);
    assert_int_equal(py("/usr/local/lib/python3.12/concurrent/futures/thread.py"), PQL_FRAME_LIBRARY);
    assert_int_equal(py("/opt/py/lib/python3/x.py"), PQL_FRAME_LIBRARY);
    /* Frozen modules. */
    assert_int_equal(py("<frozen importlib._bootstrap>"), PQL_FRAME_LIBRARY);
    assert_int_equal(py("<frozen runpy>"), PQL_FRAME_LIBRARY);
    /* No file: it cannot be told to be the program's. */
    assert_int_equal(py(NULL), PQL_FRAME_LIBRARY);

    /* Interpreted frames are never libpq, system or runtime, whatever their module says. */
    assert_int_equal(pql_frame_classify("f", "/srv/app.py", "/usr/bin/python3.11", "python"), PQL_FRAME_APP);
    assert_int_equal(pql_frame_classify("f", "/srv/app.pl", NULL, "perl"), PQL_FRAME_APP);

    assert_true(pql_frame_is_app("get_conn", "/srv/app/db.py", NULL, "python"));
    assert_false(
        pql_frame_is_app("connect", "/usr/lib/python3/dist-packages/psycopg2/__init__.py", NULL, "python"));
    assert_true(pql_frame_is_app("main", "app.c", "/usr/local/bin/app", "c"));
    assert_false(pql_frame_is_app("PQconnectdb", NULL, "libpq.so.5", "c"));
}

static void test_runtime_and_shim(void **state)
{
    (void)state;
    assert_true(pql_frame_kind_is_runtime(PQL_FRAME_LIBPQ));
    assert_true(pql_frame_kind_is_runtime(PQL_FRAME_SYSTEM));
    assert_true(pql_frame_kind_is_runtime(PQL_FRAME_RUNTIME));
    assert_false(pql_frame_kind_is_runtime(PQL_FRAME_APP));
    assert_false(pql_frame_kind_is_runtime(PQL_FRAME_LIBRARY));

    assert_true(pql_module_is_shim("/opt/pqleak/lib/libpqleak.so"));
    assert_true(pql_module_is_shim("libunwind.so.8"));
    assert_false(pql_module_is_shim("/usr/lib/x86_64-linux-gnu/libpq.so.5"));
    assert_false(pql_module_is_shim("/lib/x86_64-linux-gnu/libc.so.6"));
    assert_false(pql_module_is_shim(NULL));
}

static void test_headline(void **state)
{
    (void)state;
    bool own = false;
    /* C: the innermost frame of the program, past libpq, libc and a library. */
    const struct pql_frame_ref c[] = {
        {"PQconnectStart", NULL, "/usr/lib/x86_64-linux-gnu/libpq.so.5", "c"},
        {"pqxx::connection::connect", NULL, "/usr/lib/x86_64-linux-gnu/libpqxx-6.4.so", "c"},
        {"open_db", "app.cc", "/home/u/app", "c"},
        {"main", "app.cc", "/home/u/app", "c"},
    };
    assert_int_equal(pql_frame_headline(c, 4, &own), 2);
    assert_true(own);
    /* Only libraries: the innermost one, not the program's own. */
    assert_int_equal(pql_frame_headline(c, 2, &own), 1);
    assert_false(own);
    assert_int_equal(pql_frame_headline(c, 1, &own), -1);
    assert_int_equal(pql_frame_headline(c, 0, NULL), -1);
    /* Python: only Python frames are candidates; the installed package's lines are not the program's. */
    const struct pql_frame_ref py[] = {
        {"PQconnectdb", NULL, "/usr/lib/x86_64-linux-gnu/libpq.so.5", "c"},
        {"psyco_connect", NULL, "/home/u/venv/_psycopg.so", "c"},
        {"connect", "/usr/lib/python3/dist-packages/psycopg2/__init__.py", NULL, "python"},
        {"get_order", "/srv/app/app.py", NULL, "python"},
        {"<module>", "/srv/app/app.py", NULL, "python"},
    };
    assert_int_equal(pql_frame_headline(py, 5, &own), 3);
    assert_true(own);
    assert_int_equal(pql_frame_headline(py, 3, &own), 2);
    assert_false(own);
}

static void test_origin(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(pql_frame_origin(NULL, "/usr/lib/x86_64-linux-gnu/libpq.so.5", "c", buf, sizeof buf),
                        "libpq.so.5");
    assert_string_equal(pql_frame_origin("/usr/lib/python3/dist-packages/psycopg2/__init__.py", NULL,
                                         "python", buf, sizeof buf),
                        "psycopg2");
    assert_string_equal(
        pql_frame_origin("/usr/lib/python3/dist-packages/six.py", NULL, "python", buf, sizeof buf), "six");
    assert_string_equal(pql_frame_origin("/usr/lib/python3.11/threading.py", NULL, "python", buf, sizeof buf),
                        "python3.11");
    assert_string_equal(pql_frame_origin("<frozen runpy>", NULL, "python", buf, sizeof buf),
                        "frozen modules");
    assert_string_equal(pql_frame_origin("/srv/app/db.py", NULL, "python", buf, sizeof buf), "db.py");
    assert_string_equal(pql_frame_origin(NULL, NULL, "python", buf, sizeof buf), "python");
    assert_string_equal(pql_frame_origin(NULL, NULL, NULL, buf, sizeof buf), "?");
    /* A small buffer cuts the name. */
    char small[4];
    assert_string_equal(
        pql_frame_origin("/x/site-packages/sqlalchemy/a.py", NULL, "python", small, sizeof small), "sql");
}

static void test_test_runner(void **state)
{
    (void)state;
    assert_true(pql_frame_is_test_runner("/usr/lib/python3/dist-packages/_pytest/python.py"));
    assert_true(pql_frame_is_test_runner("/venv/lib/python3.11/site-packages/pluggy/_callers.py"));
    assert_true(pql_frame_is_test_runner("/venv/lib/python3.11/site-packages/pytest/__main__.py"));
    assert_true(pql_frame_is_test_runner("/usr/lib/python3.11/unittest/case.py"));
    assert_true(pql_frame_is_test_runner("/usr/bin/pytest-3"));
    assert_true(pql_frame_is_test_runner("/srv/venv/bin/pytest"));
    assert_true(pql_frame_is_test_runner("/usr/local/bin/py.test"));
    /* the program's own tests and a file merely named like pytest are not */
    assert_false(pql_frame_is_test_runner("/src/shop/tests/test_orders.py"));
    assert_false(pql_frame_is_test_runner("/src/shop/conftest.py"));
    assert_false(pql_frame_is_test_runner("/src/shop/pytest_helpers.py"));
    assert_false(pql_frame_is_test_runner("pytest"));
    assert_false(pql_frame_is_test_runner(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native),      cmocka_unit_test(test_native_without_module),
        cmocka_unit_test(test_native_inlined_header),
        cmocka_unit_test(test_interpreted), cmocka_unit_test(test_runtime_and_shim),
        cmocka_unit_test(test_origin),      cmocka_unit_test(test_headline),
        cmocka_unit_test(test_test_runner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
