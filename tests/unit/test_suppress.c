/* Unit tests of suppression rules: parsing, comments, malformed lines, glob matching on function,
 * file, module and their base names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suppress.h"

static char last_warning[600];
static int nwarnings;

static void collect(const char *line)
{
    snprintf(last_warning, sizeof(last_warning), "%s", line);
    nwarnings++;
}

static void test_parse(void **state)
{
    (void)state;
    struct pql_rules r = {0};
    nwarnings = 0;
    assert_true(pql_rules_parse(&r, "# comment\n\n  leak:handle_*  # why\nleak:libfoo.so\nbogus line\nleak:\n",
                                "supp.txt", collect));
    assert_int_equal(r.n, 2);
    assert_string_equal(r.v[0].pattern, "handle_*");
    assert_string_equal(r.v[1].pattern, "libfoo.so");
    assert_int_equal(nwarnings, 2);
    assert_non_null(strstr(last_warning, "supp.txt:6:"));
    pql_rules_free(&r);
}

static void test_match(void **state)
{
    (void)state;
    struct pql_frame f = {0x1234, "handle_request", "/src/app/server.c", 42, "/usr/lib/libapp.so.1", 0x234, "c"};
    assert_true(pql_rule_matches_frame("handle_*", &f));
    assert_true(pql_rule_matches_frame("server.c", &f));
    assert_true(pql_rule_matches_frame("/src/*/server.c", &f));
    assert_true(pql_rule_matches_frame("libapp.so*", &f));
    assert_true(pql_rule_matches_frame("*/libapp.so.?", &f));
    assert_false(pql_rule_matches_frame("handle", &f));
    assert_false(pql_rule_matches_frame("client.c", &f));
    struct pql_frame unknown = {0x1, NULL, NULL, 0, NULL, 0, "c"};
    assert_false(pql_rule_matches_frame("*", &unknown));
}

static void test_rules_match_any_frame(void **state)
{
    (void)state;
    struct pql_rules r = {0};
    assert_true(pql_rules_parse(&r, "leak:nothing\nleak:main\n", "t", NULL));
    struct pql_frame a = {1, "inner", "a.c", 1, "/bin/x", 0, "c"}, b = {2, "main", "a.c", 9, "/bin/x", 0, "c"};
    const struct pql_frame *stack[] = {&a, &b};
    assert_int_equal(pql_rules_match(&r, stack, 2), 1);
    assert_int_equal(pql_rules_match(&r, stack, 1), -1);
    pql_rules_free(&r);
}

static void test_load_unreadable(void **state)
{
    (void)state;
    struct pql_rules r = {0};
    nwarnings = 0;
    assert_true(pql_rules_load(&r, "/nonexistent/supp", collect));
    assert_int_equal(r.n, 0);
    assert_int_equal(nwarnings, 1);
    assert_non_null(strstr(last_warning, "PQLEAK_SUPPRESSIONS='/nonexistent/supp'"));
    char path[] = "/tmp/pqleak-supp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "leak:x\n", 7), 7);
    close(fd);
    assert_true(pql_rules_load(&r, path, collect));
    assert_int_equal(r.n, 1);
    unlink(path);
    pql_rules_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_rules_match_any_frame),
        cmocka_unit_test(test_load_unreadable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
