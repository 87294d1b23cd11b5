/* Atomic file writes (outfile.h). */
#define _GNU_SOURCE
#include "outfile.h"

#include "config.h"
#include "names.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint seq;

bool pql_outfile_write(const char *path, mode_t mode, const struct pql_buf *b)
{
    if (b->failed) {
        errno = ENOMEM;
        return false;
    }
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    char tmp[PQL_PATH_MAX + 128];
    if (snprintf(tmp, sizeof(tmp), "%.*s/.%s.%d.%u.tmp", dirlen, slash ? path : ".", slash ? slash + 1 : path,
                 (int)pql_pid(), atomic_fetch_add(&seq, 1)) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return false;
    const char *p = b->data;
    size_t left = b->len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            close(fd);
            unlink(tmp);
            errno = e;
            return false;
        }
        p += n;
        left -= (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return false;
    }
    return true;
}

bool pql_outfile_report(const char *dir, const char *trigger, const struct pql_buf *b, char *path,
                        size_t pathlen)
{
    static atomic_uint report_seq;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return false;
    char final[PQL_PATH_MAX + 64];
    if (pql_report_file_name(final, sizeof(final), dir, (int)pql_pid(), trigger,
                             atomic_fetch_add(&report_seq, 1)) < 0) {
        errno = ENAMETOOLONG;
        return false;
    }
    if (!pql_outfile_write(final, 0600, b))
        return false;
    if (path)
        snprintf(path, pathlen, "%s", final);
    return true;
}
