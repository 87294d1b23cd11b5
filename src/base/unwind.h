/* The calling thread's stack walked with the functions' own call frame information (.eh_frame), for
 * the rules nearly all x86-64 code has; libunwind (loaded by stack.c) only for the rest. See unwind.c.
 * Any thread, and signal handlers. */
#ifndef PQL_UNWIND_H
#define PQL_UNWIND_H

#include <stdbool.h>
#include <stdint.h>

/* pql_unwind's flags. */
#define PQL_UNWIND_CUT    1u /* a frame needs a rule this walker does not know: the walk stopped there */
#define PQL_UNWIND_SIGNAL 2u /* a signal frame was crossed: the walk ran in a signal handler */

/* Fills pcs with the calling thread's stack as libunwind's unw_backtrace would: pcs[0] is the return
 * address into pql_unwind's caller, then each caller's return address (an interrupted frame's exact
 * address after a signal frame), up to max. Returns the count; *flags says how the walk ended. */
int pql_unwind(uintptr_t *pcs, int max, unsigned *flags);

/* A caller's registers as they are once the function it called has returned: ip the return address,
 * sp and rbp the caller's. A walk that starts there skips the frames between the caller and the walk. */
struct pql_unwind_start {
    uintptr_t ip, sp, bp;
};

/* The start at the caller of a function, from that function's frame address (its rbp: the shim is built
 * with -fno-omit-frame-pointer, and asking for a frame's address makes GCC keep one anyway). The saved
 * rbp is there, the return address above it, and the caller's stack pointer above that. */
static inline struct pql_unwind_start pql_unwind_caller_of(const void *frame)
{
    const uintptr_t *f = frame;
    return (struct pql_unwind_start){f[1], (uintptr_t)(f + 2), f[0]};
}

/* The start at the caller of the function this is expanded in. */
#define PQL_UNWIND_CALLER() pql_unwind_caller_of(__builtin_frame_address(0))

/* As pql_unwind, from *start instead of the call: pcs[0] is start->ip, then its callers'. */
int pql_unwind_from(uintptr_t *pcs, int max, unsigned *flags, const struct pql_unwind_start *start);

/* What a function's call frame information says at one address. */
enum pql_cfi_kind {
    PQL_CFI_UNKNOWN,   /* a rule this walker does not follow (or no rule) */
    PQL_CFI_STANDARD,  /* CFA = rsp or rbp + cfa_off, return address at CFA - 8 */
    PQL_CFI_SIGNAL,    /* the kernel's signal frame: the interrupted registers are in a ucontext */
    PQL_CFI_OUTERMOST, /* the return address is undefined: the stack's first frame */
};

struct pql_cfi_rule {
    enum pql_cfi_kind kind;
    bool cfa_rbp;   /* STANDARD: the CFA is rbp + cfa_off, else rsp + cfa_off */
    bool rbp_saved; /* STANDARD: the caller's rbp is saved at CFA + rbp_off, else rbp is unchanged */
    int64_t cfa_off;
    int64_t rbp_off;
};

/* The rule at pc of the FDE at fde, reading only [lo, hi) (its CIE included): 1 when the FDE covers pc
 * (*rule set, UNKNOWN for rules not followed), 0 when it does not, -1 when the FDE or its CIE is
 * malformed or uses an encoding this reader does not know. The fuzzer's entry point. */
int pql_cfi_fde_rule(uintptr_t fde, uintptr_t lo, uintptr_t hi, uintptr_t pc, struct pql_cfi_rule *rule);

/* The address range an FDE covers, for the fuzzer to aim at: false when it is malformed. */
bool pql_cfi_fde_range(uintptr_t fde, uintptr_t lo, uintptr_t hi, uintptr_t *start, uintptr_t *end);

#endif
