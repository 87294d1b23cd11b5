/* Reading a file descriptor to its end into memory, bounded: suppressions files (rules.c) and the
 * command's /proc files and live reports (tools/pqleak/probe.c). Any thread; not signal-safe (it
 * allocates). */
#ifndef PQL_READALL_H
#define PQL_READALL_H

#include <stddef.h>

/* Reads fd to its end into a new NUL-terminated buffer (the caller frees it), *len its length without
 * the NUL. hint: the expected size (st_size; 0 when unknown), the first allocation. Returns NULL with
 * errno set: EFBIG when fd holds more than max bytes (it is read one byte past max, no further),
 * ENOMEM, or the error of read (EINTR is retried). */
char *pql_read_all(int fd, size_t hint, size_t max, size_t *len);

#endif
