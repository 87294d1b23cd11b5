/* Atomic file writes (outfile.h). Writes in flight are counted, and their temp names kept in a few
 * slots, so that the exit path can let them finish (or remove what they leave) before the process
 * ends: exit_group would stop the reporter thread in the middle of a write. */
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
#include <time.h>
#include <unistd.h>

static atomic_uint seq;

/* Writes in flight, and whether the process is ending (no new write starts). */
static atomic_int writers;
static atomic_bool closing;

/* The temp names of writes in flight (a slot is taken with used; a write that finds none free still
 * runs, counted in writers only). */
#define TEMP_SLOTS 4
static struct {
    atomic_bool used;  /* the slot is taken */
    atomic_bool ready; /* path is written */
    char path[PQL_PATH_MAX + 128];
} temps[TEMP_SLOTS];

static int temp_claim(const char *tmp)
{
    for (int i = 0; i < TEMP_SLOTS; i++) {
        if (!atomic_exchange(&temps[i].used, true)) {
            snprintf(temps[i].path, sizeof(temps[i].path), "%s", tmp);
            atomic_store(&temps[i].ready, true);
            return i;
        }
    }
    return -1;
}

static void temp_release(int slot)
{
    if (slot >= 0) {
        atomic_store(&temps[slot].ready, false);
        atomic_store(&temps[slot].used, false);
    }
}

/* Writes len bytes at data through the temp file tmp, then renames it to path; removes tmp on failure. */
static bool write_via(const char *tmp, const char *path, mode_t mode, const char *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return false;
    /* pql_write_full: past the host's file-size limit this fails with EFBIG (no SIGXFSZ), and the temp
     * file is removed. Once the process is ending, the file is given up. */
    bool ok = pql_write_full(fd, data, len);
    int e = errno;
    if (ok && atomic_load(&closing))
        ok = false, e = ESHUTDOWN;
    if (close(fd) != 0 && ok)
        ok = false, e = errno;
    if (ok && rename(tmp, path) != 0)
        ok = false, e = errno;
    if (!ok) {
        unlink(tmp);
        errno = e;
    }
    return ok;
}

bool pql_outfile_write(const char *path, mode_t mode, const struct pql_buf *b)
{
    if (b->failed) {
        errno = ENOMEM;
        return false;
    }
    return pql_outfile_write_bytes(path, mode, b->data, b->len);
}

bool pql_outfile_write_bytes(const char *path, mode_t mode, const char *data, size_t len)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    char tmp[PQL_PATH_MAX + 128];
    if (snprintf(tmp, sizeof(tmp), "%.*s/.%s.%d.%u.tmp", dirlen, slash ? path : ".", slash ? slash + 1 : path,
                 (int)pql_pid(), atomic_fetch_add(&seq, 1)) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return false;
    }
    atomic_fetch_add(&writers, 1);
    int slot = temp_claim(tmp);
    bool ok = false;
    if (atomic_load(&closing))
        errno = ESHUTDOWN; /* the exit path no longer waits for writes */
    else
        ok = write_via(tmp, path, mode, data, len);
    int e = errno;
    temp_release(slot);
    atomic_fetch_sub(&writers, 1);
    errno = e;
    return ok;
}

void pql_outfile_close_all(double max_s)
{
    atomic_store(&closing, true);
    struct timespec step = {0, 1000000};
    for (double waited = 0; atomic_load(&writers) > 0 && waited < max_s; waited += 0.001)
        nanosleep(&step, NULL);
    /* A write still running (a slow disk): its temp file is removed now; its rename then fails. */
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (atomic_load(&temps[i].ready))
            unlink(temps[i].path);
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
