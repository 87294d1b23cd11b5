/* Keeps a library the shim loaded for itself (libunwind) off the program's file descriptors.
 *
 * libunwind 1.6 checks memory it is unsure of by writing it into a pipe of its own, made once with
 * pipe2 and kept in a static: it reads from the pipe, writes into it, and closes and remakes it when a
 * read fails. A program that closes every descriptor (a daemon) and opens files of its own gets those
 * numbers, and libunwind then reads from the program's file, writes a byte into it, or closes it.
 *
 * pql_fdguard_library redirects the library's own imports of pipe2, read, write, close and
 * syscall(SYS_write) (its PLT slots: the program's bindings are untouched) to wrappers that let it use
 * only descriptors it made itself and that still are what it made (device and inode): any other reads
 * and writes as a closed descriptor (EBADF), so the library makes a new pipe, and is never closed.
 * Call it only on a library the shim itself loaded (not one the program had loaded already), before
 * the library's first use. The wrappers are async-signal-safe and lock-free. */
#ifndef PQL_FDGUARD_H
#define PQL_FDGUARD_H

#include <stdbool.h>

/* handle: from dlopen. False when a slot could not be redirected (the library then runs as it is). */
bool pql_fdguard_library(void *handle);

#endif
