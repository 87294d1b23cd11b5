/* libFuzzer target: suppressions files as the one parser reads them (common/rules.c), which the shim
 * and the command share. Properties: a text is accepted or rejected whole; an accepted text's rules
 * are non-empty single-line patterns without surrounding white space or a comment inside, written
 * "leak:PATTERN"; a rejected text leaves no rules and one line naming "fuzz:LINE"; the rules' own
 * texts, one a line (indented and commented or not), parse back to the same patterns; and the last
 * line, glob-escaped, is a rule matching itself as a function, file or module, never NULLs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "rules.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

FUZZ_INITIALIZE_KEEPING_STDERR

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The input as a printable string for failure messages (NUL bytes shown as \0). */
static char *printable(const uint8_t *data, size_t size)
{
    char *s = malloc(2 * size + 1), *p = s;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\0') {
            *p++ = '\\';
            *p++ = '0';
        } else {
            *p++ = (char)data[i];
        }
    }
    *p = '\0';
    return s;
}

static const uint8_t *g_data;
static size_t g_size;

__attribute__((noreturn)) static void fail(const char *what, const char *detail)
{
    fuzz_fail("%s: '%s'\ninput:\n%s", what, detail, printable(g_data, g_size));
}

static void check_rule(const struct pql_rule *rule)
{
    const char *p = rule->pattern;
    size_t n = strlen(p);
    if (!n || is_space(p[0]) || is_space(p[n - 1]))
        fail("a rule that is empty or keeps surrounding white space", p);
    if (strchr(p, '\n'))
        fail("a rule that spans lines", p);
    for (size_t i = 1; i < n; i++)
        if (p[i] == '#' && is_space(p[i - 1]))
            fail("a rule that keeps a comment", p);
    size_t prefix = rule->stack == PQL_RULE_TX ? 3 : 5;
    if (strncmp(rule->text, rule->stack == PQL_RULE_TX ? "tx:" : "leak:", prefix) != 0 ||
        rule->text + prefix != p)
        fail("a rule's text is not leak:PATTERN or tx:PATTERN", rule->text);
    if (!rule->function != !rule->file || (rule->function && (!*rule->function || !*rule->file)))
        fail("a FUNCTION@FILE rule with an empty part", p);
    if (rule->hits != 0)
        fail("a new rule has hits", p);
}

static void check_rejected(const struct pql_rules *r, const struct pql_rules_error *err)
{
    if (r->v || r->n)
        fail("a rejected text left rules", err->msg);
    if (err->line < 1)
        fail("a malformed line is not named by its number", err->msg);
    char where[32];
    snprintf(where, sizeof where, "fuzz:%d: ", err->line);
    if (strncmp(err->msg, where, strlen(where)) != 0)
        fail("the message does not start with origin:line", err->msg);
    size_t n = strlen(err->msg);
    if (n >= PQL_RULES_MSG_MAX)
        fail("the message overflows", err->msg);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err->msg[i] < 0x20 || err->msg[i] == 0x7f)
            fail("the message is not one printable line", err->msg);
}

/* The rules' texts, one a line; every other one indented and followed by a comment. Caller frees. */
static char *rewrite(const struct pql_rules *r, size_t *len)
{
    size_t cap = 1;
    for (size_t i = 0; i < r->n; i++)
        cap += strlen(r->v[i].text) + 16;
    char *s = malloc(cap), *p = s;
    for (size_t i = 0; i < r->n; i++)
        p += sprintf(p, i % 2 ? "\t %s  # c\n" : "%s\n", r->v[i].text);
    *len = (size_t)(p - s);
    return s;
}

/* s with the glob characters * ? [ \ escaped (as the command's baseline writes rules). */
static char *glob_escape(const char *s, size_t n)
{
    char *out = malloc(2 * n + 1), *p = out;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[\\", s[i]))
            *p++ = '\\';
        *p++ = s[i];
    }
    *p = '\0';
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return -1;
    g_data = data;
    g_size = size;
    const char *text = (const char *)data;
    struct pql_rules r = {(struct pql_rule *)&r, 12345}; /* overwritten, whatever it held */
    struct pql_rules_error err;
    if (!pql_rules_parse(&r, text, size, "fuzz", &err)) {
        check_rejected(&r, &err);
    } else {
        for (size_t i = 0; i < r.n; i++)
            check_rule(&r.v[i]);
        /* Round trip. */
        size_t len;
        char *again = rewrite(&r, &len);
        struct pql_rules r2;
        if (!pql_rules_parse(&r2, again, len, "again", &err))
            fail("the rules' own texts are rejected", err.msg);
        if (r2.n != r.n) {
            char detail[64];
            snprintf(detail, sizeof detail, "%zu rules, then %zu", r.n, r2.n);
            fail("the rules' own texts parse to other rules", detail);
        }
        for (size_t i = 0; i < r.n; i++)
            if (strcmp(r.v[i].pattern, r2.v[i].pattern) != 0)
                fail("a rule's own text parses to another pattern", r.v[i].pattern);
        pql_rules_free(&r2);
        free(again);
    }

    /* The last line (to a NUL byte) as a frame. */
    const char *nl = memrchr(text, '\n', size);
    const char *last = nl ? nl + 1 : text;
    size_t n = strnlen(last, size - (size_t)(last - text));
    char *name = strndup(last, n);
    for (size_t i = 0; i < r.n; i++) {
        if (pql_rule_matches(r.v[i].pattern, NULL, NULL, NULL))
            fail("a rule matches a frame of NULLs", r.v[i].pattern);
        pql_rule_matches(r.v[i].pattern, name, name, name);
    }
    char *literal = glob_escape(name, n);
    if (!pql_rule_matches(literal, name, NULL, NULL) || !pql_rule_matches(literal, NULL, name, NULL) ||
        !pql_rule_matches(literal, NULL, NULL, name))
        fail("a glob-escaped name does not match itself", name);
    free(literal);
    free(name);
    pql_rules_free(&r);
    return 0;
}
