/* A walker of the calling thread's stack for the usual case, in front of libunwind. Each frame's rule
 * comes from its function's call frame information: _dl_find_object gives the object's .eh_frame_hdr,
 * whose sorted table gives the FDE, whose CIE and instructions give the rule at the address. It follows
 * the rules nearly all x86-64 code has (the CFA at rsp or rbp plus an offset, the return address just
 * below it, rbp saved at an offset from it or left alone) and the kernel's signal frames (glibc's
 * restorer, whose CIE says "S"), and ends where libunwind ends (a return address the rules leave
 * undefined, 0, or makecontext's at a fiber's base). Anything else (a CFA expression or another
 * register, code without unwind information) cuts the walk, and stack.c asks libunwind, which knows
 * every rule: this file only makes the usual walk cheap. A frame's rule is cached process-wide by
 * address, so a walk costs ~50 instructions a frame (libunwind's fast walk ~100, and ~150 a call to set
 * up) and nothing per thread (libunwind's cache is 256 KiB a thread). Stale rules: the cache is keyed by
 * the number of dlopen calls made (dlhook.h), so that code loaded where unloaded code was is never
 * walked with the old code's rule.
 *
 * Any thread, and signal handlers: _dl_find_object is async-signal-safe, the cache takes no lock (a slot
 * is claimed with one compare-and-swap, its rule written, then its key published), and nothing here
 * allocates. The stack is read as libunwind's fast walk reads it: each CFA above the last, within a
 * bound. The .eh_frame data of loaded objects is trusted as libgcc's unwinder trusts it; the parser
 * still checks every read against the bounds it is given, which the fuzzer (tests/fuzz) gives it. */
#define _GNU_SOURCE
#include "unwind.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>
#include <ucontext.h>

#include "dlhook.h"

/* ---- reading .eh_frame: every read checked against [p, end) ---- */

struct rd {
    uintptr_t p, end;
    bool bad;
};

static bool take(struct rd *r, void *out, size_t n)
{
    if (r->bad || r->p > r->end || r->end - r->p < n) {
        r->bad = true;
        memset(out, 0, n);
        return false;
    }
    memcpy(out, (const void *)r->p, n);
    r->p += n;
    return true;
}

/* An n-byte little-endian unsigned field (n <= 8). */
static uint64_t le_field(struct rd *r, size_t n)
{
    uint8_t b[8];
    take(r, b, n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | b[i];
    return v;
}

static uint8_t u8(struct rd *r)
{
    return (uint8_t)le_field(r, 1);
}

static uint16_t u16(struct rd *r)
{
    return (uint16_t)le_field(r, 2);
}

static uint32_t u32(struct rd *r)
{
    return (uint32_t)le_field(r, 4);
}

/* A LEB128 number, sign-extended when is_signed. */
static uint64_t leb(struct rd *r, bool is_signed)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = u8(r);
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while ((b & 0x80) && !r->bad);
    if (is_signed && shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    return v;
}

static uint64_t uleb(struct rd *r)
{
    return leb(r, false);
}

static int64_t sleb(struct rd *r)
{
    return (int64_t)leb(r, true);
}

static void skip(struct rd *r, uint64_t n)
{
    if (r->bad || r->p > r->end || r->end - r->p < n)
        r->bad = true;
    else
        r->p += n;
}

/* DW_EH_PE_* pointer encodings. */
#define PE_OMIT           0xff
#define PE_FORMAT         0x0f
#define PE_APPLY          0x70
#define PE_PCREL          0x10
#define PE_DATAREL        0x30
#define PE_DATAREL_SDATA4 0x3b

/* A pointer in encoding enc (its application part: absolute, relative to the field, or to datarel). */
static uintptr_t pointer(struct rd *r, uint8_t enc, uintptr_t datarel)
{
    uintptr_t field = r->p;
    uint64_t v;
    switch (enc & PE_FORMAT) {
    case 0x00: /* absptr */
    case 0x04: /* udata8 */
    case 0x0c: /* sdata8 */
        v = le_field(r, 8);
        break;
    case 0x01:
        v = uleb(r);
        break;
    case 0x02:
        v = u16(r);
        break;
    case 0x03:
        v = u32(r);
        break;
    case 0x09:
        v = (uint64_t)sleb(r);
        break;
    case 0x0a:
        v = (uint64_t)(int64_t)(int16_t)u16(r);
        break;
    case 0x0b:
        v = (uint64_t)(int64_t)(int32_t)u32(r);
        break;
    default:
        r->bad = true;
        return 0;
    }
    switch (enc & PE_APPLY) {
    case 0:
        return v;
    case PE_PCREL:
        return field + v;
    case PE_DATAREL:
        return datarel + v;
    default: /* textrel, funcrel, aligned: not used on x86-64 */
        r->bad = true;
        return 0;
    }
}

/* ---- CIE and FDE ---- */

#define REG_RBP_DW 6
#define REG_RSP_DW 7
#define REG_RA_DW  16

#define ALIGN_MAX (1 << 16)

struct cie {
    uintptr_t ins, end; /* its initial instructions */
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    bool z, signal;
};

/* One CIE record length: 0 ends a section, 0xffffffff announces a 64-bit length (not produced for
 * x86-64 .eh_frame): both refused. */
static bool record(struct rd *r, uintptr_t lo, uintptr_t hi)
{
    if (r->p < lo || r->p >= hi)
        return false;
    r->end = hi;
    uint32_t len = u32(r);
    if (r->bad || len == 0 || len == 0xffffffffu || hi - r->p < len)
        return false;
    r->end = r->p + len;
    return true;
}

static bool parse_cie(uintptr_t at, uintptr_t lo, uintptr_t hi, struct cie *c)
{
    struct rd r = {at, hi, false};
    if (!record(&r, lo, hi) || u32(&r) != 0) /* a CIE's id is 0 in .eh_frame */
        return false;
    uint8_t version = u8(&r);
    if (version != 1 && version != 3)
        return false;
    char aug[8];
    size_t na = 0;
    for (;;) {
        uint8_t ch = u8(&r);
        if (r.bad || na == sizeof(aug))
            return false;
        if (!ch)
            break;
        aug[na++] = (char)ch;
    }
    c->code_align = uleb(&r);
    c->data_align = sleb(&r);
    uint64_t ra = version == 1 ? u8(&r) : uleb(&r);
    c->fde_enc = 0;
    c->z = na > 0 && aug[0] == 'z';
    c->signal = false;
    if (na && !c->z) /* an augmentation without its length: its data cannot be skipped */
        return false;
    if (c->z) {
        uint64_t len = uleb(&r);
        uintptr_t data = r.p;
        for (size_t i = 1; i < na && !r.bad; i++) {
            switch (aug[i]) {
            case 'R':
                c->fde_enc = u8(&r);
                break;
            case 'L':
                u8(&r);
                break;
            case 'P': {
                uint8_t enc = u8(&r);
                pointer(&r, enc & (PE_FORMAT | PE_PCREL), 0);
                break;
            }
            case 'S':
                c->signal = true;
                break;
            default: /* one not known: the ones after it cannot be read */
                return false;
            }
        }
        r.p = data;
        skip(&r, len);
    }
    c->ins = r.p;
    c->end = r.end;
    /* Real CIEs say 1 and -8; far larger factors could only overflow the offsets they scale. */
    bool sane = c->code_align != 0 && c->code_align <= ALIGN_MAX && c->data_align >= -ALIGN_MAX &&
                c->data_align <= ALIGN_MAX;
    return !r.bad && ra == REG_RA_DW && sane;
}

/* The FDE at fde: its CIE, the range it covers, and its instructions in *ins. */
static bool parse_fde(uintptr_t fde, uintptr_t lo, uintptr_t hi, struct cie *c, uintptr_t *start,
                      uintptr_t *end, struct rd *ins)
{
    struct rd r = {fde, hi, false};
    if (!record(&r, lo, hi))
        return false;
    uintptr_t field = r.p;
    uint32_t back = u32(&r);
    if (r.bad || back == 0 || back > field - lo) /* 0: a CIE */
        return false;
    if (!parse_cie(field - back, lo, hi, c))
        return false;
    *start = pointer(&r, c->fde_enc, 0);
    uintptr_t range = pointer(&r, c->fde_enc & PE_FORMAT, 0);
    if (c->z)
        skip(&r, uleb(&r));
    if (r.bad || range > UINTPTR_MAX - *start)
        return false;
    *end = *start + range;
    *ins = r;
    return true;
}

bool pql_cfi_fde_range(uintptr_t fde, uintptr_t lo, uintptr_t hi, uintptr_t *start, uintptr_t *end)
{
    struct cie c;
    struct rd ins;
    return parse_fde(fde, lo, hi, &c, start, end, &ins);
}

/* ---- the CFA program ---- */

enum reg_rule { R_SAME, R_OFFSET, R_UNDEF, R_OTHER };

struct row {
    bool cfa_ok; /* the CFA is a register plus an offset (not an expression) */
    uint64_t cfa_reg;
    int64_t cfa_off;
    enum reg_rule rbp, ra;
    int64_t rbp_off, ra_off;
};

/* A factored offset (v * data_align); an overflow, which no real CIE makes, marks the reader bad. */
static int64_t factored(struct rd *r, int64_t v, int64_t align)
{
    int64_t out;
    if (__builtin_mul_overflow(v, align, &out)) {
        r->bad = true;
        return 0;
    }
    return out;
}

/* The rows DW_CFA_remember_state can stack: compilers nest one or two. */
#define STATE_DEPTH 8

static void set_rule(struct row *s, uint64_t reg, enum reg_rule rule, int64_t off)
{
    if (reg == REG_RBP_DW) {
        s->rbp = rule;
        s->rbp_off = off;
    } else if (reg == REG_RA_DW) {
        s->ra = rule;
        s->ra_off = off;
    }
}

static void restore(struct row *s, const struct row *init, uint64_t reg)
{
    if (reg == REG_RBP_DW)
        set_rule(s, reg, init->rbp, init->rbp_off);
    else if (reg == REG_RA_DW)
        set_rule(s, reg, init->ra, init->ra_off);
}

/* Runs instructions r from location loc up to the row that covers pc (init: the CIE's row, for
 * DW_CFA_restore). False on an instruction not known or malformed. */
static bool run(struct rd *r, const struct cie *c, struct row *s, const struct row *init, uintptr_t loc,
                uintptr_t pc)
{
    struct row saved[STATE_DEPTH];
    int depth = 0;
    while (r->p < r->end && !r->bad) {
        uint8_t op = u8(r);
        uint64_t reg, delta = 0;
        switch (op >> 6) {
        case 1:
            delta = op & 0x3f;
            goto advance;
        case 2:
            set_rule(s, op & 0x3f, R_OFFSET, factored(r, (int64_t)uleb(r), c->data_align));
            continue;
        case 3:
            restore(s, init, op & 0x3f);
            continue;
        }
        switch (op) {
        case 0x00: /* nop */
            break;
        case 0x01: /* set_loc */
            loc = pointer(r, c->fde_enc, 0);
            if (loc > pc)
                return !r->bad;
            break;
        case 0x02:
            delta = u8(r);
            goto advance;
        case 0x03:
            delta = u16(r);
            goto advance;
        case 0x04:
            delta = u32(r);
            goto advance;
        case 0x05: /* offset_extended */
            reg = uleb(r);
            set_rule(s, reg, R_OFFSET, factored(r, (int64_t)uleb(r), c->data_align));
            break;
        case 0x06: /* restore_extended */
            restore(s, init, uleb(r));
            break;
        case 0x07: /* undefined */
            set_rule(s, uleb(r), R_UNDEF, 0);
            break;
        case 0x08: /* same_value */
            set_rule(s, uleb(r), R_SAME, 0);
            break;
        case 0x0a: /* remember_state: the whole row, CFA included, as libgcc and libunwind keep it */
            if (depth == STATE_DEPTH)
                return false;
            saved[depth++] = *s;
            break;
        case 0x0b: /* restore_state */
            if (depth == 0)
                return false;
            *s = saved[--depth];
            break;
        case 0x0c: /* def_cfa */
            s->cfa_reg = uleb(r);
            s->cfa_off = (int64_t)uleb(r);
            s->cfa_ok = true;
            break;
        case 0x0d: /* def_cfa_register */
            s->cfa_reg = uleb(r);
            break;
        case 0x0e: /* def_cfa_offset */
            s->cfa_off = (int64_t)uleb(r);
            break;
        case 0x0f: /* def_cfa_expression */
            skip(r, uleb(r));
            s->cfa_ok = false;
            break;
        case 0x10: /* expression */
        case 0x16: /* val_expression */
            reg = uleb(r);
            skip(r, uleb(r));
            set_rule(s, reg, R_OTHER, 0);
            break;
        case 0x11: /* offset_extended_sf */
            reg = uleb(r);
            set_rule(s, reg, R_OFFSET, factored(r, sleb(r), c->data_align));
            break;
        case 0x12: /* def_cfa_sf */
            s->cfa_reg = uleb(r);
            s->cfa_off = factored(r, sleb(r), c->data_align);
            s->cfa_ok = true;
            break;
        case 0x13: /* def_cfa_offset_sf */
            s->cfa_off = factored(r, sleb(r), c->data_align);
            break;
        case 0x09: /* register */
        case 0x14: /* val_offset */
            reg = uleb(r);
            uleb(r);
            set_rule(s, reg, R_OTHER, 0);
            break;
        case 0x15: /* val_offset_sf */
            reg = uleb(r);
            sleb(r);
            set_rule(s, reg, R_OTHER, 0);
            break;
        case 0x2e: /* GNU_args_size */
            uleb(r);
            break;
        case 0x2f: /* GNU_negative_offset_extended */
            reg = uleb(r);
            set_rule(s, reg, R_OFFSET, factored(r, (int64_t)uleb(r), -c->data_align));
            break;
        default:
            return false;
        }
        continue;
    advance:
        if (delta > (UINTPTR_MAX - loc) / c->code_align)
            return false;
        loc += delta * c->code_align;
        if (loc > pc)
            return !r->bad;
    }
    return !r->bad;
}

/* Room in the cache's packed rule (below): offsets beyond it are left to libunwind. */
#define CFA_OFF_MAX  ((1 << 20) - 1)
#define RBP_OFF_SPAN 1024

static void to_rule(const struct row *s, struct pql_cfi_rule *rule)
{
    memset(rule, 0, sizeof(*rule));
    if (s->ra == R_UNDEF) {
        rule->kind = PQL_CFI_OUTERMOST;
        return;
    }
    rule->kind = PQL_CFI_UNKNOWN;
    if (!s->cfa_ok || (s->cfa_reg != REG_RSP_DW && s->cfa_reg != REG_RBP_DW) || s->cfa_off <= 0 ||
        s->cfa_off > CFA_OFF_MAX || s->ra != R_OFFSET || s->ra_off != -8)
        return;
    if (s->rbp == R_OFFSET && (s->rbp_off % 8 || s->rbp_off < -RBP_OFF_SPAN || s->rbp_off >= RBP_OFF_SPAN))
        return;
    if (s->rbp != R_OFFSET && s->rbp != R_SAME) /* rbp lost: a later frame may need it */
        return;
    rule->kind = PQL_CFI_STANDARD;
    rule->cfa_rbp = s->cfa_reg == REG_RBP_DW;
    rule->cfa_off = s->cfa_off;
    rule->rbp_saved = s->rbp == R_OFFSET;
    rule->rbp_off = rule->rbp_saved ? s->rbp_off : 0;
}

int pql_cfi_fde_rule(uintptr_t fde, uintptr_t lo, uintptr_t hi, uintptr_t pc, struct pql_cfi_rule *rule)
{
    struct cie c;
    struct rd ins;
    uintptr_t start, end;
    if (!parse_fde(fde, lo, hi, &c, &start, &end, &ins))
        return -1;
    if (pc < start || pc >= end)
        return 0;
    memset(rule, 0, sizeof(*rule));
    if (c.signal) {
        rule->kind = PQL_CFI_SIGNAL;
        return 1;
    }
    struct row init = {.cfa_ok = false, .rbp = R_SAME, .ra = R_SAME};
    struct rd cie_ins = {c.ins, c.end, false};
    if (!run(&cie_ins, &c, &init, &init, start, UINTPTR_MAX))
        return 1; /* UNKNOWN */
    struct row s = init;
    if (run(&ins, &c, &s, &init, start, pc))
        to_rule(&s, rule);
    return 1;
}

/* The FDE for pc from an object's .eh_frame_hdr (binary search of its table), or 0. */
static uintptr_t find_fde(uintptr_t hdr, uintptr_t pc)
{
    struct rd r = {hdr, hdr + 4, false};
    uint8_t version = u8(&r), frame_enc = u8(&r), count_enc = u8(&r), table_enc = u8(&r);
    if (version != 1 || count_enc == PE_OMIT || table_enc != PE_DATAREL_SDATA4)
        return 0;
    r.end = UINTPTR_MAX; /* the header's fields are as long as their encodings say */
    pointer(&r, frame_enc, hdr);
    uintptr_t count = pointer(&r, count_enc, hdr);
    if (r.bad || count == 0)
        return 0;
    const int32_t *table = (const int32_t *)r.p; /* pairs: initial location, FDE; both from hdr */
    uintptr_t lo = 0, hi = count;
    while (hi - lo > 1) {
        uintptr_t mid = lo + (hi - lo) / 2;
        if (hdr + (intptr_t)table[2 * mid] <= pc)
            lo = mid;
        else
            hi = mid;
    }
    if (hdr + (intptr_t)table[2 * lo] > pc)
        return 0;
    return hdr + (intptr_t)table[2 * lo + 1];
}

/* The rule at pc in a loaded object. A return address at a function's very first instruction, with no
 * function before it (pc, one byte back, in no FDE), was made up rather than pushed by a call:
 * makecontext's, whose context starts a fiber's stack. That is the stack's first frame, where
 * libunwind stops too. */
static void lookup(uintptr_t pc, struct pql_cfi_rule *rule)
{
    memset(rule, 0, sizeof(*rule));
    struct dl_find_object fo;
    if (_dl_find_object((void *)pc, &fo) != 0 || !fo.dlfo_eh_frame)
        return;
    uintptr_t fde = find_fde((uintptr_t)fo.dlfo_eh_frame, pc);
    int got = fde ? pql_cfi_fde_rule(fde, 0, UINTPTR_MAX, pc, rule) : 0;
    if (got < 0)
        rule->kind = PQL_CFI_UNKNOWN;
    if (got != 0)
        return;
    uintptr_t next = find_fde((uintptr_t)fo.dlfo_eh_frame, pc + 1), start, end;
    if (next && pql_cfi_fde_range(next, 0, UINTPTR_MAX, &start, &end) && start == pc + 1)
        rule->kind = PQL_CFI_OUTERMOST;
}

/* ---- the cache: address -> packed rule ---- */

/* A rule in 64 bits: the dlopen count it was made at (32), kind (2), cfa_rbp (1), rbp_saved (1),
 * rbp_off / 8 (8, signed), cfa_off (20). */
static uint64_t pack(const struct pql_cfi_rule *r, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint64_t)r->kind << 30 | (uint64_t)r->cfa_rbp << 29 |
           (uint64_t)r->rbp_saved << 28 | (uint64_t)(uint8_t)(int8_t)(r->rbp_off / 8) << 20 |
           (uint64_t)r->cfa_off;
}

#define PACKED_KIND(v)      ((enum pql_cfi_kind)((v) >> 30 & 3))
#define PACKED_CFA_RBP(v)   ((v) >> 29 & 1)
#define PACKED_RBP_SAVED(v) ((v) >> 28 & 1)
#define PACKED_RBP_OFF(v)   ((intptr_t)(int8_t)(uint8_t)((v) >> 20) * 8)
#define PACKED_CFA_OFF(v)   ((uintptr_t)((v)&CFA_OFF_MAX))

#define CACHE_BITS 12 /* 4096 addresses, 64 KiB, untouched in a process that never walks */
#define PROBES     8
#define BUSY       ((uintptr_t)1) /* a slot being written; no code address */

static struct slot {
    _Atomic uintptr_t pc;
    _Atomic uint64_t rule;
} cache[1u << CACHE_BITS];

static unsigned slot_of(uintptr_t pc)
{
    return (unsigned)((pc * 0x9e3779b97f4a7c15u) >> (64 - CACHE_BITS));
}

/* Writes pc's rule into slot s, which held k: claimed with one compare-and-swap (a reader then finds
 * BUSY, or any key but the one it read, on reading the key again), the rule written, the key published.
 * The release fence orders the claim before the rule for a reader that sees the new rule (seqlock). */
static bool claim(struct slot *s, uintptr_t k, uintptr_t pc, uint64_t v)
{
    if (!atomic_compare_exchange_strong_explicit(&s->pc, &k, BUSY, memory_order_relaxed,
                                                 memory_order_relaxed))
        return false;
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->rule, v, memory_order_relaxed);
    atomic_store_explicit(&s->pc, pc, memory_order_release);
    return true;
}

/* Stores pc's rule in an empty slot, or one holding pc or a rule of an earlier dlopen count; in a full
 * neighbourhood, in pc's own slot in place of another address's rule (looked up again if walked). */
static void remember(uintptr_t pc, uint64_t v, uint32_t gen)
{
    for (unsigned i = slot_of(pc), n = 0; n < PROBES; n++, i = (i + 1) & ((1u << CACHE_BITS) - 1)) {
        struct slot *s = &cache[i];
        uintptr_t k = atomic_load_explicit(&s->pc, memory_order_relaxed);
        if (k != 0 && k != pc &&
            (k == BUSY || atomic_load_explicit(&s->rule, memory_order_relaxed) >> 32 == gen))
            continue;
        if (claim(s, k, pc, v))
            return;
    }
    struct slot *home = &cache[slot_of(pc)];
    uintptr_t k = atomic_load_explicit(&home->pc, memory_order_relaxed);
    if (k != BUSY)
        claim(home, k, pc, v);
}

/* The rule in slot s when it holds pc's, read as a seqlock's reader reads: the key, the rule, the key
 * again (a writer that claimed the slot meanwhile may have changed the rule). */
static inline bool read_slot(struct slot *s, uintptr_t pc, uint32_t gen, uint64_t *v)
{
    *v = atomic_load_explicit(&s->rule, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return *v >> 32 == gen && atomic_load_explicit(&s->pc, memory_order_relaxed) == pc;
}

/* pc's packed rule, from the cache past the first slot, or looked up (and cached). */
static __attribute__((noinline)) uint64_t rule_slow(uintptr_t pc, uint32_t gen)
{
    for (unsigned i = slot_of(pc), n = 0; n < PROBES; n++, i = (i + 1) & ((1u << CACHE_BITS) - 1)) {
        struct slot *s = &cache[i];
        uintptr_t k = atomic_load_explicit(&s->pc, memory_order_acquire);
        uint64_t v;
        if (k == pc) {
            if (read_slot(s, pc, gen, &v))
                return v;
            break;
        }
        if (k == 0)
            break;
    }
    struct pql_cfi_rule rule;
    lookup(pc, &rule);
    uint64_t v = pack(&rule, gen);
    remember(pc, v, gen);
    return v;
}

/* pc's packed rule: the first slot inline (where nearly every address is found), the rest out of line. */
static inline uint64_t rule_at(uintptr_t pc, uint32_t gen)
{
    struct slot *s = &cache[slot_of(pc)];
    uint64_t v;
    if (atomic_load_explicit(&s->pc, memory_order_acquire) == pc && read_slot(s, pc, gen, &v))
        return v;
    return rule_slow(pc, gen);
}

/* ---- the walk ---- */

/* Largest frame believed: a CFA further above the last one is taken for a wrong rule. */
#define FRAME_MAX ((uintptr_t)1 << 26)

/* The walk from ip, sp and bp (exact: ip is not a return address, look its rule up at ip, not ip - 1),
 * adding frames to pcs from n up to max. */
static inline __attribute__((always_inline)) int walk(uintptr_t *pcs, int n, int max, unsigned *flags,
                                                      uintptr_t ip, uintptr_t sp, uintptr_t bp, bool exact)
{
    uint32_t gen = pql_dlopen_count();
    while (n < max) {
        uint64_t v = rule_at(ip - !exact, gen);
        if (__builtin_expect(PACKED_KIND(v) != PQL_CFI_STANDARD, 0)) {
            if (PACKED_KIND(v) == PQL_CFI_OUTERMOST)
                return n;
            if (PACKED_KIND(v) != PQL_CFI_SIGNAL) {
                *flags |= PQL_UNWIND_CUT;
                return n;
            }
            /* The handler's CFA, where sp is now, is the kernel's ucontext (after the restorer's slot). */
            const ucontext_t *uc = (const ucontext_t *)sp;
            ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
            sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
            bp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
            exact = true;
            *flags |= PQL_UNWIND_SIGNAL;
        } else {
            uintptr_t cfa = (PACKED_CFA_RBP(v) ? bp : sp) + PACKED_CFA_OFF(v);
            /* Above the last CFA (one unsigned compare: cfa - sp in [1, FRAME_MAX]), and aligned. */
            if (cfa - sp - 1 >= FRAME_MAX || (cfa & 7)) {
                *flags |= PQL_UNWIND_CUT;
                return n;
            }
            ip = *(const uintptr_t *)(cfa - 8);
            if (PACKED_RBP_SAVED(v))
                bp = *(const uintptr_t *)(cfa + (uintptr_t)PACKED_RBP_OFF(v));
            sp = cfa;
            exact = false;
        }
        if (!ip)
            return n;
        pcs[n++] = ip;
    }
    return n;
}

__attribute__((noinline)) int pql_unwind(uintptr_t *pcs, int max, unsigned *flags)
{
    uintptr_t ip, sp, bp;
    /* The walk starts here: this instruction's address, and rsp and rbp as its rule describes them. */
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(ip), "=r"(sp), "=r"(bp));
    *flags = 0;
    return walk(pcs, 0, max, flags, ip, sp, bp, true);
}

int pql_unwind_from(uintptr_t *pcs, int max, unsigned *flags, const struct pql_unwind_start *start)
{
    *flags = 0;
    if (max <= 0 || !start->ip)
        return 0;
    pcs[0] = start->ip;
    return walk(pcs, 1, max, flags, start->ip, start->sp, start->bp, false);
}
