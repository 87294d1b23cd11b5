/* Unit tests of common/escape.c: control bytes, C1 controls and invalid UTF-8 become \xNN; valid UTF-8
 * and the backslash stay; newlines kept only on request; output cut at whole escapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "escape.h"

static const char *esc(const char *s, bool keep_newline)
{
    static char buf[256];
    size_t need = pql_escape(buf, sizeof buf, s, strlen(s), keep_newline);
    assert_int_equal(need, strlen(buf));
    return buf;
}

static void test_controls(void **state)
{
    (void)state;
    assert_string_equal(esc("a\nPQLEAK OK - forged", false), "a\\x0aPQLEAK OK - forged");
    assert_string_equal(esc("\x1b[2J\r\t\x7f", false), "\\x1b[2J\\x0d\\x09\\x7f");
    assert_string_equal(esc("line\nnext\x1b", true), "line\nnext\\x1b");
    assert_string_equal(esc("C:\\path \\x0a", false), "C:\\path \\x0a"); /* kept as is */
    assert_true(pql_escape_clean("plain/path.c", 12, false));
    assert_false(pql_escape_clean("a\nb", 3, false));
    assert_true(pql_escape_clean("a\nb", 3, true));
    /* A NUL inside the given length is a control byte too. */
    char out[16];
    assert_int_equal(pql_escape(out, sizeof out, "a\0b", 3, false), 6);
    assert_string_equal(out, "a\\x00b");
}

static void test_utf8(void **state)
{
    (void)state;
    assert_string_equal(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", false),
                        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_string_equal(esc("\xc2\x9b"
                            "31m",
                            false),
                        "\\xc2\\x9b31m");                    /* C1 CSI */
    assert_string_equal(esc("\xc2\xa0", false), "\xc2\xa0"); /* U+00A0: printable */
    assert_string_equal(esc("\x9b"
                            "x",
                            false),
                        "\\x9bx");                                      /* a lone 8-bit CSI */
    assert_string_equal(esc("\xc3", false), "\\xc3");                   /* cut short */
    assert_string_equal(esc("\xc0\xaf", false), "\\xc0\\xaf");          /* overlong */
    assert_string_equal(esc("\xed\xa0\x80", false), "\\xed\\xa0\\x80"); /* a surrogate */
    assert_string_equal(esc("\xe2\x82", false), "\\xe2\\x82");
}

static void test_cut(void **state)
{
    (void)state;
    char out[8];
    /* "ab\x0a" needs 6 bytes: with 7 (6 + NUL) it fits; with 6 the escape is left out whole. */
    assert_int_equal(pql_escape(out, 7, "ab\n", 3, false), 6);
    assert_string_equal(out, "ab\\x0a");
    assert_int_equal(pql_escape(out, 6, "ab\ncd", 5, false), 8);
    assert_string_equal(out, "ab");
    assert_int_equal(pql_escape(out, 0, "x", 1, false), 1);
    assert_int_equal(pql_escape(NULL, 0, "\n", 1, false), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_controls),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
