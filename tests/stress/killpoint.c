/* A fault injector for the stress tests, preloaded next to the shim: the write() that would complete the
 * KILLPOINT_AT-th report temp file (".pqleak-*.json.*.tmp"; 1 = the first) writes only half of its bytes and
 * then stops the process (SIGSTOP), so that the test can kill it with SIGKILL at a known point in the
 * middle of a report. With KILLPOINT_HOLD_MS=N it does not stop: the writing thread sleeps N ms there and
 * goes on. With KILLPOINT_EXIT_SIGNAL=1 as well, this library's destructor (it runs after the shim's,
 * which writes the exit report, when preloaded after the shim) asks for a live report (SIGUSR1) and
 * returns, letting the process end, once its write is held at the kill point (or after 3 s). Other
 * writes pass through untouched. write() may run in a signal handler (the
 * shim's writes a byte to a pipe): only async-signal-safe calls here. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n);

static ssize_t (*real_write)(int, const void *, size_t);
static long stop_at;       /* 0: never */
static long hold_ms;       /* 0: stop (SIGSTOP) at the kill point */
static int exit_signal;    /* the destructor asks for a live report */
static atomic_int holding; /* a write is held at the kill point */
static atomic_long files_seen;
static atomic_ulong last_ino; /* the temp file being written (fd numbers are reused) */

__attribute__((constructor)) static void init(void)
{
    real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *at = getenv("KILLPOINT_AT");
    stop_at = at ? atol(at) : 0;
    const char *hold = getenv("KILLPOINT_HOLD_MS");
    hold_ms = hold ? atol(hold) : 0;
    const char *sig = getenv("KILLPOINT_EXIT_SIGNAL");
    exit_signal = sig && *sig == '1';
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

__attribute__((destructor)) static void at_exit(void)
{
    if (!exit_signal)
        return;
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 3000 && !atomic_load(&holding); i++)
        sleep_ms(1);
}

/* True when fd is open on a file named .pqleak-*.tmp. */
static int is_report_temp(int fd)
{
    char link[32] = "/proc/self/fd/", path[4096];
    char digits[16];
    int nd = 0;
    for (int v = fd; nd == 0 || v > 0; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    size_t o = strlen(link);
    while (nd > 0)
        link[o++] = digits[--nd];
    link[o] = '\0';
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len <= 0)
        return 0;
    path[len] = '\0';
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    /* A report's temp file (".pqleak-PID-TRIGGER-SEQ.json.PID.SEQ.tmp"), not another file the shim
     * writes the same way (the reporter's ".pqleak-PID.reporter.PID.SEQ.tmp"). */
    return !strncmp(base, ".pqleak-", 8) && bl > 4 && !strcmp(base + bl - 4, ".tmp") &&
           strstr(base, ".json.");
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (!real_write)
        init();
    if (stop_at > 0 && fd > 2 && n > 1 && is_report_temp(fd)) {
        /* A new temp file each report: count files, not write calls. */
        struct stat st;
        if (fstat(fd, &st) == 0 &&
            atomic_exchange(&last_ino, (unsigned long)st.st_ino) != (unsigned long)st.st_ino)
            atomic_fetch_add(&files_seen, 1);
        if (atomic_load(&files_seen) == stop_at) {
            ssize_t w = real_write(fd, buf, n / 2);
            if (!hold_ms) {
                raise(SIGSTOP);
                return w;
            }
            atomic_store(&holding, 1);
            sleep_ms(hold_ms);
            return w;
        }
    }
    return real_write(fd, buf, n);
}
