/* libFuzzer target: the call frame information reader of src/base/unwind.c (CIEs, FDEs, their pointer
 * encodings and CFA programs), the one parser the shim runs on every object's .eh_frame. Properties:
 * every read stays inside the buffer (ASan: the input is copied to a buffer of its exact size), an
 * address outside the FDE's range gets no rule, and every rule given is one the walker can follow
 * safely (a CFA offset above 0 and within the packed field, rbp's slot a multiple of 8 within its span).
 * Input: the FDE's offset in the blob (2 bytes), an address offset into its range (2 bytes), the blob. */
#include "fuzz.h"
#include "unwind.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

FUZZ_INITIALIZE_KEEPING_STDERR

static void check(const struct pql_cfi_rule *r)
{
    if (r->kind != PQL_CFI_STANDARD)
        return;
    if (r->cfa_off <= 0 || r->cfa_off >= (1 << 20))
        fuzz_fail("CFA offset %lld outside (0, 2^20)", (long long)r->cfa_off);
    if (r->rbp_saved && (r->rbp_off % 8 || r->rbp_off < -1024 || r->rbp_off >= 1024))
        fuzz_fail("rbp slot %lld not a multiple of 8 within [-1024, 1024)", (long long)r->rbp_off);
    if (!r->rbp_saved && r->rbp_off)
        fuzz_fail("rbp not saved but an offset given");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t off = (size_t)data[0] | (size_t)data[1] << 8;
    uintptr_t delta = (uintptr_t)data[2] | (uintptr_t)data[3] << 8;
    size_t n = size - 4;
    uint8_t *blob = malloc(n ? n : 1);
    if (!blob)
        return 0;
    memcpy(blob, data + 4, n);
    uintptr_t lo = (uintptr_t)blob, hi = lo + n;
    uintptr_t fde = lo + (n ? off % n : 0);
    uintptr_t start, end;
    struct pql_cfi_rule r;
    if (pql_cfi_fde_range(fde, lo, hi, &start, &end)) {
        int got = pql_cfi_fde_rule(fde, lo, hi, start + delta, &r);
        if (got < 0)
            fuzz_fail("the FDE's range was read but its rule not");
        if (got == 1)
            check(&r);
        bool inside = delta < end - start;
        if (inside != (got == 1))
            fuzz_fail("rule %d for an address %s the FDE's range", got, inside ? "inside" : "outside");
        if (end > start && pql_cfi_fde_rule(fde, lo, hi, end, &r) != 0)
            fuzz_fail("a rule for the FDE's end, which it does not cover");
    } else if (pql_cfi_fde_rule(fde, lo, hi, lo, &r) != -1) {
        fuzz_fail("a rule from an FDE whose range could not be read");
    }
    free(blob);
    return 0;
}
