/* Unit tests of common/names.c: report file names as the shim writes them, the parser
 * the command reads them with (round trip, and names it must refuse), and the live-directory rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "names.h"

static void test_report_names(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(pql_report_file_name(buf, sizeof buf, "/tmp/r", 1234, PQL_TRIGGER_SIGNAL, 7), 32);
    assert_string_equal(buf, "/tmp/r/pqleak-1234-signal-7.json");
    /* The same as the format the shim used. */
    char want[128];
    snprintf(want, sizeof want, "%s/pqleak-%d-%s-%u.json", "d", INT_MAX, "exit", 0u);
    assert_true(pql_report_file_name(buf, sizeof buf, "d", INT_MAX, "exit", 0) > 0);
    assert_string_equal(buf, want);
    /* Too small: -1 and no usable name. */
    assert_int_equal(pql_report_file_name(buf, 20, "/tmp/r", 1234, "signal", 7), -1);
    assert_string_equal(buf, "");
    assert_int_equal(pql_report_file_name(buf, 32, "/tmp/r", 1234, "signal", 7), -1);
    assert_int_equal(pql_report_file_name(buf, 33, "/tmp/r", 1234, "signal", 7), 32);
    assert_int_equal(pql_report_file_name(buf, sizeof buf, NULL, 1, "exit", 1), -1);
    assert_int_equal(pql_report_file_name(NULL, 0, "d", 1, "exit", 1), -1);
}

static void test_parse(void **state)
{
    (void)state;
    int pid = 0;
    unsigned seq = 0;
    char trigger[16];
    assert_true(pql_report_file_parse("pqleak-1234-signal-7.json", &pid, trigger, sizeof trigger, &seq));
    assert_int_equal(pid, 1234);
    assert_string_equal(trigger, "signal");
    assert_int_equal(seq, 7);
    assert_true(pql_report_file_parse("pqleak-1-exit-4294967295.json", &pid, trigger, sizeof trigger, &seq));
    assert_int_equal(seq, 4294967295u);
    assert_true(pql_report_file_parse("pqleak-1-exit-0.json", NULL, NULL, 0, NULL));

    /* Round trip of what the shim writes. */
    char buf[128];
    pql_report_file_name(buf, sizeof buf, "/d", 99, PQL_TRIGGER_SUSPECT, 12);
    assert_true(pql_report_file_parse(buf + 3, &pid, trigger, sizeof trigger, &seq));
    assert_int_equal(pid, 99);
    assert_string_equal(trigger, PQL_TRIGGER_SUSPECT);
    assert_int_equal(seq, 12);

    const char *bad[] = {
        ".pqleak-1-2.tmp",
        "pqleak-1-signal-7.json.tmp",
        "pqleak-1-signal-.json",
        "pqleak--signal-7.json",
        "pqleak-1--7.json",
        "pqleak-1-signal-7x.json",
        "pqleak-x-signal-7.json",
        "pqleak-1-signal.json",
        "merged.json",
        "pqleak-1-signal-4294967296.json",
        "pqleak-2147483648-exit-1.json",
        "pqleak-1-a/b-7.json",
        "pqleak-.json",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(pql_report_file_parse(bad[i], &pid, trigger, sizeof trigger, &seq));
    assert_false(pql_report_file_parse(NULL, &pid, trigger, sizeof trigger, &seq));
    /* A trigger longer than the caller's buffer is refused, not cut. */
    assert_false(pql_report_file_parse("pqleak-1-signal-7.json", &pid, trigger, 6, &seq));
    assert_true(pql_report_file_parse("pqleak-1-signal-7.json", &pid, trigger, 7, &seq));
}

static void test_live_dir(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(pql_live_dir_default(buf, sizeof buf, NULL, 1000), 16);
    assert_string_equal(buf, "/tmp/pqleak-1000");
    assert_true(pql_live_dir_default(buf, sizeof buf, "/var/tmp", 0) > 0);
    assert_string_equal(buf, "/var/tmp/pqleak-0");
    /* TMPDIR only when absolute. */
    assert_true(pql_live_dir_default(buf, sizeof buf, "relative/tmp", 5) > 0);
    assert_string_equal(buf, "/tmp/pqleak-5");
    assert_true(pql_live_dir_default(buf, sizeof buf, "", 5) > 0);
    assert_string_equal(buf, "/tmp/pqleak-5");
    assert_true(pql_live_dir_default(buf, sizeof buf, "/x", 4294967295u) > 0);
    assert_string_equal(buf, "/x/pqleak-4294967295");
    assert_int_equal(pql_live_dir_default(buf, 10, NULL, 1000), -1);
}

/* The live-report directory the shim uses and pqleak status trusts: a directory of the user, mode 0700. */
static void test_live_dir_trusted(void **state)
{
    (void)state;
    struct stat st = {.st_mode = S_IFDIR | 0700, .st_uid = 1000};
    assert_true(pql_live_dir_trusted(&st, 1000));
    assert_false(pql_live_dir_trusted(&st, 1001));
    st.st_mode = S_IFDIR | 0710;
    assert_false(pql_live_dir_trusted(&st, 1000));
    st.st_mode = S_IFDIR | 0701;
    assert_false(pql_live_dir_trusted(&st, 1000));
    st.st_mode = S_IFLNK | 0700;
    assert_false(pql_live_dir_trusted(&st, 1000));
    st.st_mode = S_IFREG | 0700;
    assert_false(pql_live_dir_trusted(&st, 1000));
}

/* The run channel's message, as tools/pqleak/run.c parses it; a long reason is cut, not dropped. */
static void test_run_message(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(pql_run_message(buf, sizeof buf, 1234, "no exit report"), 21);
    assert_string_equal(buf, "F 1234 no exit report");
    assert_int_equal(pql_run_message(buf, 12, INT_MAX, "x"), -1);
    assert_string_equal(buf, "");
    assert_int_equal(pql_run_message(buf, 16, 1234, "no exit report"), 15);
    assert_string_equal(buf, "F 1234 no exit ");
    assert_int_equal(pql_run_message(buf, sizeof buf, 1, NULL), 4);
    assert_string_equal(buf, "F 1 ");
}

/* The reporter's advertisement as the shim writes it and pqleak status reads it. */
static void test_advert(void **state)
{
    (void)state;
    char buf[160];
    struct pql_advert a = {1234, 1240, 10, 98765, 0x0123456789abcdefULL}, b;
    assert_int_equal(pql_advert_format(buf, sizeof buf, &a), 79);
    assert_string_equal(buf,
                        "pqleak-reporter pid=1234 tid=1240 signal=10 start=98765 token=0123456789abcdef\n");
    assert_true(pql_advert_parse(buf, &b));
    assert_int_equal(b.pid, 1234);
    assert_int_equal(b.tid, 1240);
    assert_int_equal(b.sig, 10);
    assert_true(b.start == 98765 && b.token == 0x0123456789abcdefULL);
    assert_true(pql_advert_parse("pqleak-reporter pid=1 tid=2 signal=12 start=3 token=1", &b));
    assert_true(b.token == 1);
    assert_int_equal(pql_advert_format(buf, 79, &a), -1);
    const char *bad[] = {
        "",
        "pqleak-reporter pid=1 tid=2 signal=12 start=3",
        "pqleak-reporter pid=1 tid=2 signal=12 start=3 token=",
        "pqleak-reporter pid=-1 tid=2 signal=12 start=3 token=1",
        "pqleak-reporter pid=1 tid=2 signal=12 start=3 token=1x",
        "pqleak-reporter pid=2147483648 tid=2 signal=12 start=3 token=1",
        "pqleak-reporter pid=1 tid=2 signal=12 start=3 token=00000000000000001",
        "pqleak-reporter  pid=1 tid=2 signal=12 start=3 token=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(pql_advert_parse(bad[i], &b));
    assert_false(pql_advert_parse(NULL, &b));
    assert_int_equal(pql_advert_file_name(buf, sizeof buf, "/tmp/pqleak-5", 77), 32);
    assert_string_equal(buf, "/tmp/pqleak-5/pqleak-77.reporter");
    assert_int_equal(pql_advert_file_name(buf, 32, "/tmp/pqleak-5", 77), -1);
}

/* PQLEAK_SIGNAL's values, read alike by the shim (config.c) and pqleak status (probe.c). */
static void test_signal(void **state)
{
    (void)state;
    int sig = -1;
    assert_true(pql_signal_parse("USR2", &sig));
    assert_int_equal(sig, SIGUSR2);
    assert_true(pql_signal_parse("sigusr1", &sig));
    assert_int_equal(sig, SIGUSR1);
    assert_true(pql_signal_parse("SIGUSR2", &sig));
    assert_int_equal(sig, SIGUSR2);
    assert_true(pql_signal_parse("None", &sig));
    assert_int_equal(sig, 0);
    assert_true(pql_signal_parse("0", &sig));
    assert_int_equal(sig, 0);
    sig = 7;
    const char *bad[] = {"", "SIG", "USR3", "10", "usr1 ", "HUP"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(pql_signal_parse(bad[i], &sig));
    assert_false(pql_signal_parse(NULL, &sig));
    assert_int_equal(sig, 7);
    assert_string_equal(pql_signal_name(SIGUSR1), "USR1");
    assert_string_equal(pql_signal_name(SIGUSR2), "USR2");
    assert_string_equal(pql_signal_name(0), "none");
}

/* Field 22 of /proc/PID/stat, as sscanf reads it past the command name. */
static void test_start_time(void **state)
{
    (void)state;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    unsigned long long want = 0;
    assert_int_equal(
        sscanf(strrchr(buf, ')') + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &want),
        1);
    assert_true(want > 0);
    assert_true(pql_proc_start_time(0) == want);
    assert_true(pql_proc_start_time(getpid()) == want);
    assert_true(pql_proc_start_time(1) > 0);
    assert_true(pql_proc_start_time(0x7fffffff) == 0);
}

static void test_field_literals(void **state)
{
    (void)state;
    /* The macros are string literals: they paste into format strings. */
    char buf[64];
    snprintf(buf, sizeof buf, "{\"" PQL_F_SCHEMA "\": \"" PQL_SCHEMA "\", \"" PQL_F_OPEN "\": %ld}", 3L);
    assert_string_equal(buf, "{\"schema\": \"pqleak/1\", \"open\": 3}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_names),     cmocka_unit_test(test_parse),
        cmocka_unit_test(test_live_dir),         cmocka_unit_test(test_run_message),
        cmocka_unit_test(test_field_literals),   cmocka_unit_test(test_advert),
        cmocka_unit_test(test_start_time),       cmocka_unit_test(test_signal),
        cmocka_unit_test(test_live_dir_trusted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
