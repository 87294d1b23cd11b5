/* Unit tests of the settings table: defaults, parsing, one warning per malformed value, PQLEAK_OPTIONS,
 * misspelled names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    assert_true(s.track_queries);
}

static void test_valid_values(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_MAX_CONNS",
                         "20",
                         "PQLEAK_CHECKOUT_TIMEOUT",
                         "2.5",
                         "PQLEAK_SIGNAL",
                         "none",
                         "PQLEAK_STRICT",
                         "1",
                         "PQLEAK_PYTHON",
                         "off",
                         "PQLEAK_LOG",
                         "/tmp/x-%p",
                         "PQLEAK_SIGNAL",
                         "ignored: first match wins",
                         NULL};
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
    const char *env[] = {"PQLEAK_MAX_CONNS",
                         "twenty",
                         "PQLEAK_CHECKOUT_TIMEOUT",
                         "-1",
                         "PQLEAK_STACK_DEPTH",
                         "100000",
                         "PQLEAK_SIGNAL",
                         "HUP",
                         "PQLEAK_STRICT",
                         "maybe",
                         "PQLEAK_EXITCODE",
                         "12x",
                         NULL};
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

/* Idle in a transaction is known only from the commands: without them, the suspect is off, with one
 * warning naming both variables; either alone is taken as it is. */
static void test_idle_tx_needs_queries(void **state)
{
    (void)state;
    struct pql_settings s;
    const char *both[] = {"PQLEAK_TRACK_QUERIES", "0", "PQLEAK_SUSPECT_IDLE_TX", "30", NULL};
    load(&s, both);
    assert_int_equal(nwarnings, 1);
    assert_string_equal(warnings[0], "PQLEAK_SUSPECT_IDLE_TX=30 needs the commands followed, which "
                                     "PQLEAK_TRACK_QUERIES=0 turns off; using 0");
    assert_false(s.track_queries);
    assert_true(s.suspect_idle_tx == 0);
    const char *off[] = {"PQLEAK_TRACK_QUERIES", "0", NULL};
    load(&s, off);
    assert_int_equal(nwarnings, 0);
    assert_false(s.track_queries);
    const char *idle[] = {"PQLEAK_OPTIONS", "track_queries=1", "PQLEAK_SUSPECT_IDLE_TX", "30", NULL};
    load(&s, idle);
    assert_int_equal(nwarnings, 0);
    assert_true(s.track_queries);
    assert_true(s.suspect_idle_tx == 30);
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
    assert_non_null(strstr(b.data, "\"track_queries\": true"));
    pql_buf_free(&b);
}

static void test_options(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_OPTIONS",
                         "max_conns=20:checkout_timeout=2.5::LOG='/tmp/a:b':signal=\"usr2\":", NULL};
    struct pql_settings s;
    load(&s, env);
    assert_int_equal(nwarnings, 0);
    assert_int_equal(s.max_conns, 20);
    assert_true(s.checkout_timeout == 2.5);
    assert_string_equal(s.log, "/tmp/a:b");
    assert_int_equal(s.signal, SIGUSR2);
    assert_true(s.signal_set);
}

static void test_variable_wins_over_option(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_OPTIONS", "max_conns=20:strict=1:max_conns=21", "PQLEAK_MAX_CONNS", "5",
                         NULL};
    struct pql_settings s;
    load(&s, env);
    assert_int_equal(nwarnings, 0);
    assert_int_equal(s.max_conns, 5);
    assert_true(s.strict);
    /* A malformed variable falls back to the option's value, and says so. */
    const char *env2[] = {"PQLEAK_OPTIONS", "max_conns=7", "PQLEAK_MAX_CONNS", "ten", NULL};
    load(&s, env2);
    assert_int_equal(nwarnings, 1);
    assert_non_null(strstr(warnings[0], "PQLEAK_MAX_CONNS='ten'"));
    assert_non_null(strstr(warnings[0], "using 7"));
    assert_int_equal(s.max_conns, 7);
}

static void test_option_bad_value_and_unknown_name(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_OPTIONS", "max_conns=ten:maxconns=3:strict=1", NULL};
    struct pql_settings s;
    load(&s, env);
    assert_int_equal(nwarnings, 2);
    assert_non_null(strstr(warnings[0], "PQLEAK_OPTIONS max_conns='ten' is not a whole number"));
    assert_non_null(strstr(warnings[0], "using 0"));
    assert_non_null(strstr(warnings[1], "'maxconns' is not a setting (the nearest is max_conns"));
    assert_int_equal(s.max_conns, 0);
    assert_true(s.strict);
}

static void test_options_malformed_ignored_whole(void **state)
{
    (void)state;
    const char *bad[] = {"max_conns=3:strict", "max_conns=3:log='/tmp/x", "max_conns=3:=1",
                         "max_conns=3:log='a'b", "max-conns=3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *env[] = {"PQLEAK_OPTIONS", bad[i], NULL};
        struct pql_settings s;
        load(&s, env);
        assert_int_equal(nwarnings, 1);
        assert_non_null(strstr(warnings[0], "PQLEAK_OPTIONS='"));
        assert_non_null(strstr(warnings[0], "is malformed at item"));
        assert_int_equal(s.max_conns, 0);
    }
}

/* The unknown-name check reads the process's environment; get decides what counts as set. */
static void test_misspelled_variable(void **state)
{
    (void)state;
    setenv("PQLEAK_MAXCONNS", "20", 1);
    setenv("PQLEAK_SHIM_FOR_TESTS", "x", 1); /* a script's own variable, far from any setting */
    const char *env[] = {"PQLEAK_MAXCONNS", "20", "PQLEAK_SHIM_FOR_TESTS", "x", NULL};
    struct pql_settings s;
    load(&s, env);
    unsetenv("PQLEAK_MAXCONNS");
    unsetenv("PQLEAK_SHIM_FOR_TESTS");
    assert_int_equal(nwarnings, 1);
    assert_string_equal(warnings[0],
                        "PQLEAK_MAXCONNS is not a setting (the nearest is PQLEAK_MAX_CONNS); ignored");
    assert_int_equal(s.max_conns, 0);
}

static void test_early_bool_reads_options(void **state)
{
    (void)state;
    const char *env[] = {"PQLEAK_OPTIONS", "trace=1:hook_dlsym=0", NULL};
    fake_env = env;
    assert_false(pql_settings_early_bool("PQLEAK_HOOK_DLSYM", fake_getenv));
    assert_false(pql_settings_early_bool("PQLEAK_DISABLE", fake_getenv));
    const char *env2[] = {"PQLEAK_OPTIONS", "hook_dlsym=0:disable=yes", "PQLEAK_HOOK_DLSYM", "1", NULL};
    fake_env = env2;
    assert_true(pql_settings_early_bool("PQLEAK_HOOK_DLSYM", fake_getenv));
    assert_true(pql_settings_early_bool("PQLEAK_DISABLE", fake_getenv));
    const char *env3[] = {"PQLEAK_OPTIONS", "hook_dlsym=0:disable", NULL}; /* malformed: ignored */
    fake_env = env3;
    assert_true(pql_settings_early_bool("PQLEAK_HOOK_DLSYM", fake_getenv));
}

static void test_help_option(void **state)
{
    (void)state;
    char path[] = "/tmp/pqleak-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    const char *env[] = {"PQLEAK_OPTIONS", "help=1", NULL};
    struct pql_settings s;
    load(&s, env);
    dup2(saved, 2);
    close(saved);
    char out[16384];
    ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
    close(fd);
    assert_true(n > 0);
    out[n] = '\0';
    assert_int_equal(nwarnings, 0);
    assert_true(s.disable);
    assert_non_null(strstr(out, "PQLEAK_OPTIONS=name=value:name=value"));
    assert_non_null(strstr(out, "PQLEAK_MAX_CONNS"));
    assert_non_null(strstr(out, "cap on connections open at once"));
    assert_non_null(strstr(out, "PQLEAK_SERVICE"));
}

/* getenv's answer for name in env: the first entry "name=...". */
static const char *reference_getenv(char *const *env, const char *name)
{
    size_t len = strlen(name);
    for (char *const *e = env; *e; e++)
        if (!strncmp(*e, name, len) && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

static void test_env_view(void **state)
{
    (void)state;
    char *env[] = {"HOME=/root",           "PQLEAK_LOG_X=not the log",   "PQLEAK_LOGX",
                   "PQLEAK_LOG=/tmp/first", "PQLEAK_MAX_CONNS=",          "PQLEAK_LOG=/tmp/second",
                   "PQLEAK_SIGNAL=none",    "PQLEAK_=empty name",         NULL};
    const char *names[] = {"PQLEAK_LOG", "PQLEAK_LOGX", "PQLEAK_LOG_X", "PQLEAK_MAX_CONNS", "PQLEAK_SIGNAL",
                           "PQLEAK_", "PQLEAK_STRICT", "PQLEAK_LO"};
    struct pql_env_view v;
    pql_env_view_take(&v, env);
    assert_int_equal(v.n, 7);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *want = reference_getenv(env, names[i]), *got = pql_env_view_get(&v, names[i]);
        if (!want)
            assert_null(got);
        else
            assert_string_equal(got, want);
    }
    assert_string_equal(pql_env_view_get(&v, "PQLEAK_LOG"), "/tmp/first");
    /* Not a PQLEAK_ name: the process's own environment, as getenv has it. */
    setenv("PQL_TEST_VIEW_OTHER", "other", 1);
    assert_string_equal(pql_env_view_get(&v, "PQL_TEST_VIEW_OTHER"), "other");

    /* More PQLEAK_ entries than the view holds: not whole, every lookup is getenv's. */
    static char many[PQL_ENV_VIEW_MAX + 1][32];
    char *big[PQL_ENV_VIEW_MAX + 2];
    for (int i = 0; i <= PQL_ENV_VIEW_MAX; i++) {
        snprintf(many[i], sizeof(many[i]), "PQLEAK_X%d=%d", i, i);
        big[i] = many[i];
    }
    big[PQL_ENV_VIEW_MAX + 1] = NULL;
    pql_env_view_take(&v, big);
    assert_int_equal(v.n, -1);
    setenv("PQLEAK_TEST_VIEW", "from getenv", 1);
    assert_string_equal(pql_env_view_get(&v, "PQLEAK_TEST_VIEW"), "from getenv");
    assert_null(pql_env_view_get(&v, "PQLEAK_X3")); /* only in big, which the view no longer answers for */
    big[PQL_ENV_VIEW_MAX] = NULL;                    /* exactly full: whole */
    pql_env_view_take(&v, big);
    assert_int_equal(v.n, PQL_ENV_VIEW_MAX);
    assert_string_equal(pql_env_view_get(&v, "PQLEAK_X63"), "63");
    pql_env_view_take(&v, NULL);
    assert_int_equal(v.n, 0);
    assert_null(pql_env_view_get(&v, "PQLEAK_LOG"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_malformed_values_warn_once_each),
        cmocka_unit_test(test_crit_below_warn),
        cmocka_unit_test(test_idle_tx_needs_queries),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_variable_wins_over_option),
        cmocka_unit_test(test_option_bad_value_and_unknown_name),
        cmocka_unit_test(test_options_malformed_ignored_whole),
        cmocka_unit_test(test_misspelled_variable),
        cmocka_unit_test(test_early_bool_reads_options),
        cmocka_unit_test(test_help_option),
        cmocka_unit_test(test_env_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
