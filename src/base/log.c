/* Log destination and line writer. Lines are written with one write(2) each, so lines from threads
 * and processes sharing the file do not interleave. Opened lazily; on failure falls back to stderr
 * with one warning. Thread-safe; not for signal handlers. */
#include "log.h"

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_dest[1024] = "stderr";
static int log_fd = -1; /* -1: not opened yet */

static void fork_child(void);

void pql_log_setup(const char *dest)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
    pthread_mutex_lock(&log_lock);
    if (log_fd > 2)
        close(log_fd);
    log_fd = -1;
    snprintf(log_dest, sizeof(log_dest), "%s", dest && *dest ? dest : "stderr");
    pthread_mutex_unlock(&log_lock);
}

/* Expands %p in the destination; returns false if the result does not fit. */
static int open_dest(void)
{
    if (!strcmp(log_dest, "stderr"))
        return 2;
    char path[1200];
    size_t o = 0;
    for (const char *p = log_dest; *p && o < sizeof(path) - 24; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            o += (size_t)snprintf(path + o, sizeof(path) - o, "%d", (int)getpid());
            p++;
        } else {
            path[o++] = *p;
        }
    }
    path[o] = '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        dprintf(2, "pqleak: PQLEAK_LOG='%s' cannot be opened (%s); using stderr\n", path, strerror(errno));
        return 2;
    }
    return fd;
}

void pql_log_write(const char *text, size_t len)
{
    pthread_mutex_lock(&log_lock);
    if (log_fd < 0)
        log_fd = open_dest();
    while (len > 0) {
        ssize_t n = write(log_fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        text += n;
        len -= (size_t)n;
    }
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

/* In a forked child: forget the parent's lock state, and reopen a %p destination for the new pid. */
static void fork_child(void)
{
    pthread_mutex_init(&log_lock, NULL);
    if (strstr(log_dest, "%p") && log_fd > 2) {
        close(log_fd);
        log_fd = -1;
    }
}
