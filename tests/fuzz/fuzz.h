/* Shared by the fuzz targets: property failures are printed on the real stderr, kept aside at start-up,
 * because the short runs close the targets' stderr (-close_fd_mask=2) to silence the parsers' own
 * warnings; then abort(), which libFuzzer turns into a crash with the input saved. */
#ifndef PQLEAK_FUZZ_H
#define PQLEAK_FUZZ_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int fuzz_report_fd = 2;

/* Call from LLVMFuzzerInitialize, before libFuzzer closes stderr. */
static inline void fuzz_keep_stderr(void)
{
    int fd = dup(2);
    if (fd >= 0)
        fuzz_report_fd = fd;
}

/* The LLVMFuzzerInitialize of a target that needs nothing more than its stderr kept. */
#define FUZZ_INITIALIZE_KEEPING_STDERR                                                                       \
    int LLVMFuzzerInitialize(int *argc, char ***argv);                                                       \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                                                        \
    {                                                                                                        \
        (void)argc;                                                                                          \
        (void)argv;                                                                                          \
        fuzz_keep_stderr();                                                                                  \
        return 0;                                                                                            \
    }

__attribute__((noreturn, format(printf, 1, 2))) static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdprintf(fuzz_report_fd, fmt, ap);
    va_end(ap);
    dprintf(fuzz_report_fd, "\n");
    abort();
}

#endif
