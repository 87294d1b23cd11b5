/* libFuzzer target: the command's report reader (tools/pqleak/reportio.c) and what reads its result.
 * Properties: a file is loaded, or rejected with one error line naming it (never a crash or a silent
 * skip); a loaded one can be summarized and written as a merged report that loads back with the same
 * groups and counts. The error line is caught by pointing stderr at a memory file during the call; the
 * sanitizers' reports go to the real stderr (__sanitizer_set_report_fd). The input is the file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "baseline.h"
#include "fuzz.h"
#include "jsonout.h"
#include "junit.h"
#include "merge.h"
#include "print.h"
#include "reportio.h"
#include "suppress.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void __sanitizer_set_report_fd(void *fd);

static int captured = -1;
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_keep_stderr();
    __sanitizer_set_report_fd((void *)(intptr_t)fuzz_report_fd);
    captured = memfd_create("stderr", MFD_CLOEXEC);
    devnull = fopen("/dev/null", "we");
    return 0;
}

__attribute__((noreturn)) static void fail(const char *what, const char *detail)
{
    fuzz_fail("%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Loads path with stderr captured; returns whether it loaded and what was printed (caller frees). */
static bool load(struct cli_set *set, const char *path, char **err)
{
    fflush(stderr);
    ftruncate(captured, 0);
    lseek(captured, 0, SEEK_SET);
    int saved = dup(2); /* /dev/null under -close_fd_mask=2, the terminal otherwise */
    dup2(captured, 2);
    bool ok = cli_report_load(set, path);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t n = lseek(captured, 0, SEEK_END);
    *err = calloc(1, (size_t)n + 1);
    if (n > 0)
        pread(captured, *err, (size_t)n, 0);
    return ok;
}

static int memfile(const void *data, size_t size, char *path, size_t len)
{
    int fd = memfd_create("report", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        fail("cannot make a memory file", NULL);
    snprintf(path, len, "/proc/self/fd/%d", fd);
    return fd;
}

static long total_count(const struct cli_set *set)
{
    long n = 0;
    for (size_t i = 0; i < set->groups.n; i++)
        n += ((const struct cli_group *)set->groups.v[i])->count;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return -1;
    char path[64], *err;
    int fd = memfile(data, size, path, sizeof path);
    struct cli_set set = {0};
    bool ok = load(&set, path, &err);
    if (!ok) {
        /* Rejected: exactly one line, naming the file. */
        size_t len = strlen(err);
        if (!len || err[len - 1] != '\n' || strchr(err, '\n') != err + len - 1 || !strstr(err, path))
            fail("a rejected report without one error line naming it", err);
    } else if (*err) {
        fail("a loaded report printed an error", err);
    }
    free(err);
    close(fd);
    if (ok) {
        struct pql_rules rules = {0};
        cli_rules_apply(&rules, &set);
        cli_print_summary(devnull, &set, false);
        cli_junit_write(devnull, &set, true);
        cli_baseline_write(devnull, &set);
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (cli_jsonout_write(mem, &set) != 0)
            fail("the merged report could not be written", NULL);
        fclose(mem);
        /* The merged report reads back: same groups, same counts. */
        int fd2 = memfile(buf, len, path, sizeof path);
        struct cli_set again = {0};
        if (!load(&again, path, &err))
            fail("the command cannot read back its own merged report", err);
        free(err);
        if (again.groups.n != set.groups.n || total_count(&again) != total_count(&set)) {
            char detail[128];
            snprintf(detail, sizeof detail, "%zu groups / %ld leaks became %zu / %ld", set.groups.n, total_count(&set),
                     again.groups.n, total_count(&again));
            fail("the merged report reads back differently", detail);
        }
        cli_set_free(&again);
        close(fd2);
        free(buf);
    }
    cli_set_free(&set);
    return 0;
}
