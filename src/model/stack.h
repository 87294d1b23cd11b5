/* Stack capture and the stack depot. Capture records raw return addresses (unwind.h; libunwind for the
 * frames it cannot follow),
 * with the calling thread's application frames (Python, Perl, Ruby, PHP) merged in where the interpreter's
 * were (appframes.h, tagged entries); identical stacks are stored once and named by a small id, as a
 * sanitizer's stack depot does. Symbolizing happens in the output layer, at report time. Thread-safe; not for
 * signal handlers. */
#ifndef PQL_STACK_H
#define PQL_STACK_H

#include <stdbool.h>
#include <stdint.h>

#define PQL_MAX_FRAMES 256

/* Learns the shim's own address range and registers the fork handlers (the depot lock is held across
 * fork). Idempotent. libunwind is loaded later, privately (RTLD_LOCAL, so its _Unwind_* symbols never
 * replace the host's), if a walk ever needs it. */
void pql_stack_setup(void);

/* Captures up to max return addresses of the calling thread, innermost first, with the shim's own
 * frames removed. Returns the number captured (0 on failure). */
int pql_stack_capture(uintptr_t *frames, int max);

/* As pql_stack_capture, the walk starting at a caller's registers (unwind.h): an interposer's caller,
 * so that the walk does not step through the shim's frames between it and the capture. */
struct pql_unwind_start;
int pql_stack_capture_from(uintptr_t *frames, int max, const struct pql_unwind_start *from);

/* 1 when the calling thread runs inside a signal handler: a signal frame is on its stack (glibc's
 * restorer, or the restorer the kernel holds for installed handlers among its return addresses); a
 * handler left with siglongjmp is not. 0 when not, -1 when unknown (a frame no walk could follow).
 * Async-signal-safe: it never loads libunwind (no lock of pqleak's, no allocation). */
int pql_stack_in_signal_handler(void);

/* As pql_stack_capture, C frames only (no application frames merged): for code that looks for the
 * interpreter's own functions in the stack. */
int pql_stack_capture_raw(uintptr_t *frames, int max);

/* Stores a stack (or finds the identical one) and returns its id, >= 1; 0 when n == 0 or memory ran
 * out. */
uint32_t pql_stack_intern(const uintptr_t *frames, int n);

/* Returns the frames of stack id and sets *n, or NULL for an unknown id. The pointer stays valid for
 * the life of the process (stacks are never freed). */
const uintptr_t *pql_stack_get(uint32_t id, int *n);

/* Number of distinct stacks stored. */
uint32_t pql_stack_count(void);

#endif
