/* unwind_nofp.c: calls fn(arg) from a frame without a frame pointer. */
#ifndef UNWIND_NOFP_H
#define UNWIND_NOFP_H

void unwind_nofp_call(void (*fn)(void *), void *arg);

#endif
