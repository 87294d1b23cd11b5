/* libFuzzer target: suppressions files as the shim parses and matches them (src/suppress.c) and as the
 * command reads them (tools/pqleak/suppress.c). Properties: the shim never fails, its rules are
 * non-empty single lines without surrounding white space, a match names a rule that matches; and when
 * the command accepts a file, both read the same rules. The input is the file; its last line also
 * serves as a frame's function, file and module. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "suppress.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The command's side; its header is named like the shim's, so declared here. */
struct cli_rule {
    char *text;
    char *pattern;
};
struct cli_rules {
    struct cli_rule *r;
    size_t n;
};
bool cli_rules_load(struct cli_rules *rules, const char *path);
void cli_rules_free(struct cli_rules *rules);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keep_stderr();
    return 0;
}

static int warnings;

static void count_warning(const char *line)
{
    (void)line;
    warnings++;
}

__attribute__((noreturn)) static void fail(const char *what, const char *detail, const char *input)
{
    fuzz_fail("%s: '%s'\ninput:\n%s", what, detail, input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return -1;
    char *text = strndup((const char *)data, size);
    struct pql_rules r = {0};
    warnings = 0;
    if (!pql_rules_parse(&r, text, "fuzz", count_warning))
        fail("pql_rules_parse failed", "", text);
    for (size_t i = 0; i < r.n; i++) {
        const char *p = r.v[i].pattern;
        size_t n = strlen(p);
        if (!n || strchr(p, '\n') || isspace((unsigned char)p[0]) || isspace((unsigned char)p[n - 1]))
            fail("a rule that is empty, spans lines or keeps white space", p, text);
    }

    /* A frame made of the last line. */
    const char *last = strrchr(text, '\n');
    last = last ? last + 1 : text;
    struct pql_frame f = {.pc = 0x1234, .function = last, .file = last, .line = 7, .module = last, .offset = 0x34};
    struct pql_frame g = {.pc = 0x5678, .module = "/usr/lib/libpq.so.5", .offset = 0x78};
    const struct pql_frame *frames[] = {&g, &f, NULL};
    int m = pql_rules_match(&r, frames, 3);
    if (m < -1 || m >= (int)r.n)
        fail("pql_rules_match returned no rule index", "", text);
    if (m >= 0 && !pql_rule_matches_frame(r.v[m].pattern, &f) && !pql_rule_matches_frame(r.v[m].pattern, &g))
        fail("pql_rules_match names a rule that matches no frame", r.v[m].pattern, text);

    /* The command's reading of the same file (text files only: the shim stops at a NUL byte). */
    if (strlen(text) == size) {
        int fd = memfd_create("suppressions", MFD_CLOEXEC);
        if (fd >= 0 && write(fd, data, size) == (ssize_t)size) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            struct cli_rules c = {0};
            if (cli_rules_load(&c, path)) {
                if (c.n != r.n) {
                    char detail[64];
                    snprintf(detail, sizeof detail, "%zu rules for the shim, %zu for the command", r.n, c.n);
                    fail("the shim and the command read different rules", detail, text);
                }
                for (size_t i = 0; i < c.n; i++)
                    if (strcmp(c.r[i].pattern, r.v[i].pattern) != 0) {
                        char detail[2048];
                        snprintf(detail, sizeof detail, "'%.900s' for the shim, '%.900s' for the command", r.v[i].pattern,
                                 c.r[i].pattern);
                        fail("the shim and the command read a rule differently", detail, text);
                    }
                cli_rules_free(&c);
            } else if (warnings == 0) {
                fail("the command rejects a file the shim takes without a warning", "", text);
            }
        }
        if (fd >= 0)
            close(fd);
    }
    pql_rules_free(&r);
    free(text);
    return 0;
}
