/* Unit tests of the settings table: defaults, parsing, one warning per malformed value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "config.h"

static const char *const *fake_env;
static char warnings[8][600];
static int nwarnings;

static const char *fake_getenv(const char *name)
{
    for (const char *const *e = fake_env; e && *e; e += 2)
        if (!strcmp(e[0], name))
            return e[1];
    return NULL;
}

static void collect(const char *line)
{
    if (nwarnings < 8)
        snprintf(warnings[nwarnings], sizeof(warnings[0]), "%s", line);
    nwarnings++;
}

static void load(struct pql_settings *s, const char *const *env)
{
    fake_env = env;
    nwarnings = 0;
    pql_settings_load(s, fake_getenv, collect);
}

static void test_defaults(void **state)
{
    (void)state;
    struct pql_settings s;
    load(&s, NULL);
    assert_int_equal(nwarnings, 0);
    assert_string_equal(s.log, "stderr");
    assert_string_equal(s.report_dir, "");
    assert_int_equal(s.exitcode, 0);
    assert_int_equal(s.stack_depth, 32);
    assert_int_equal(s.max_conns, 0);
    assert_true(s.checkout_timeout == 30.0);
    assert_int_equal(s.warn_pct, 80);
    assert_int_equal(s.crit_pct, 95);
    assert_int_equal(s.signal, SIGUSR1);
    assert_true(s.metrics_interval == 10.0);
    assert_true(s.python);
    assert_false(s.strict);
    assert_false(s.trace);
    assert_false(s.disable);
    assert_true(s.text_report);
}

static void test_valid_values(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_MAX_CONNS", "20", "PQLEAK_CHECKOUT_TIMEOUT", "2.5", "PQLEAK_SIGNAL", "none",
                         "PQLEAK_STRICT", "1", "PQLEAK_PYTHON", "off", "PQLEAK_LOG", "/tmp/x-%p",
                         "PQLEAK_SIGNAL", "ignored: first match wins", NULL};
    struct pql_settings s;
    load(&s, env);
    assert_int_equal(nwarnings, 0);
    assert_int_equal(s.max_conns, 20);
    assert_true(s.checkout_timeout == 2.5);
    assert_int_equal(s.signal, 0);
    assert_true(s.strict);
    assert_false(s.python);
    assert_string_equal(s.log, "/tmp/x-%p");
    const char *env2[] = {"PQLEAK_SIGNAL", "SIGUSR2", NULL};
    load(&s, env2);
    assert_int_equal(s.signal, SIGUSR2);
}

static void test_malformed_values_warn_once_each(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_MAX_CONNS", "twenty", "PQLEAK_CHECKOUT_TIMEOUT", "-1",
                         "PQLEAK_STACK_DEPTH", "100000", "PQLEAK_SIGNAL", "HUP", "PQLEAK_STRICT", "maybe",
                         "PQLEAK_EXITCODE", "12x", NULL};
    struct pql_settings s;
    load(&s, env);
    assert_int_equal(nwarnings, 6);
    assert_non_null(strstr(warnings[0], "PQLEAK_EXITCODE='12x'"));
    assert_non_null(strstr(warnings[0], "using 0"));
    assert_non_null(strstr(warnings[1], "PQLEAK_STACK_DEPTH='100000'"));
    assert_non_null(strstr(warnings[1], "using 32"));
    assert_non_null(strstr(warnings[2], "PQLEAK_MAX_CONNS='twenty'"));
    assert_non_null(strstr(warnings[3], "PQLEAK_CHECKOUT_TIMEOUT='-1'"));
    assert_non_null(strstr(warnings[3], "using 30"));
    assert_non_null(strstr(warnings[4], "PQLEAK_SIGNAL='HUP'"));
    assert_non_null(strstr(warnings[4], "using USR1"));
    assert_non_null(strstr(warnings[5], "PQLEAK_STRICT='maybe'"));
    /* The defaults stay in force. */
    assert_int_equal(s.max_conns, 0);
    assert_true(s.checkout_timeout == 30.0);
    assert_int_equal(s.stack_depth, 32);
    assert_int_equal(s.signal, SIGUSR1);
}

static void test_crit_below_warn(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_WARN_PCT", "90", "PQLEAK_CRIT_PCT", "50", NULL};
    struct pql_settings s;
    load(&s, env);
    assert_int_equal(nwarnings, 1);
    assert_int_equal(s.crit_pct, 90);
}

static void test_json(void **state)
{
    (void)state;
    struct pql_settings s;
    load(&s, NULL);
    struct pql_buf b;
    pql_buf_init(&b);
    pql_settings_json(&s, &b);
    assert_non_null(strstr(b.data, "\"max_conns\": 0"));
    assert_non_null(strstr(b.data, "\"checkout_timeout_s\": 30"));
    assert_non_null(strstr(b.data, "\"report_dir\": null"));
    assert_non_null(strstr(b.data, "\"signal\": \"USR1\""));
    pql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_malformed_values_warn_once_each),
        cmocka_unit_test(test_crit_below_warn),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
