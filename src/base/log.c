/* Log destination and line writer. Lines are written with one write(2) each, so lines from threads
 * and processes sharing the file do not interleave. Opened lazily and never blocking (a FIFO without a
 * reader, a full pipe: the line is dropped); on failure falls back to stderr with one warning. The
 * file's descriptor is checked (device and inode) before each write: a host that closed its fds and
 * reused the number gets nothing of ours, and the log is opened again. Text is written with every
 * control byte but the newline escaped (common/escape.h): names from the host (a program's path, a
 * function, a target) cannot move a terminal's cursor or start an escape sequence. Thread-safe; not
 * for signal handlers, except pql_log_write_signal_safe. */
#define _GNU_SOURCE
#include "log.h"

#include "names.h"
#include "escape.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_dest[1024] = "stderr";
static int log_fd = -1; /* -1: not opened yet */
static dev_t log_dev;   /* what log_fd (> 2) was opened on */
static ino_t log_ino;

static void fork_child(void);
static int checked_fd(void);

void pql_log_setup(const char *dest)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
    pthread_mutex_lock(&log_lock);
    if (checked_fd() > 2)
        close(log_fd);
    log_fd = -1;
    snprintf(log_dest, sizeof(log_dest), "%s", dest && *dest ? dest : "stderr");
    pthread_mutex_unlock(&log_lock);
}

/* Opens the destination (%p expanded); stderr (2), with one warning, when it cannot. */
static int open_dest(void)
{
    if (!strcmp(log_dest, "stderr"))
        return 2;
    char path[1200];
    int fd = -1;
    errno = ENAMETOOLONG;
    /* O_NONBLOCK: a FIFO with no reader fails at once (ENXIO) instead of blocking the host forever. */
    if (pql_expand_pid(path, sizeof(path), log_dest, (int)getpid()) >= 0)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    else
        snprintf(path, sizeof(path), "%s", log_dest);
    if (fd < 0) {
        dprintf(2, "pqleak: PQLEAK_LOG='%s' cannot be opened (%s); using stderr\n", path, strerror(errno));
        return 2;
    }
    /* A regular file never blocks; anything else (a FIFO, a terminal) stays non-blocking, so that a
     * reader that stops reading costs lines, never the host's progress. */
    struct stat st;
    if (fstat(fd, &st) == 0) {
        log_dev = st.st_dev;
        log_ino = st.st_ino;
        if (S_ISREG(st.st_mode))
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    return fd;
}

/* log_fd while it is still the file the log opened (or stderr), else -1: a number the host closed and
 * reused is the host's, never written to or closed by us. Async-signal-safe (fstat). */
static int checked_fd(void)
{
    int fd = log_fd;
    struct stat st;
    if (fd > 2 && (fstat(fd, &st) != 0 || st.st_dev != log_dev || st.st_ino != log_ino))
        return -1;
    return fd;
}

bool pql_write_full(int fd, const void *buf, size_t len)
{
    sigset_t xfsz, old, pending;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &xfsz, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGXFSZ);
    const char *p = buf;
    bool ok = true;
    int e = 0;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : ENOSPC;
            ok = false;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    /* The kernel sends SIGXFSZ to the writing thread: blocked, it is pending here; take ours back. */
    if (!was_pending) {
        sigpending(&pending);
        if (sigismember(&pending, SIGXFSZ)) {
            struct timespec zero = {0, 0};
            sigtimedwait(&xfsz, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return ok;
}

/* Writes text escaped (its newlines kept) in one write when memory allows, else in pieces. Caller holds
 * log_lock. */
static void write_escaped(const char *text, size_t len)
{
    size_t need = pql_escape(NULL, 0, text, len, true) + 1;
    char *out = malloc(need);
    if (out) {
        pql_write_full(log_fd, out, pql_escape(out, need, text, len, true));
        free(out);
        return;
    }
    char piece[4 * 256 + 1];
    for (size_t i = 0; i < len; i += 256) {
        size_t k = len - i < 256 ? len - i : 256;
        pql_write_full(log_fd, piece, pql_escape(piece, sizeof(piece), text + i, k, true));
    }
}

void pql_log_write(const char *text, size_t len)
{
    pthread_mutex_lock(&log_lock);
    if ((log_fd = checked_fd()) < 0)
        log_fd = open_dest();
    if (pql_escape_clean(text, len, true))
        pql_write_full(log_fd, text, len);
    else
        write_escaped(text, len);
    pthread_mutex_unlock(&log_lock);
}

void pql_log(const char *fmt, ...)
{
    char line[2048];
    int o = snprintf(line, sizeof(line), "pqleak: ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + o, sizeof(line) - (size_t)o - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len =
        (size_t)o + ((size_t)n < sizeof(line) - (size_t)o - 1 ? (size_t)n : sizeof(line) - (size_t)o - 2);
    line[len++] = '\n';
    pql_log_write(line, len);
}

void pql_log_write_signal_safe(const char *text, size_t len)
{
    int fd = checked_fd();
    bool opened = false;
    if (fd < 0 && strcmp(log_dest, "stderr") != 0) {
        char path[1200];
        if (pql_expand_pid(path, sizeof(path), log_dest, (int)getpid()) >= 0)
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
        opened = fd >= 0;
    }
    if (fd < 0)
        fd = 2;
    ssize_t n = write(fd, text, len);
    (void)n;
    if (opened)
        close(fd);
}

/* In a forked child: forget the parent's lock state, and reopen a %p destination for the new pid. */
static void fork_child(void)
{
    pthread_mutex_init(&log_lock, NULL);
    if (strstr(log_dest, "%p") && checked_fd() > 2) {
        close(log_fd);
        log_fd = -1;
    }
}
