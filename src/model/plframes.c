/* Reads Perl 5.36's frames of the calling thread (appframes.h), as caller() sees them: the current COP
 * (file and line of the statement running) and the context stack of each stack-info, where every sub
 * or eval context holds the COP it was called from. Nothing of libperl is called: the interpreter is
 * the one this thread runs (PL_thr_key), whose contexts cannot change while this thread is inside
 * libpq. Built only with Perl's headers (for the layouts, ithreads build); inert elsewhere, for another
 * Perl version, or in a process without Perl. */
#define _GNU_SOURCE
#include "appreaders.h"

#include "codemap.h"
#include "dlhook.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "appframes.h"

#ifdef PQL_HAVE_PERL_HEADERS
#include <EXTERN.h>
#include <perl.h>

static bool enabled;
static pthread_key_t *thr_key;
static uintptr_t interp_lo, interp_hi; /* the interpreter's code (perl or libperl) */

void pql_perl_setup(void)
{
    const U8 *revision = pql_dlsym(RTLD_DEFAULT, "PL_revision");
    const U8 *version = pql_dlsym(RTLD_DEFAULT, "PL_version");
    void *runops = pql_dlsym(RTLD_DEFAULT, "Perl_runops_standard");
    thr_key = pql_dlsym(RTLD_DEFAULT, "PL_thr_key");
    /* The context layout is this version's: another one is left alone rather than misread. */
    if (!revision || !version || *revision != PERL_REVISION || *version != PERL_VERSION || !runops ||
        !thr_key)
        return;
    enabled = pql_code_range((uintptr_t)runops, &interp_lo, &interp_hi);
}

/* The interpreter this thread runs, NULL when this build cannot read it or the thread runs none. */
static PerlInterpreter *this_interpreter(void)
{
    return enabled ? pthread_getspecific(*thr_key) : NULL;
}

/* The name and package of a sub, read from its name HEK or its glob, never through libperl (CvGV may
 * create a glob); false when it has neither. */
static bool sub_parts(const CV *cv, const HEK **name, const HV **stash)
{
    *name = NULL;
    *stash = NULL;
    if (!cv || SvTYPE(cv) != SVt_PVCV)
        return false;
    if (CvNAMED(cv)) {
        *name = ((XPVCV *)SvANY(cv))->xcv_gv_u.xcv_hek;
        *stash = CvSTASH(cv);
    } else {
        const GV *gv = ((XPVCV *)SvANY(cv))->xcv_gv_u.xcv_gv;
        if (gv && SvTYPE(gv) == SVt_PVGV && isGV_with_GP(gv)) {
            *name = GvNAME_HEK(gv);
            *stash = GvSTASH(gv);
        }
    }
    return *name != NULL;
}

/* Appends the frame at cop of the sub cv ("(eval)" when cv is NULL and eval, "(main)" else); false when
 * the stack is full. */
static bool emit(uintptr_t *frames, int *out, int max, const COP *cop, const CV *cv, bool eval)
{
    if (*out >= max)
        return false;
    const char *file = cop ? CopFILE(cop) : NULL;
    if (!file)
        return true;
    const HEK *hek = NULL;
    const HV *stash = NULL;
    if (cv)
        sub_parts(cv, &hek, &stash);
    struct pql_app_key key = {PQL_LANG_PERL, (uintptr_t)cop, (uintptr_t)cv,
                              ((uintptr_t)file * 31 + (uintptr_t)hek) * 31 + (uintptr_t)stash + eval};
    uint32_t id = pql_app_find(&key);
    if (!id) {
        char buf[256];
        const char *function = eval ? "(eval)" : "(main)";
        const char *pkg = stash ? HvNAME_get(stash) : NULL;
        if (hek && pkg)
            function = (snprintf(buf, sizeof(buf), "%s::%.*s", pkg, (int)HEK_LEN(hek), HEK_KEY(hek)), buf);
        else if (hek)
            function = (snprintf(buf, sizeof(buf), "%.*s", (int)HEK_LEN(hek), HEK_KEY(hek)), buf);
        else if (cv)
            function = "(unknown)";
        id = pql_app_add(&key, function, file, (int)CopLINE(cop));
    }
    if (id)
        frames[(*out)++] = PQL_APPFRAME_TAG | id;
    return true;
}

int pql_perl_merge(uintptr_t *frames, int n, int max)
{
    PerlInterpreter *my_perl = this_interpreter();
    if (!my_perl || !PL_curcop || !PL_curstackinfo)
        return n;
    int k = pql_app_first_in(frames, n, interp_lo, interp_hi);
    if (k == n) /* not called from Perl code */
        return n;
    int out = k;
    const COP *cop = PL_curcop;
    pql_app_lock();
    for (const PERL_SI *si = PL_curstackinfo; si; si = si->si_prev) {
        for (I32 i = si->si_cxix; i >= 0; i--) {
            const PERL_CONTEXT *cx = &si->si_cxstack[i];
            U8 type = CxTYPE(cx);
            if (type != CXt_SUB && type != CXt_EVAL)
                continue;
            if (!emit(frames, &out, max, cop, type == CXt_SUB ? cx->blk_sub.cv : NULL, type == CXt_EVAL))
                goto full;
            cop = cx->blk_oldcop;
        }
    }
    emit(frames, &out, max, cop, NULL, false);
full:
    pql_app_unlock();
    return out > k ? out : n;
}

int pql_perl_may_tear_down(void)
{
    const PerlInterpreter *my_perl = this_interpreter();
    if (!my_perl)
        return -1;
    /* Global destruction, the scopes exit and die unwind, the main program's end: all free the
     * handles, and a handle's DESTROY closes it. The program's own END block is no destructor. */
    for (const PERL_SI *si = PL_curstackinfo; si; si = si->si_prev)
        if (si->si_type == PERLSI_DESTROY)
            return 1;
    return 0;
}

int pql_perl_in_main_scope(void)
{
    const PerlInterpreter *my_perl = this_interpreter();
    if (!my_perl)
        return -1;
    /* Destructors run on stacks of their own (PERLSI_DESTROY), above the one that freed the object. */
    const PERL_SI *si = PL_curstackinfo;
    while (si && si->si_type == PERLSI_DESTROY)
        si = si->si_prev;
    /* The main program's stack, holding only its outermost block (context 0, pushed by the main
     * program's enter op): not inside any sub, eval, loop or nested block. */
    return si && si->si_type == PERLSI_MAIN && !si->si_prev && si->si_cxix == 0 &&
           CxTYPE(&si->si_cxstack[0]) == CXt_BLOCK;
}

#else /* no Perl headers at build time */

void pql_perl_setup(void)
{
}

int pql_perl_merge(uintptr_t *frames, int n, int max)
{
    (void)frames;
    (void)max;
    return n;
}

int pql_perl_may_tear_down(void)
{
    return -1;
}

int pql_perl_in_main_scope(void)
{
    return -1;
}

#endif
