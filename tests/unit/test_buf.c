/* Unit tests of the text buffer and JSON escaping (reports must stay valid JSON whatever bytes a path
 * or application_name holds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "buf.h"

static void test_escape(void **state)
{
    (void)state;
    struct pql_buf b;
    pql_buf_init(&b);
    pql_buf_json_str(&b, "a\"b\\c\nd\x01 \xc3\xa9 \xff \xe2\x82");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\u0001 \xc3\xa9 \\ufffd \\ufffd\\ufffd\"");
    pql_buf_free(&b);
    pql_buf_json_str(&b, NULL);
    assert_string_equal(b.data, "null");
    pql_buf_free(&b);
}

static void test_numbers_and_growth(void **state)
{
    (void)state;
    struct pql_buf b;
    pql_buf_init(&b);
    pql_buf_json_num(&b, 30.0);
    pql_buf_puts(&b, " ");
    pql_buf_json_num(&b, 1.5);
    pql_buf_puts(&b, " ");
    pql_buf_json_num(&b, NAN);
    assert_string_equal(b.data, "30 1.500 null");
    for (int i = 0; i < 1000; i++)
        pql_buf_printf(&b, "%0300d", i);
    assert_int_equal(b.len, strlen("30 1.500 null") + 300000);
    assert_false(b.failed);
    pql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_numbers_and_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
