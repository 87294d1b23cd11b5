/* A loaded library's descriptors kept to its own (fdguard.h): its PLT slots for pipe2, open, read,
 * write, close and syscall point to the wrappers below, which keep a small table of the descriptors the
 * library made (number, device, inode) and let it use only those. Lock-free (a slot is claimed with a
 * compare-and-swap) and async-signal-safe: libunwind may run in a signal handler. */
#define _GNU_SOURCE
#include "fdguard.h"

#include "gotpatch.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* libunwind holds two pipe ends at a time, and a file it maps for a moment per thread that unwinds. */
#define SLOTS 16

struct slot {
    _Atomic int fd; /* -1: free; -2: being filled */
    dev_t dev;
    ino_t ino;
};

static struct slot slots[SLOTS] = {[0 ... SLOTS - 1] = {.fd = -1}};

static bool same_file(int fd, const struct slot *s)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
}

/* fd is one the library made, and still the same file (the program may have closed it and reused the
 * number). */
static struct slot *find(int fd)
{
    if (fd < 0)
        return NULL;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load_explicit(&slots[i].fd, memory_order_acquire) == fd && same_file(fd, &slots[i]))
            return &slots[i];
    }
    return NULL;
}

/* Remembers fd; false when the table is full (the caller then closes it: the library sees a failure). */
static bool keep(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return false;
    /* An entry whose descriptor is no longer what the library made (the program closed it, or took the
     * number over) is free again. */
    for (int i = 0; i < SLOTS; i++) {
        int cur = atomic_load_explicit(&slots[i].fd, memory_order_acquire);
        if (cur >= 0 && (cur == fd || !same_file(cur, &slots[i])))
            atomic_compare_exchange_strong(&slots[i].fd, &cur, -1);
    }
    for (int i = 0; i < SLOTS; i++) {
        int free_slot = -1;
        if (atomic_compare_exchange_strong(&slots[i].fd, &free_slot, -2)) {
            slots[i].dev = st.st_dev;
            slots[i].ino = st.st_ino;
            atomic_store_explicit(&slots[i].fd, fd, memory_order_release);
            return true;
        }
    }
    return false;
}

static int guard_pipe2(int fds[2], int flags)
{
    if (pipe2(fds, flags | O_CLOEXEC) != 0)
        return -1;
    if (keep(fds[0]) && keep(fds[1]))
        return 0;
    struct slot *s;
    for (int i = 0; i < 2; i++)
        if ((s = find(fds[i])))
            atomic_store_explicit(&s->fd, -1, memory_order_release);
    close(fds[0]);
    close(fds[1]);
    errno = EMFILE;
    return -1;
}

static int guard_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int fd = open(path, flags | O_CLOEXEC, mode);
    if (fd >= 0 && !keep(fd)) {
        close(fd);
        errno = EMFILE;
        return -1;
    }
    return fd;
}

static ssize_t guard_read(int fd, void *buf, size_t n)
{
    if (!find(fd)) {
        errno = EBADF;
        return -1;
    }
    return read(fd, buf, n);
}

static ssize_t guard_write(int fd, const void *buf, size_t n)
{
    if (!find(fd)) {
        errno = EBADF;
        return -1;
    }
    return write(fd, buf, n);
}

static int guard_close(int fd)
{
    struct slot *s = find(fd);
    if (!s) {
        errno = EBADF;
        return -1;
    }
    atomic_store_explicit(&s->fd, -1, memory_order_release);
    return close(fd);
}

/* libunwind writes into its pipe with syscall(SYS_write, ...). Six arguments are passed on whatever the
 * call gave: the kernel reads only those the call needs. */
static long guard_syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if ((nr == SYS_write || nr == SYS_read || nr == SYS_close) && !find((int)a[0])) {
        errno = EBADF;
        return -1;
    }
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static const struct {
    const char *name;
    void *fn;
} wrappers[] = {
    {"pipe2", (void *)guard_pipe2}, {"open", (void *)guard_open},   {"read", (void *)guard_read},
    {"write", (void *)guard_write}, {"close", (void *)guard_close}, {"syscall", (void *)guard_syscall},
};

/* gotpatch's target: the wrapper of an import, NULL for the others (most rejected on a first letter). */
static void *wrapper_of(const char *name, void *arg)
{
    (void)arg;
    for (size_t w = 0; w < sizeof(wrappers) / sizeof(*wrappers); w++)
        if (name[0] == wrappers[w].name[0] && !strcmp(name, wrappers[w].name))
            return wrappers[w].fn;
    return NULL;
}

bool pql_fdguard_library(void *handle)
{
    struct link_map *lm = NULL;
    if (!handle || dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
        return false;
    /* libunwind is linked lazily: its PLT slots stay writable; one made read-only is left alone. */
    return pql_got_redirect(lm, wrapper_of, NULL, false) > 0;
}
