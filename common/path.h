/* Path pieces the shim and the command both need: a path's base name, and the running program's own
 * path. libc only, no allocation: any thread, and signal handlers (readlink is async-signal-safe). */
#ifndef PQL_PATH_H
#define PQL_PATH_H

#include <stddef.h>

/* The part of path after its last '/' (all of it when it has none); points into path. */
const char *pql_base_name(const char *path);

/* This process's executable (/proc/self/exe) into buf, cut to len - 1 bytes. Returns its length, or -1
 * with errno set and buf "" when it cannot be read (len must be at least 1). */
int pql_self_exe(char *buf, size_t len);

#endif
