/* Atomic file writes (outfile.h). */
#define _GNU_SOURCE
#include "outfile.h"

#include "config.h"
#include "log.h"
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
    /* pql_write_full: past the host's file-size limit this fails with EFBIG (no SIGXFSZ), and the temp
     * file is removed. */
    if (!pql_write_full(fd, b->data, b->len)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return false;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return false;
    }
    return true;
}

static atomic_bool never_create;

void pql_outfile_never_create_dirs(void)
{
    atomic_store(&never_create, true);
}

/* A report directory is used only when it (and, if it is a symbolic link, the link) belongs to this
 * user or to root: a path planted by another user is never followed. */
static bool dir_trusted(const char *dir)
{
    uid_t me = geteuid();
    struct stat st;
    if (lstat(dir, &st) != 0)
        return false;
    if (S_ISLNK(st.st_mode) && st.st_uid != me && st.st_uid != 0) {
        errno = EPERM;
        return false;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fstat(fd, &st) == 0 && (st.st_uid == me || st.st_uid == 0);
    close(fd);
    if (!ok)
        errno = EPERM;
    return ok;
}

bool pql_outfile_report(const char *dir, const char *trigger, const struct pql_buf *b, char *path,
                        size_t pathlen)
{
    static atomic_uint report_seq;
    if (!atomic_load(&never_create) && mkdir(dir, 0700) != 0 && errno != EEXIST)
        return false;
    if (!dir_trusted(dir))
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
