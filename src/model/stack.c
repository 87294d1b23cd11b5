/* Raw stack capture, and the depot of unique stacks (uthash keyed by the frames themselves). The walk
 * is unwind.c's, which follows the rules nearly all code has; a frame it cannot follow hands the whole
 * walk to libunwind, dlopen'ed RTLD_LOCAL at the first such frame (linked normally, its exported
 * _Unwind_RaiseException & co. would enter the host's global scope and could take over C++ exception
 * handling from libgcc_s). Capture is lock-free; interning takes the depot lock briefly. */
#define _GNU_SOURCE
#include "stack.h"

#include <dlfcn.h>

#include "codemap.h"
#include "dlhook.h"
#include "fdguard.h"
#include "log.h"
#include "unwind.h"
#include "appframes.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM      1
#define uthash_nonfatal_oom(e) (depot_oom = true)
static bool depot_oom;
/* Keys are return addresses: mixed a word at a time, far cheaper than uthash's byte-wise hash on the
 * connect path. */
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = frames_hash((const uintptr_t *)(keyptr), (keylen)))
static unsigned frames_hash(const uintptr_t *f, size_t len)
{
    uint64_t h = len * 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < len / sizeof(*f); i++)
        h = (h ^ f[i]) * 0xff51afd7ed558ccdu;
    return (unsigned)(h ^ (h >> 29));
}
#include <uthash.h>

struct depot_entry {
    uint32_t id;
    int n;
    UT_hash_handle hh;
    uintptr_t frames[]; /* the key */
};

/* Set once, by load_libunwind; read by walks in any thread and in signal handlers. */
static int (*_Atomic unw_backtrace_fn)(void **, int);
static pthread_once_t libunwind_once = PTHREAD_ONCE_INIT;
static uintptr_t self_lo, self_hi; /* the shim's executable segment */

static pthread_mutex_t depot_lock = PTHREAD_MUTEX_INITIALIZER;
static struct depot_entry *depot;  /* by frames */
static struct depot_entry **by_id; /* by id - 1 */
static uint32_t depot_n, depot_cap;

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&depot_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&depot_lock);
}

static void fork_child(void)
{
    pthread_mutex_init(&depot_lock, NULL);
}

static void setup(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    pql_code_range((uintptr_t)&pql_stack_capture, &self_lo, &self_hi);
}

void pql_stack_setup(void)
{
    pthread_once(&setup_once, setup);
}

/* Loaded only for a frame unwind.c cannot follow: most processes never load it (~240k instructions of
 * loading, liblzma's bindings included). Lazy: of the 144 functions libunwind and liblzma import, a
 * capture calls a few. libunwind's memory checks use a pipe of its own, whose numbers a program that
 * closes its fds reuses (fdguard.h): guarded in the copy the shim loads, left as it is in one the
 * program loaded. */
static void load_libunwind(void)
{
    void *loaded = dlopen("libunwind.so.8", RTLD_LAZY | RTLD_NOLOAD);
    if (loaded)
        dlclose(loaded);
    void *h = dlopen("libunwind.so.8", RTLD_LAZY | RTLD_LOCAL);
    if (h && !loaded)
        pql_fdguard_library(h);
    int (*fn)(void **, int) = h ? (int (*)(void **, int))pql_dlsym(h, "unw_backtrace") : NULL;
    if (!fn)
        pql_log("libunwind.so.8 cannot be loaded; stacks stop at the first frame without the usual unwind "
                "rules");
    atomic_store(&unw_backtrace_fn, fn);
}

/* Room for the shim's own frames above the caller's, which capture() drops. */
#define SELF_ROOM 8

/* The raw walk: unwind.c's (from the call, or from a caller's registers: from), or libunwind's when
 * unwind.c met a frame it cannot follow, which always starts at the call (room made for the shim's
 * frames then). In a signal handler (a signal frame crossed) libunwind is not loaded: dlopen is not
 * async-signal-safe. */
static inline __attribute__((always_inline)) int walk_raw(uintptr_t *raw, int want,
                                                          const struct pql_unwind_start *from)
{
    unsigned flags;
    int n = from ? pql_unwind_from(raw, want, &flags, from) : pql_unwind(raw, want, &flags);
    if (!(flags & PQL_UNWIND_CUT))
        return n;
    if (!(flags & PQL_UNWIND_SIGNAL))
        pthread_once(&libunwind_once, load_libunwind);
    int (*fn)(void **, int) = atomic_load(&unw_backtrace_fn);
    return fn ? fn((void **)raw, from ? want + SELF_ROOM : want) : n;
}

/* What one walk found: frames kept (after the shim's own), frames dropped, and whether the walk reached
 * the stack's end before its limit. */
struct walk {
    int n, skip;
    bool ended;
};

/* The capture itself, inlined into every entry point: each frame between the caller and the walk is
 * one more to step through (and for the loop below to drop), unless the walk starts from the caller's
 * registers (from). Walks at most limit raw frames and keeps at most max. */
static inline __attribute__((always_inline)) struct walk capture(uintptr_t *frames, int max, int limit,
                                                                 const struct pql_unwind_start *from)
{
    struct walk w = {0, 0, true};
    if (max <= 0)
        return w;
    uintptr_t raw[PQL_MAX_FRAMES + 2 * SELF_ROOM];
    int want = max + (from ? 0 : SELF_ROOM);
    if (want > limit)
        want = limit;
    if (want > PQL_MAX_FRAMES + SELF_ROOM)
        want = PQL_MAX_FRAMES + SELF_ROOM;
    int n = walk_raw(raw, want, from);
    while (w.skip < n && raw[w.skip] >= self_lo && raw[w.skip] < self_hi)
        w.skip++;
    for (int i = w.skip; i < n && w.n < max; i++)
        frames[w.n++] = raw[i];
    w.ended = n < want;
    return w;
}

int pql_stack_capture_raw(uintptr_t *frames, int max)
{
    return capture(frames, max, PQL_MAX_FRAMES + SELF_ROOM, NULL).n;
}

/* C frames walked first in a process with a language runtime, at most: enough to reach the interpreter
 * from a client library's call into libpq. */
#define SHALLOW_FRAMES 12

/* Raw frames the first walk takes, learnt from the walks that reached an interpreter: the deepest reach
 * so far plus a margin, 0 before any (the first walk then takes them all). Every frame walked costs ~50
 * instructions (unwind.c), and the client libraries reach the interpreter within 2 to 6 frames of libpq
 * (psycopg2, pg, pdo_pgsql, DBD::Pg), where SHALLOW_FRAMES + SELF_ROOM would walk 20 on a deep stack. It only
 * grows: a call path that reaches the interpreter deeper costs one whole walk, then is learnt. Shared by
 * threads (the call paths are the program's); a race costs a walk, never a frame. */
static _Atomic int shallow_reach;
#define REACH_MARGIN 2

/* The interpreter's frames merged into a walk's C frames, learning from it how deep the interpreter's
 * first frame was: the first one the merge replaced. Returns the merged count. */
static int merge_learning(uintptr_t *frames, struct walk w, int max)
{
    uintptr_t c_frames[SHALLOW_FRAMES];
    int n = w.n < SHALLOW_FRAMES ? w.n : SHALLOW_FRAMES;
    memcpy(c_frames, frames, (size_t)n * sizeof(*frames));
    int m = pql_app_merge(frames, w.n, max);
    if (m == w.n)
        return m;
    int k = 0;
    while (k < n && k < m && frames[k] == c_frames[k])
        k++;
    int reach = w.skip + k + 1 + REACH_MARGIN;
    if (k < SHALLOW_FRAMES && reach > atomic_load_explicit(&shallow_reach, memory_order_relaxed))
        atomic_store_explicit(&shallow_reach, reach, memory_order_relaxed);
    return m;
}

/* pql_stack_capture and pql_stack_capture_from. A shallow reach learnt from walks that started at the
 * call (through the shim's frames) is a few frames more than a walk from a caller needs: safe. */
static inline __attribute__((always_inline)) int capture_merged(uintptr_t *frames, int max,
                                                                const struct pql_unwind_start *from)
{
    /* Past the interpreter's first frame, the C frames are replaced by the interpreter's own (appframes.h):
     * a short walk is enough when it reaches the interpreter or the stack's end, the whole walk otherwise. */
    if (max <= SHALLOW_FRAMES || !pql_app_readers_on())
        return pql_app_merge(frames, capture(frames, max, PQL_MAX_FRAMES + SELF_ROOM, from).n, max);
    int reach = atomic_load_explicit(&shallow_reach, memory_order_relaxed);
    struct walk w = capture(frames, SHALLOW_FRAMES, reach ? reach : SHALLOW_FRAMES + SELF_ROOM, from);
    int m = merge_learning(frames, w, max);
    if (m != w.n || w.ended)
        return m;
    return merge_learning(frames, capture(frames, max, PQL_MAX_FRAMES + SELF_ROOM, from), max);
}

int pql_stack_capture(uintptr_t *frames, int max)
{
    return capture_merged(frames, max, NULL);
}

int pql_stack_capture_from(uintptr_t *frames, int max, const struct pql_unwind_start *from)
{
    return capture_merged(frames, max, from);
}

/* The kernel's view of a signal action (rt_sigaction), whose restorer glibc sets to its trampoline. */
struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};
#define KERNEL_SA_RESTORER 0x04000000UL

int pql_stack_in_signal_handler(void)
{
    uintptr_t raw[PQL_MAX_FRAMES];
    unsigned flags;
    int n = pql_unwind(raw, PQL_MAX_FRAMES, &flags);
    if (flags & PQL_UNWIND_SIGNAL) /* glibc's restorer, whose unwind rules say "signal frame" */
        return 1;
    if (!(flags & PQL_UNWIND_CUT))
        return 0;
    /* Cut short: perhaps at a restorer of a handler's own (SA_RESTORER without glibc), whose address is
     * then the last one walked. libunwind's walk goes on past it, if libunwind is loaded already. */
    int (*fn)(void **, int) = atomic_load(&unw_backtrace_fn);
    if (fn)
        n = fn((void **)raw, PQL_MAX_FRAMES);
    /* The trampoline every handler returns through: one restorer serves every signal it installs. */
    uintptr_t restorer = 0;
    for (int sig = 1; sig < 65 && !restorer; sig++) {
        struct kernel_sigaction ka;
        if (syscall(SYS_rt_sigaction, sig, NULL, &ka, sizeof(ka.mask)) == 0 &&
            (ka.flags & KERNEL_SA_RESTORER) && ka.handler != SIG_DFL && ka.handler != SIG_IGN)
            restorer = (uintptr_t)ka.restorer;
    }
    if (!restorer)
        return 0; /* no handler installed: none can be running */
    for (int i = 0; i < n; i++)
        if (raw[i] >= restorer && raw[i] < restorer + 16)
            return 1;
    return fn ? 0 : -1;
}

/* The stack this thread interned last: a program opens its connections from the same place again and
 * again, and finding it there takes no lock and no hash. Entries are never freed. */
static __thread const struct depot_entry *last_interned __attribute__((tls_model("initial-exec")));

uint32_t pql_stack_intern(const uintptr_t *frames, int n)
{
    if (n <= 0)
        return 0;
    size_t keylen = (size_t)n * sizeof(uintptr_t);
    const struct depot_entry *last = last_interned;
    if (last && last->n == n && !memcmp(last->frames, frames, keylen))
        return last->id;
    uint32_t id = 0;
    pthread_mutex_lock(&depot_lock);
    struct depot_entry *e;
    HASH_FIND(hh, depot, frames, keylen, e);
    if (e) {
        id = e->id;
        goto out;
    }
    if (depot_n == depot_cap) {
        uint32_t cap = depot_cap ? depot_cap * 2 : 64;
        struct depot_entry **p = realloc(by_id, cap * sizeof(*p));
        if (!p)
            goto out;
        by_id = p;
        depot_cap = cap;
    }
    e = malloc(sizeof(*e) + keylen);
    if (!e)
        goto out;
    e->n = n;
    memcpy(e->frames, frames, keylen);
    e->id = depot_n + 1;
    depot_oom = false;
    HASH_ADD_KEYPTR(hh, depot, e->frames, keylen, e);
    if (depot_oom) {
        free(e);
        e = NULL;
        goto out;
    }
    by_id[depot_n++] = e;
    id = e->id;
out:
    pthread_mutex_unlock(&depot_lock);
    if (e)
        last_interned = e;
    return id;
}

const uintptr_t *pql_stack_get(uint32_t id, int *n)
{
    const uintptr_t *f = NULL;
    pthread_mutex_lock(&depot_lock);
    if (id >= 1 && id <= depot_n) {
        f = by_id[id - 1]->frames;
        *n = by_id[id - 1]->n;
    }
    pthread_mutex_unlock(&depot_lock);
    return f;
}

uint32_t pql_stack_count(void)
{
    pthread_mutex_lock(&depot_lock);
    uint32_t n = depot_n;
    pthread_mutex_unlock(&depot_lock);
    return n;
}
