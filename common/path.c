/* Path pieces (path.h). */
#include "path.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

const char *pql_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int pql_self_exe(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0) {
        if (n == 0)
            errno = ENOENT;
        buf[0] = '\0';
        return -1;
    }
    buf[n] = '\0';
    return (int)n;
}
