/* Unit tests of common/rules.c, the one suppression parser and matcher: the syntax (comments, white
 * space, the canonical rule text), the one error policy (a malformed line rejects the whole text,
 * naming origin:line), files that must not be read (FIFO, directory, device, oversized) refused
 * without blocking, and glob matching on function, file, module and base names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules.h"

/* A scratch directory per test run. */
static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pqleak-test-rules.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes n bytes of data to dir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *data, size_t n)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static bool parse(struct pql_rules *r, const char *text, struct pql_rules_error *err)
{
    return pql_rules_parse(r, text, strlen(text), "supp.txt", err);
}

/* Every message is one line without control bytes. */
static void assert_one_line(const char *msg)
{
    for (const char *p = msg; *p; p++)
        assert_false((unsigned char)*p < 0x20 || *p == 0x7f);
}

static void test_syntax(void **state)
{
    (void)state;
    struct pql_rules r;
    struct pql_rules_error err;
    assert_true(parse(&r,
                      "# comment\n"
                      "\n"
                      "   \t\n"
                      "  leak:handle_*  # why\n"
                      "leak:libfoo.so\r\n"
                      "leak:   spaced pattern\t\n"
                      "leak:a#b\n"
                      "leak:c\t#d\n"
                      "  # indented comment\n"
                      "leak:last",
                      &err));
    assert_int_equal(r.n, 6);
    const char *want[] = {"handle_*", "libfoo.so", "spaced pattern", "a#b", "c", "last"};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(r.v[i].pattern, want[i]);
        /* The canonical text: what reports and hit counts name the rule by. */
        char text[64];
        snprintf(text, sizeof text, "leak:%s", want[i]);
        assert_string_equal(r.v[i].text, text);
        assert_ptr_equal(r.v[i].pattern, r.v[i].text + 5);
        assert_int_equal(r.v[i].hits, 0);
    }
    pql_rules_free(&r);
    assert_null(r.v);
    assert_int_equal(r.n, 0);
    pql_rules_free(&r); /* an empty set is fine */
}

static void test_empty(void **state)
{
    (void)state;
    struct pql_rules r;
    struct pql_rules_error err;
    assert_true(pql_rules_parse(&r, "", 0, "supp.txt", &err));
    assert_int_equal(r.n, 0);
    assert_true(pql_rules_parse(&r, NULL, 0, "supp.txt", NULL));
    assert_int_equal(r.n, 0);
    assert_true(parse(&r, "# only\n\n  # comments\n", &err));
    assert_int_equal(r.n, 0);
    assert_null(r.v);
    /* len counts, not a NUL: the text need not be a string. */
    assert_true(pql_rules_parse(&r, "leak:ab", 6, "supp.txt", &err));
    assert_int_equal(r.n, 1);
    assert_string_equal(r.v[0].pattern, "a");
    pql_rules_free(&r);
}

/* text of len bytes (strlen when 0) is rejected at line, its message quoting quoted. */
static void assert_rejected_n(const char *text, size_t len, int line, const char *quoted)
{
    struct pql_rules r = {(struct pql_rule *)1, 99};
    struct pql_rules_error err;
    assert_false(pql_rules_parse(&r, text, len ? len : strlen(text), "supp.txt", &err));
    assert_null(r.v);
    assert_int_equal(r.n, 0);
    assert_int_equal(err.line, line);
    char where[32];
    snprintf(where, sizeof where, "supp.txt:%d: ", line);
    assert_ptr_equal(strstr(err.msg, where), err.msg);
    assert_non_null(strstr(err.msg, "not a suppression rule"));
    assert_non_null(strstr(err.msg, quoted));
    assert_one_line(err.msg);
}

static void assert_rejected(const char *text, int line, const char *quoted)
{
    assert_rejected_n(text, 0, line, quoted);
}

static void test_malformed_rejects_all(void **state)
{
    (void)state;
    /* One bad line anywhere rejects the whole text: the good rules around it are not kept. */
    assert_rejected("leak:good\n# fine\nfrobnicate:open_db\nleak:also_good\n", 3, "\"frobnicate:open_db\"");
    assert_rejected("leak:\n", 1, "\"leak:\"");
    assert_rejected("leak:   # only a comment\n", 1, "\"leak:\"");
    assert_rejected("a\nb\n", 1, "\"a\"");
    assert_rejected("\n\nleak :x\n", 3, "\"leak :x\"");
    assert_rejected("LEAK:x\n", 1, "\"LEAK:x\"");
    assert_rejected("leak:x\nhandle_request", 2, "\"handle_request\"");
    /* A NUL byte makes a line malformed, and is quoted escaped. */
    assert_rejected_n("leak:ok\nleak:a\0b\n", 17, 2, "\"leak:a\\x00b\"");
    /* Control bytes are escaped: a message stays one line whatever the file holds. */
    assert_rejected("x\033[31mred\rback\n", 1, "\"x\\x1b[31mred\\x0dback\"");
}

static void test_message_bounds(void **state)
{
    (void)state;
    struct pql_rules r;
    struct pql_rules_error err;
    /* A long line is quoted up to PQL_RULES_QUOTE_MAX bytes, then "...". */
    char line[1000];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    assert_false(parse(&r, line, &err));
    const char *q = strchr(err.msg, '"');
    assert_non_null(q);
    assert_int_equal(strspn(q + 1, "x"), PQL_RULES_QUOTE_MAX);
    assert_non_null(strstr(err.msg, "...\" (expected leak:PATTERN or tx:PATTERN)"));
    /* A long origin keeps its end, the file's name, and the line number and quote still fit. */
    char origin[2000];
    memset(origin, 'd', sizeof origin);
    strcpy(origin + sizeof origin - 20, "/my-supp.txt");
    assert_false(pql_rules_parse(&r, "bad\n", 4, origin, &err));
    assert_true(strlen(err.msg) < PQL_RULES_MSG_MAX);
    assert_ptr_equal(strstr(err.msg, "..."), err.msg);
    assert_non_null(strstr(
        err.msg, "/my-supp.txt:1: not a suppression rule: \"bad\" (expected leak:PATTERN or tx:PATTERN)"));
    /* NULL err: still rejected. */
    assert_false(parse(&r, "bad\n", NULL));
    assert_int_equal(r.n, 0);
}

static void test_load_file(void **state)
{
    (void)state;
    struct pql_rules r;
    struct pql_rules_error err;
    const char *text = "# known\nleak:open_db\n   leak:*cache.c    # on purpose\n";
    const char *path = write_file("ok.supp", text, strlen(text));
    assert_true(pql_rules_load(&r, path, &err));
    assert_int_equal(r.n, 2);
    assert_string_equal(r.v[0].text, "leak:open_db");
    assert_string_equal(r.v[1].pattern, "*cache.c");
    pql_rules_free(&r);

    /* Malformed: rejected whole, naming PATH:LINE. */
    const char *bad = "# ok\nleak:fine\nfrobnicate:open_db\n";
    path = write_file("bad.supp", bad, strlen(bad));
    assert_false(pql_rules_load(&r, path, &err));
    assert_int_equal(r.n, 0);
    assert_int_equal(err.line, 3);
    char want[160];
    snprintf(want, sizeof want,
             "%s:3: not a suppression rule: \"frobnicate:open_db\" (expected leak:PATTERN or tx:PATTERN)",
             path);
    assert_string_equal(err.msg, want);

    /* An empty file: no rules, no error. */
    path = write_file("empty.supp", "", 0);
    assert_true(pql_rules_load(&r, path, &err));
    assert_int_equal(r.n, 0);
}

static void assert_refused(const char *path, const char *reason)
{
    struct pql_rules r = {0};
    struct pql_rules_error err;
    assert_false(pql_rules_load(&r, path, &err));
    assert_int_equal(r.n, 0);
    assert_null(r.v);
    assert_int_equal(err.line, 0);
    char want[256];
    snprintf(want, sizeof want, "%s: cannot read suppressions: %s", path, reason);
    assert_string_equal(err.msg, want);
    assert_one_line(err.msg);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "pql_rules_load blocked\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

static void test_load_refused(void **state)
{
    (void)state;
    /* Whatever is refused is refused at once: a FIFO without a writer would block an open or a read. */
    signal(SIGALRM, on_alarm);
    alarm(10);

    char path[128];
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_refused(path, strerror(ENOENT));

    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_refused(path, "is a FIFO, not a regular file");

    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_refused(path, "is a directory, not a file");

    assert_refused("/dev/null", "is a device, not a regular file");

    /* A symlink to a FIFO is a FIFO. */
    char link[128];
    snprintf(link, sizeof link, "%s/fifo-link", dir);
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_refused(link, "is a FIFO, not a regular file");

    alarm(0);
    signal(SIGALRM, SIG_DFL);
}

static void test_load_size_limit(void **state)
{
    (void)state;
    struct pql_rules r;
    struct pql_rules_error err;
    /* Exactly the limit is read: comment lines of 64 bytes and one rule. */
    size_t n = PQL_RULES_FILE_MAX;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i += 64) {
        memset(big + i, ' ', 64);
        big[i] = '#';
        big[i + 63] = '\n';
    }
    memcpy(big, "leak:first\n", 11);
    const char *path = write_file("limit.supp", big, n);
    assert_true(pql_rules_load(&r, path, &err));
    assert_int_equal(r.n, 1);
    assert_string_equal(r.v[0].pattern, "first");
    pql_rules_free(&r);

    /* One byte more is refused. */
    big[n] = '\n';
    path = write_file("big.supp", big, n + 1);
    assert_refused(path, "larger than 1048576 bytes (1 MiB)");
    free(big);
}

static void test_matches(void **state)
{
    (void)state;
    const char *fn = "handle_request", *file = "/src/app/server.c", *mod = "/usr/lib/libapp.so.1";
    assert_true(pql_rule_matches("handle_*", fn, file, mod));
    assert_true(pql_rule_matches("handle_request", fn, file, mod));
    assert_true(pql_rule_matches("server.c", fn, file, mod));        /* the file's base name */
    assert_true(pql_rule_matches("/src/*/server.c", fn, file, mod)); /* the whole path */
    assert_true(pql_rule_matches("*server.c", fn, file, mod));
    assert_true(pql_rule_matches("libapp.so*", fn, file, mod)); /* the module's base name */
    assert_true(pql_rule_matches("*/libapp.so.?", fn, file, mod));
    assert_true(pql_rule_matches("[h]andle_re?uest", fn, file, mod));
    assert_false(pql_rule_matches("handle", fn, file, mod)); /* globs match whole strings */
    assert_false(pql_rule_matches("client.c", fn, file, mod));
    assert_false(pql_rule_matches("app/server.c", fn, file, mod)); /* whole, or the last component */
    assert_false(pql_rule_matches("/usr/lib", fn, file, mod));
    /* A function name with a '/' in it also matches by its last component, like a path. */
    assert_true(pql_rule_matches("b", "a/b", NULL, NULL));
    /* Glob characters escaped match literally. */
    assert_true(pql_rule_matches("get\\[conn]\\*", "get[conn]*", NULL, NULL));
    assert_false(pql_rule_matches("get\\[conn]\\*", "getc*", NULL, NULL));
    /* NULLs never match, not even "*". */
    assert_false(pql_rule_matches("*", NULL, NULL, NULL));
    assert_true(pql_rule_matches("*", NULL, NULL, "/bin/x"));
    assert_false(pql_rule_matches(NULL, fn, file, mod));
    assert_true(pql_rule_matches("server.c", NULL, file, NULL));
    assert_false(pql_rule_matches("server.c", fn, NULL, mod));
}

/* tx: rules and FUNCTION@FILE: parsed into their parts; malformed ones rejected whole. */
static void test_tx_and_function_at_file(void **state)
{
    (void)state;
    struct pql_rules r;
    struct pql_rules_error err;
    assert_true(parse(&r,
                      "leak:handle_order@app.py\n"
                      "tx:  begin_*\n"
                      "tx:run@*/jobs/*.py # why\n"
                      "leak:get\\@conn\n"
                      "leak:[@]x@lib@2.so\n"
                      "leak:plain\n",
                      &err));
    assert_int_equal(r.n, 6);
    assert_string_equal(r.v[0].text, "leak:handle_order@app.py");
    assert_int_equal(r.v[0].stack, PQL_RULE_LEAK);
    assert_string_equal(r.v[0].function, "handle_order");
    assert_string_equal(r.v[0].file, "app.py");
    assert_string_equal(r.v[1].text, "tx:begin_*");
    assert_ptr_equal(r.v[1].pattern, r.v[1].text + 3);
    assert_int_equal(r.v[1].stack, PQL_RULE_TX);
    assert_null(r.v[1].function);
    assert_null(r.v[1].file);
    assert_string_equal(r.v[2].function, "run");
    assert_string_equal(r.v[2].file, "*/jobs/*.py");
    assert_int_equal(r.v[2].stack, PQL_RULE_TX);
    assert_null(r.v[3].function);                 /* an escaped '@' does not split */
    assert_string_equal(r.v[4].function, "[@]x"); /* nor one in a bracket expression; the first other does */
    assert_string_equal(r.v[4].file, "lib@2.so");
    assert_null(r.v[5].function);
    for (size_t i = 0; i < r.n; i++)
        assert_int_equal(r.v[i].groups, 0);
    pql_rules_free(&r);
    assert_rejected("leak:ok\nleak:@app.py\n", 2, "leak:@app.py");
    assert_rejected("leak:handle_order@\n", 1, "leak:handle_order@");
    assert_rejected("tx:\n", 1, "tx:");
    assert_rejected("tx :a\n", 1, "tx :a");
    assert_rejected("TX:a\n", 1, "TX:a");
}

static void test_matches_frame(void **state)
{
    (void)state;
    struct pql_rules r;
    struct pql_rules_error err;
    assert_true(parse(
        &r, "leak:handle_*@server.c\nleak:handle_request\nleak:pg_db_login6@Pg.so\nleak:a\\@b\n", &err));
    const char *fn = "handle_request", *file = "/src/app/server.c", *mod = "/usr/lib/libapp.so.1";
    /* FUNCTION@FILE: both in one frame. */
    assert_true(pql_rule_matches_frame(&r.v[0], fn, file, mod));
    assert_false(pql_rule_matches_frame(&r.v[0], fn, "/src/app/client.c", mod));
    assert_false(pql_rule_matches_frame(&r.v[0], "main", file, mod));
    assert_false(pql_rule_matches_frame(&r.v[0], NULL, file, mod));
    assert_false(pql_rule_matches_frame(&r.v[0], "server.c", NULL, mod)); /* not the function as a file */
    /* The FILE part matches the module too (a frame without debug information). */
    assert_true(pql_rule_matches_frame(&r.v[2], "pg_db_login6", NULL,
                                       "/usr/lib/x86_64-linux-gnu/perl5/5.36/auto/DBD/Pg/Pg.so"));
    assert_false(pql_rule_matches_frame(&r.v[2], "pg_db_login6", NULL, "/usr/lib/libother.so"));
    /* Without '@', as pql_rule_matches. */
    assert_true(pql_rule_matches_frame(&r.v[1], fn, NULL, NULL));
    assert_true(pql_rule_matches_frame(&r.v[3], "a@b", NULL, NULL));
    assert_false(pql_rule_matches_frame(&r.v[3], "a", "b", NULL));
    pql_rules_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_malformed_rejects_all),
        cmocka_unit_test(test_message_bounds),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_refused),
        cmocka_unit_test(test_load_size_limit),
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_tx_and_function_at_file),
        cmocka_unit_test(test_matches_frame),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
