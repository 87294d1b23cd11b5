/* Unit tests of unwind.c: its walk against libunwind's on the same stacks (deep, rbp-based frames from
 * alloca, another thread, inside a signal handler), and the rules it reads from hand-made CIEs and FDEs
 * (each instruction it follows, and the ones it must leave to libunwind). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <alloca.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "dlhook.h"
#include "unwind.h"
#include "unwind_nofp.h"

static int (*unw_backtrace_fn)(void **, int);

#define MAXF 128

struct both {
    uintptr_t ours[MAXF];
    void *theirs[MAXF];
    int n_ours, n_theirs;
    unsigned flags;
};

/* Both walks from one function: their first entries are return addresses into it (two call sites), and
 * from the second on they must be the same. */
static __attribute__((noinline)) void walk_both(struct both *b)
{
    b->n_ours = pql_unwind(b->ours, MAXF, &b->flags);
    b->n_theirs = unw_backtrace_fn(b->theirs, MAXF);
}

static void assert_same(const struct both *b)
{
    assert_true(b->n_ours >= 3);
    assert_int_equal(b->flags & PQL_UNWIND_CUT, 0);
    assert_int_equal(b->n_ours, b->n_theirs);
    for (int i = 1; i < b->n_ours; i++)
        assert_int_equal(b->ours[i], (uintptr_t)b->theirs[i]);
}

static volatile int sink;

static __attribute__((noinline)) void deep(struct both *b, int depth)
{
    if (depth == 0)
        walk_both(b);
    else
        deep(b, depth - 1);
    sink += depth; /* no tail call */
}

/* A frame whose CFA is rbp-based: the variable-length allocation moves rsp. */
static __attribute__((noinline)) void with_alloca(struct both *b, size_t n)
{
    volatile char *p = alloca(n);
    p[0] = 1;
    deep(b, 3);
    sink += p[0];
}

static void test_same_as_libunwind(void **state)
{
    (void)state;
    static struct both b;
    for (int depth = 0; depth < 60; depth += 7) {
        deep(&b, depth);
        assert_same(&b);
    }
    with_alloca(&b, 1000);
    assert_same(&b);
}

/* A walk from a caller's registers, read from the frame of the function it called (as the interposers
 * do): the frames of a walk from inside that function, less the first (the return into it). The unit is
 * built as the shim is (-fno-omit-frame-pointer). */
struct from {
    uintptr_t full[MAXF], from[MAXF];
    int n_full, n_from;
    unsigned flags_full, flags_from;
};

static __attribute__((noinline)) void walk_from_caller(void *arg)
{
    struct from *f = arg;
    struct pql_unwind_start s = PQL_UNWIND_CALLER();
    f->n_full = pql_unwind(f->full, MAXF, &f->flags_full);
    f->n_from = pql_unwind_from(f->from, MAXF, &f->flags_from, &s);
    sink++; /* no tail call */
}

static __attribute__((noinline)) void deep_from(struct from *f, int depth)
{
    if (depth == 0)
        walk_from_caller(f);
    else
        deep_from(f, depth - 1);
    sink += depth;
}

/* The caller's CFA is rbp-based: the walk needs the caller's rbp, which the start reads from the frame. */
static __attribute__((noinline)) void alloca_from(struct from *f, size_t n)
{
    volatile char *p = alloca(n);
    p[0] = 1;
    walk_from_caller(f);
    sink += p[0];
}

static void assert_from(const struct from *f)
{
    assert_true(f->n_full >= 4);
    assert_int_equal(f->flags_full & PQL_UNWIND_CUT, 0);
    assert_int_equal(f->flags_from & PQL_UNWIND_CUT, 0);
    assert_int_equal(f->n_from, f->n_full - 1);
    for (int i = 0; i < f->n_from; i++)
        assert_int_equal(f->from[i], f->full[i + 1]);
}

static void test_from_caller(void **state)
{
    (void)state;
    static struct from f;
    for (int depth = 0; depth < 30; depth += 6) {
        deep_from(&f, depth);
        assert_from(&f);
    }
    alloca_from(&f, 1000);
    assert_from(&f);
    unwind_nofp_call(walk_from_caller, &f); /* the caller's rule is rsp-based */
    assert_from(&f);
    /* At most max frames, the start's own first. */
    struct pql_unwind_start s = {f.from[0], 0, 0};
    uintptr_t one[2] = {0, 0};
    unsigned flags;
    assert_int_equal(pql_unwind_from(one, 1, &flags, &s), 1);
    assert_int_equal(one[0], f.from[0]);
    assert_int_equal(pql_unwind_from(one, 0, &flags, &s), 0);
}

static void *thread_walk(void *arg)
{
    deep(arg, 5);
    return NULL;
}

static void test_thread(void **state)
{
    (void)state;
    static struct both b;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_walk, &b), 0);
    pthread_join(t, NULL);
    assert_same(&b);
}

static struct both in_handler;

static void handler(int sig)
{
    (void)sig;
    deep(&in_handler, 2);
}

static void test_signal_frame(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = handler}, old;
    sigaction(SIGUSR2, &sa, &old);
    raise(SIGUSR2);
    sigaction(SIGUSR2, &old, NULL);
    assert_true(in_handler.flags & PQL_UNWIND_SIGNAL);
    assert_same(&in_handler);
}

/* A stack of its own (makecontext), as coroutine libraries and interpreters' fibers have: the walk ends
 * where the context began, as libunwind's does. */
static ucontext_t main_ctx, fiber_ctx;
static struct both in_fiber;

static void fiber(void)
{
    deep(&in_fiber, 3);
}

static void test_fiber(void **state)
{
    (void)state;
    static char stack[64 * 1024] __attribute__((aligned(16)));
    getcontext(&fiber_ctx);
    fiber_ctx.uc_stack.ss_sp = stack;
    fiber_ctx.uc_stack.ss_size = sizeof(stack);
    fiber_ctx.uc_link = &main_ctx;
    makecontext(&fiber_ctx, fiber, 0);
    swapcontext(&main_ctx, &fiber_ctx);
    assert_same(&in_fiber);
    for (int i = 1; i < in_fiber.n_ours; i++) /* none of the caller's stack */
        assert_true(in_fiber.ours[i] < (uintptr_t)stack ||
                    in_fiber.ours[i] >= (uintptr_t)stack + sizeof(stack));
}

static void test_max(void **state)
{
    (void)state;
    uintptr_t pcs[3];
    unsigned flags;
    assert_int_equal(pql_unwind(pcs, 3, &flags), 3);
    assert_int_equal(pql_unwind(pcs, 0, &flags), 0);
}

/* Code loaded where unloaded code was: the rules cached for the old code's addresses are not used.
 * libunwind is no reference there: its own per-thread cache still holds lib A's rule for the address
 * (it is not told of dlclose) and walks lib B's frame into garbage. So the second walk is checked
 * against the first: through lib B's frame into this function, then on exactly as the first went. */
static struct both stale;

static void from_lib(void)
{
    walk_both(&stale);
}

static const void *object_of(uintptr_t pc)
{
    Dl_info di;
    return dladdr((void *)pc, &di) ? di.dli_fbase : NULL;
}

/* The first frame of a walk in the object that holds pc (-1: none). */
static int frame_in(const struct both *b, uintptr_t pc)
{
    for (int i = 1; i < b->n_ours; i++)
        if (object_of(b->ours[i]) == object_of(pc))
            return i;
    return -1;
}

static void test_stale_rules(void **state)
{
    (void)state;
    void *a = dlopen(UNWIND_LIB_A, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(a);
    void (*fa)(void (*)(void)) = (void (*)(void (*)(void)))dlsym(a, "pql_test_f");
    fa(from_lib);
    assert_same(&stale);
    struct both first = stale;
    int k = frame_in(&first, (uintptr_t)fa); /* lib A's frame (from_lib's may come before it) */
    assert_true(k >= 1 && k + 1 < first.n_ours);
    uintptr_t where = (uintptr_t)fa;
    dlclose(a);
    pql_dlopen_mode(UNWIND_LIB_B, RTLD_NOW); /* what the shim's dlopen does first */
    void *b = dlopen(UNWIND_LIB_B, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(b);
    void (*fb)(void (*)(void)) = (void (*)(void (*)(void)))dlsym(b, "pql_test_f");
    if ((uintptr_t)fb != where) { /* the loader chose another place: nothing to show */
        dlclose(b);
        skip();
    }
    fb(from_lib);
    assert_int_equal(stale.flags & PQL_UNWIND_CUT, 0);
    assert_int_equal(stale.n_ours, first.n_ours);
    assert_int_equal(frame_in(&stale, (uintptr_t)fb), k);
    /* Past lib B's frame: this function (another call site), then the same frames as the first walk. */
    assert_non_null(object_of(stale.ours[k + 1]));
    assert_ptr_equal(object_of(stale.ours[k + 1]), object_of(first.ours[k + 1]));
    for (int i = k + 2; i < stale.n_ours; i++)
        assert_int_equal(stale.ours[i], first.ours[i]);
    dlclose(b);
}

/* ---- rules from hand-made records ---- */

struct blob {
    uint8_t b[256];
    size_t n;
};

static void put(struct blob *x, const void *p, size_t n)
{
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void put32(struct blob *x, uint32_t v)
{
    put(x, &v, 4);
}

/* A CIE ("zR", pc-relative sdata4 FDE pointers, code alignment 1, data alignment -8, return address
 * column 16) with the usual initial rule (CFA = rsp + 8, return address at CFA - 8), then an FDE that
 * covers [fde's pc_begin field + 0x1000, + 0x100) with instructions ins; returns the FDE's offset. */
static size_t make(struct blob *x, const char *aug, const uint8_t *ins, size_t nins)
{
    x->n = 0;
    uint8_t cie_body[64];
    size_t c = 0;
    uint32_t id = 0;
    memcpy(cie_body + c, &id, 4);
    c += 4;
    cie_body[c++] = 1; /* version */
    memcpy(cie_body + c, aug, strlen(aug) + 1);
    c += strlen(aug) + 1;
    cie_body[c++] = 1;                            /* code alignment */
    cie_body[c++] = 0x78;                         /* data alignment -8 */
    cie_body[c++] = 16;                           /* return address column */
    cie_body[c++] = 1;                            /* augmentation data length */
    cie_body[c++] = 0x1b;                         /* R: pcrel sdata4 */
    const uint8_t init[] = {0x0c, 7, 8, 0x90, 1}; /* def_cfa rsp+8; offset r16 at cfa-8 */
    memcpy(cie_body + c, init, sizeof(init));
    c += sizeof(init);
    put32(x, (uint32_t)c);
    put(x, cie_body, c);
    size_t fde = x->n;
    put32(x, (uint32_t)(4 + 4 + 4 + 1 + nins));
    put32(x, (uint32_t)(x->n)); /* back to the CIE at offset 0 */
    put32(x, 0x1000);           /* pc_begin: this field + 0x1000 */
    put32(x, 0x100);
    uint8_t zero = 0;
    put(x, &zero, 1); /* augmentation data length */
    put(x, ins, nins);
    return fde;
}

static int rule_at(struct blob *x, size_t fde, uintptr_t off, struct pql_cfi_rule *r)
{
    uintptr_t lo = (uintptr_t)x->b, pc_begin_field = lo + fde + 8;
    return pql_cfi_fde_rule(lo + fde, lo, lo + x->n, pc_begin_field + 0x1000 + off, r);
}

static void test_rules(void **state)
{
    (void)state;
    struct blob x;
    struct pql_cfi_rule r;
    /* push rbp; mov rsp,rbp; ... ; remember; leave-like: def_cfa rsp+8; restore_state */
    const uint8_t ins[] = {
        0x41,        /* advance 1 */
        0x0e, 16,    /* def_cfa_offset 16 */
        0x86, 2,     /* offset r6 at cfa-16 */
        0x43,        /* advance 3 */
        0x0d, 6,     /* def_cfa_register rbp */
        0x50,        /* advance 16 */
        0x0a,        /* remember_state */
        0x0c, 7,  8, /* def_cfa rsp+8 */
        0xc6,        /* restore r6 */
        0x41,        /* advance 1 */
        0x0b,        /* restore_state */
    };
    size_t fde = make(&x, "zR", ins, sizeof(ins));
    assert_int_equal(rule_at(&x, fde, 0, &r), 1);
    assert_int_equal(r.kind, PQL_CFI_STANDARD);
    assert_false(r.cfa_rbp);
    assert_int_equal(r.cfa_off, 8);
    assert_false(r.rbp_saved);
    assert_int_equal(rule_at(&x, fde, 1, &r), 1);
    assert_int_equal(r.cfa_off, 16);
    assert_true(r.rbp_saved);
    assert_int_equal(r.rbp_off, -16);
    assert_int_equal(rule_at(&x, fde, 4, &r), 1);
    assert_true(r.cfa_rbp);
    assert_int_equal(r.cfa_off, 16);
    assert_int_equal(rule_at(&x, fde, 20, &r), 1); /* after remember, def_cfa rsp+8, restore r6 */
    assert_false(r.cfa_rbp);
    assert_int_equal(r.cfa_off, 8);
    assert_false(r.rbp_saved);
    assert_int_equal(rule_at(&x, fde, 21, &r), 1); /* restore_state: the remembered row */
    assert_true(r.cfa_rbp);
    assert_true(r.rbp_saved);
    assert_int_equal(rule_at(&x, fde, 0x100, &r), 0); /* past the FDE's range */

    const uint8_t expr[] = {0x0f, 2, 0x77, 0x08}; /* def_cfa_expression: rsp + 8 */
    fde = make(&x, "zR", expr, sizeof(expr));
    assert_int_equal(rule_at(&x, fde, 0, &r), 1);
    assert_int_equal(r.kind, PQL_CFI_UNKNOWN);

    const uint8_t undef[] = {0x07, 16}; /* undefined r16: the outermost frame */
    fde = make(&x, "zR", undef, sizeof(undef));
    assert_int_equal(rule_at(&x, fde, 0, &r), 1);
    assert_int_equal(r.kind, PQL_CFI_OUTERMOST);

    const uint8_t other_reg[] = {0x0c, 10, 0}; /* CFA = r10: a realigned stack */
    fde = make(&x, "zR", other_reg, sizeof(other_reg));
    assert_int_equal(rule_at(&x, fde, 0, &r), 1);
    assert_int_equal(r.kind, PQL_CFI_UNKNOWN);

    const uint8_t rbp_in_reg[] = {0x09, 6, 3}; /* rbp kept in rbx: lost to this walker */
    fde = make(&x, "zR", rbp_in_reg, sizeof(rbp_in_reg));
    assert_int_equal(rule_at(&x, fde, 0, &r), 1);
    assert_int_equal(r.kind, PQL_CFI_UNKNOWN);

    static const uint8_t none[1];
    fde = make(&x, "zRS", none, 0); /* glibc's restorer */
    /* "zRS" has the same augmentation data (R's byte) as "zR". */
    assert_int_equal(rule_at(&x, fde, 0, &r), 1);
    assert_int_equal(r.kind, PQL_CFI_SIGNAL);

    const uint8_t bad[] = {0x3f}; /* an opcode not defined */
    fde = make(&x, "zR", bad, sizeof(bad));
    assert_int_equal(rule_at(&x, fde, 0, &r), 1);
    assert_int_equal(r.kind, PQL_CFI_UNKNOWN);

    fde = make(&x, "zR", ins, sizeof(ins));
    uintptr_t lo = (uintptr_t)x.b;
    assert_int_equal(pql_cfi_fde_rule(lo + fde, lo, lo + x.n - 1, 0, &r), -1); /* cut short */
    x.b[fde + 4] = 0; /* a CIE pointer of 0: a CIE, not an FDE */
    assert_int_equal(pql_cfi_fde_rule(lo + fde, lo, lo + x.n, 0, &r), -1);
}

int main(void)
{
    void *h = dlopen("libunwind.so.8", RTLD_LAZY | RTLD_LOCAL);
    if (!h || !(unw_backtrace_fn = (int (*)(void **, int))dlsym(h, "unw_backtrace")))
        return 77; /* tools/deps installs it; without it there is nothing to compare with */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_libunwind),
        cmocka_unit_test(test_from_caller),
        cmocka_unit_test(test_thread),
        cmocka_unit_test(test_signal_frame),
        cmocka_unit_test(test_fiber),
        cmocka_unit_test(test_max),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_stale_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
