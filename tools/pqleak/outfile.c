/* Output files and the report directory (outfile.h). Checks try the real thing (create a file and
 * remove it) rather than trusting access(2), which says yes to root and knows nothing of read-only
 * file systems. Command-line process only. */
#include "outfile.h"

#include "path.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_stdout(const char *path)
{
    return strcmp(path, "-") == 0;
}

/* Directory part of path. Caller frees. */
static char *dir_of(const char *path)
{
    char *copy = cli_xstrdup(path);
    char *d = cli_xstrdup(dirname(copy));
    free(copy);
    return d;
}

/* Creates and removes a scratch file in dir; errno on failure. */
static bool can_create_in(const char *dir)
{
    char *probe = cli_xasprintf("%s/.pqleak-probe.XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd >= 0) {
        close(fd);
        unlink(probe);
    }
    free(probe);
    return fd >= 0;
}

bool cli_outfile_check(const char *option, const char *path)
{
    if (is_stdout(path))
        return true;
    if (!*path) {
        cli_err("%s: empty file name", option);
        return false;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            cli_err("%s %s: is a directory", option, path);
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0 && errno != ENXIO) { /* ENXIO: a FIFO nobody reads yet */
                cli_err("%s %s: cannot write: %s", option, path, strerror(errno));
                return false;
            }
            if (fd >= 0)
                close(fd);
            return true;
        }
    }
    char *dir = dir_of(path);
    bool ok = true;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_err("%s %s: directory %s does not exist", option, path, dir);
        ok = false;
    } else if (!can_create_in(dir)) {
        cli_err("%s %s: cannot write in %s: %s", option, path, dir, strerror(errno));
        ok = false;
    }
    free(dir);
    return ok;
}

bool cli_outfile_open(struct cli_outfile *o, const char *option, const char *path)
{
    *o = (struct cli_outfile){0};
    if (is_stdout(path)) {
        o->fp = stdout;
        return true;
    }
    struct stat st;
    o->path = cli_xstrdup(path);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        o->fp = fopen(path, "w");
    } else {
        char *dir = dir_of(path);
        o->tmp = cli_xasprintf("%s/.%s.XXXXXX", dir, pql_base_name(path));
        free(dir);
        int fd = mkstemp(o->tmp);
        /* mkstemp makes 0600; an output file gets the usual umask-based mode. */
        if (fd >= 0) {
            mode_t mask = umask(0);
            umask(mask);
            fchmod(fd, 0666 & ~mask);
            o->fp = fdopen(fd, "w");
            if (!o->fp) {
                close(fd);
                unlink(o->tmp);
            }
        }
    }
    if (!o->fp) {
        cli_err("%s %s: cannot write: %s", option, path, strerror(errno));
        free(o->path);
        free(o->tmp);
        *o = (struct cli_outfile){0};
        return false;
    }
    return true;
}

bool cli_outfile_commit(struct cli_outfile *o, const char *option)
{
    bool ok;
    if (!o->path) {
        ok = fflush(o->fp) == 0;
    } else {
        ok = !ferror(o->fp);
        ok = (fclose(o->fp) == 0) && ok;
    }
    int err = errno;
    if (ok && o->tmp && rename(o->tmp, o->path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        cli_err("%s %s: cannot write: %s", option, o->path ? o->path : "(standard output)", strerror(err));
        if (o->tmp)
            unlink(o->tmp);
    }
    free(o->path);
    free(o->tmp);
    *o = (struct cli_outfile){0};
    return ok;
}

/* mkdir -p; the last component gets mode, the parents 0777 & ~umask. */
static bool make_dirs(const char *dir, mode_t mode)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? true : (errno = ENOTDIR, false);
    char *parent = dir_of(dir);
    bool ok = strcmp(parent, dir) == 0 || make_dirs(parent, 0777);
    free(parent);
    if (!ok)
        return false;
    return mkdir(dir, mode) == 0 || errno == EEXIST;
}

bool cli_dir_prepare(const char *option, const char *dir)
{
    if (!*dir) {
        cli_err("%s: empty directory name", option);
        return false;
    }
    if (!make_dirs(dir, 0700)) {
        cli_err("%s %s: cannot make directory: %s", option, dir, strerror(errno));
        return false;
    }
    if (!can_create_in(dir)) {
        cli_err("%s %s: cannot write in it: %s", option, dir, strerror(errno));
        return false;
    }
    return true;
}
