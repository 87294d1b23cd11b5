/* Unit tests of common/script.c: which script an interpreter runs, as the shim's default service label
 * and `pqleak top` name it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "script.h"

/* The script of exe run with the arguments of words (space-separated), or NULL. */
static const char *script(const char *exe, const char *words)
{
    static char buf[256];
    char *args[16];
    int n = 0;
    strcpy(buf, words);
    for (char *w = strtok(buf, " "); w && n < 16; w = strtok(NULL, " "))
        args[n++] = w;
    return pql_script_arg(exe, args, n);
}

static void test_script(void **state)
{
    (void)state;
    assert_string_equal(script("python3", "/srv/app/worker.py --port 1"), "/srv/app/worker.py");
    assert_string_equal(script("python3.12", "-u -W error app.py"), "app.py");
    assert_string_equal(script("python3", "-m celery worker"), "celery");
    assert_null(script("python3", "-c print(1)"));
    assert_string_equal(script("perl", "-I lib -w app.pl"), "app.pl");
    assert_null(script("perl5.36", "-e 1"));
    assert_null(script("ruby", "-e puts"));
    assert_string_equal(script("php8.2", "-d x=1 -f index.php"), "index.php");
    assert_null(script("php", "-r echo;"));
    assert_string_equal(script("node", "--require x server.js"), "server.js");
    assert_string_equal(script("python3", "-- -odd.py"), "-odd.py");
    assert_null(script("python3", "-u"));
    assert_null(script("python3", ""));
    /* Not an interpreter. */
    assert_null(script("psql", "app.py"));
    assert_null(pql_script_arg(NULL, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_script)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
