/* Bounded reading to the end (readall.h). */
#include "readall.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

char *pql_read_all(int fd, size_t hint, size_t max, size_t *len)
{
    /* One byte more than expected, to see the end without growing; a file growing meanwhile (or a
     * /proc file, size 0) grows the buffer up to one byte past max. */
    size_t cap = hint < 255 ? 256 : hint < max ? hint + 1 : max + 1, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            if (n > max)
                break;
            size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
            char *nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return NULL;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    if (n > max) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
