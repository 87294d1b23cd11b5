/* A caller without a frame pointer, for unit.unwind: built with -fomit-frame-pointer, so that at its call
 * the rule for its frame is rsp-based, and a walk from its registers needs its stack pointer right (a
 * caller with a frame pointer is found through rbp alone). */
#include "unwind_nofp.h"

static volatile int nofp_sink;

__attribute__((noinline)) void unwind_nofp_call(void (*fn)(void *), void *arg)
{
    volatile char pad[40]; /* a frame of its own, below the return address */
    pad[0] = 1;
    fn(arg);
    nofp_sink += pad[0]; /* no tail call */
}
