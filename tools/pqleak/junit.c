/* The JUnit XML writer (junit.h). Every string from a report goes through xml_text, which escapes
 * markup and replaces what XML 1.0 cannot carry at all (control characters, invalid UTF-8) with
 * U+FFFD, so the document is well-formed whatever the reports hold. Command-line process only. */
#include "junit.h"

#include "names.h"
#include "print.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s that XML allows, or 0. */
static size_t xml_char_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
    size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (!n)
        return 0;
    unsigned long cp = c & (0x3F >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return n;
}

static void xml_text(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            s++;
            continue;
        case '<':
            fputs("&lt;", out);
            s++;
            continue;
        case '>':
            fputs("&gt;", out);
            s++;
            continue;
        case '"':
            fputs("&quot;", out);
            s++;
            continue;
        case '\'':
            fputs("&apos;", out);
            s++;
            continue;
        default:
            break;
        }
        size_t n = xml_char_len(s);
        if (n) {
            fwrite(s, 1, n, out);
            s += n;
        } else {
            fputs("\xEF\xBF\xBD", out);
            s++;
        }
    }
}

/* file="..." line="..." of the frame a test case is about, for the CI reporters (GitLab, Jenkins,
 * GitHub) that link a test case to its source line; nothing for what the frame does not know. */
static void location_attrs(FILE *out, const struct cli_frame *f)
{
    if (!f || !f->file)
        return;
    fputs(" file=\"", out);
    xml_text(out, f->file);
    fputs("\"", out);
    if (f->line > 0)
        fprintf(out, " line=\"%ld\"", f->line);
}

/* The test case's time: the longest any of the group's connections had been open when its report was
 * made ("age_s"), in seconds; 0 when no connection says. */
static double group_time(const struct cli_group *g)
{
    double t = 0;
    for (size_t i = 0; i < g->conns.n; i++) {
        const struct cli_conn *c = g->conns.v[i];
        const json_t *age = json_object_get(c->obj, "age_s");
        if (json_is_number(age) && json_number_value(age) > t)
            t = json_number_value(age);
    }
    return t;
}

/* Under pytest, the tests of a group's connections (pytest's PYTEST_CURRENT_TEST as recorded, e.g.
 * "test_orders.py::test_checkout (call)"): opened: "test", the tests that opened them; tx: "tx_test",
 * the tests that began their transactions. Borrowed, distinct, in order. */
struct tests {
    struct cli_vec opened, tx;
};

static void group_tests(const struct cli_group *g, struct tests *t)
{
    *t = (struct tests){0};
    cli_group_strings(g, NULL, PQL_F_TEST, &t->opened);
    cli_group_strings(g, NULL, PQL_F_TX_TEST, &t->tx);
}

/* The tests a test case is named by: for a leak with a transaction stack (a teardown, or a
 * transaction open at exit) the tests that began the transaction, the ones that left the connection
 * in it (a fixture's or a pool's connection was opened by an earlier test); else, or when none is
 * known, the tests that opened the connections. */
static const struct cli_vec *naming_tests(const struct cli_group *g, const struct tests *t)
{
    bool tx = g->has_tx || strcmp(g->kind, PQL_KIND_TEARDOWN) == 0;
    return tx && t->tx.n ? &t->tx : &t->opened;
}

/* The stack text, as the summary prints it, in a memory buffer. Caller frees. */
static char *stack_text(const struct cli_group *g, const struct tests *t, bool full)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return cli_xstrdup("(out of memory)");
    char *where = cli_group_where(g);
    fprintf(m, "in: %s\n", where);
    free(where);
    for (size_t i = 0; i < t->opened.n; i++)
        fprintf(m, "test: %s\n", (const char *)t->opened.v[i]);
    for (size_t i = 0; i < t->tx.n; i++)
        fprintf(m, "transaction began in test: %s\n", (const char *)t->tx.v[i]);
    for (size_t i = 0; i < g->targets.n; i++)
        fprintf(m, "to: %s\n", (const char *)g->targets.v[i]);
    cli_print_group_stacks(m, g, "", full);
    fclose(m);
    return buf;
}

/* The text of a misuse finding. Caller frees. */
static char *misuse_text(const struct cli_misuse *u, bool full)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return cli_xstrdup("(out of memory)");
    fprintf(m, "in: pid %ld (opened by pid %ld)%s\n", u->pid, u->opened_by, u->closed ? ", closed it" : "");
    cli_print_misuse_stacks(m, u, "", full);
    fclose(m);
    return buf;
}

/* A misuse group (cli_misuse_groups) as a failing test case; number: its position among all cases. */
static void misuse_case(FILE *out, const struct cli_misuse_group *u, size_t number, bool full)
{
    const struct cli_misuse *m = u->first;
    char *text = misuse_text(m, full);
    fputs("    <testcase classname=\"pqleak.misuse\" name=\"", out);
    xml_text(out, m->kind);
    fputs(" connection misuse at ", out);
    xml_text(out, u->site);
    fprintf(out, " [%zu]\"", number);
    location_attrs(out, cli_misuse_site_frame(m));
    fputs(" time=\"0\">\n      <failure type=\"misuse\" message=\"connection misused (", out);
    xml_text(out, m->kind);
    fputs(")\">", out);
    xml_text(out, text);
    fputs("</failure>\n    </testcase>\n", out);
    free(text);
}

/* One leak group's test case; number: its position among the groups. */
static void group_case(FILE *out, const struct cli_group *g, size_t number, bool strict, bool full)
{
    char *site = cli_group_site(g);
    struct tests tests;
    group_tests(g, &tests);
    const struct cli_vec *names = naming_tests(g, &tests);
    char *text = stack_text(g, &tests, full);
    char n[64];
    cli_plural(n, sizeof n, g->count, "connection");
    /* The name leaves out the count, so a CI's history follows the leak site from run to run; the
     * kind and the group's number keep names apart. Under pytest it starts with the test to look at
     * (naming_tests; the first, when several: the text lists them all). */
    fputs("    <testcase classname=\"pqleak.", out);
    xml_text(out, g->kind);
    fputs("\" name=\"", out);
    if (names->n) {
        xml_text(out, names->v[0]);
        fputs(names->n > 1 ? " and other tests: " : ": ", out);
    }
    xml_text(out, g->kind);
    fputs(" connection leak at ", out);
    xml_text(out, site);
    fprintf(out, " [%zu]\"", number);
    location_attrs(out, cli_group_site_frame(g));
    fprintf(out, " time=\"%.3f\">\n", group_time(g));
    cli_vec_free(&tests.opened);
    cli_vec_free(&tests.tx);
    if (cli_group_counts(g, strict)) {
        fprintf(out, "      <failure type=\"");
        xml_text(out, g->kind);
        fprintf(out, "\" message=\"%s leaked (", n);
        xml_text(out, g->kind);
        fputs(")\">", out);
        xml_text(out, text);
        fputs("</failure>\n", out);
    } else if (g->suppressed) {
        fputs("      <skipped message=\"suppressed by ", out);
        xml_text(out, g->rule ? g->rule : "a rule");
        fputs("\"/>\n", out);
    } else {
        fprintf(out, "      <system-out>%s held until exit (counted only with --strict)\n", n);
        xml_text(out, text);
        fputs("</system-out>\n", out);
    }
    fputs("    </testcase>\n", out);
    free(site);
    free(text);
}

void cli_junit_write(FILE *out, const struct cli_set *set, bool strict)
{
    size_t failures = 0, skipped = 0, groups = 0; /* groups holding connections */
    for (size_t i = 0; i < set->groups.n; i++) {
        const struct cli_group *g = set->groups.v[i];
        failures += cli_group_counts(g, strict);
        skipped += g->suppressed && g->count > 0;
        groups += g->count > 0;
    }
    struct cli_misuse_group *misuse_groups;
    size_t misuse = cli_misuse_groups(set, &misuse_groups);
    failures += misuse;
    size_t tests = groups + misuse ? groups + misuse : 1;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out, "<testsuites name=\"pqleak\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\">\n",
            tests, failures, skipped);
    fprintf(out,
            "  <testsuite name=\"pqleak\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\">\n",
            tests, failures, skipped);
    if (!groups && !misuse) {
        char n[64];
        fprintf(out, "    <testcase classname=\"pqleak\" name=\"no connection leaks\" time=\"0\">\n");
        fprintf(out, "      <system-out>no connection leaks in %s</system-out>\n",
                cli_plural(n, sizeof n, (long)set->procs.n, "process"));
        fprintf(out, "    </testcase>\n");
    }
    for (size_t i = 0; i < set->groups.n; i++) {
        const struct cli_group *g = set->groups.v[i];
        if (g->count > 0) /* none left: count 0, or handed to a child */
            group_case(out, g, i + 1, strict, set->full_stacks);
    }
    for (size_t i = 0; i < misuse; i++)
        misuse_case(out, &misuse_groups[i], set->groups.n + i + 1, set->full_stacks);
    cli_misuse_groups_free(misuse_groups, misuse);
    fputs("  </testsuite>\n</testsuites>\n", out);
}
