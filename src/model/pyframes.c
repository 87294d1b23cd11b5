/* Reads CPython's interpreter frames of the calling thread (appframes.h): 3.11's as this file, 3.12's and
 * 3.13's as py312frames.c and py313frames.c, which compile it again against those versions' headers
 * (PQL_PY_VARIANT). Safe without the GIL because only this thread's own frame chain is read, and it
 * cannot change while this thread is inside libpq: the frames and the code objects they hold stay alive
 * until the call returns. Built only where the version's headers are (for the struct layouts; nothing
 * of libpython is linked: its few functions and objects are looked up at run time); elsewhere, and for
 * any other runtime version, the reader is inert. */
#ifndef PQL_PY_VARIANT
#define PQL_PY_VARIANT 311
#endif
#define PQL_PY_CAT(a, b)  a##b
#define PQL_PY_CAT2(a, b) PQL_PY_CAT(a, b)
#define PQL_PY_FN(name)   PQL_PY_CAT2(PQL_PY_CAT2(pql_python, PQL_PY_VARIANT), _##name)

#define _GNU_SOURCE
#include "appreaders.h"

#include "codemap.h"
#include "dlhook.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "appframes.h"

#ifdef PQL_HAVE_PYTHON_HEADERS
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>

/* The thread state's field may_finalize reads besides the handled exceptions: the trashcan's nesting.
 * 3.13's trashcan counts with the C recursion budget, shared with every call: there may_finalize answers
 * "not known", and the caller walks the stack. */
#if PY_VERSION_HEX < 0x030c0000
#define GATE_FIELDS_KNOWN 1
#define TRASH_NESTING(ts) ((ts)->trash_delete_nesting)
#elif PY_VERSION_HEX < 0x030d0000
#define GATE_FIELDS_KNOWN 1
#define TRASH_NESTING(ts) ((ts)->trash.delete_nesting)
#else
#define GATE_FIELDS_KNOWN 0
#endif

#if PY_VERSION_HEX >= 0x030d0000 /* 3.13: no cframe; a frame's executable may be other than code */
#define CURRENT_FRAME(ts) ((ts)->current_frame)
#define FRAME_CODE(f)     (Py_TYPE((f)->f_executable) == code_type ? (PyCodeObject *)(f)->f_executable : NULL)
#else
#define CURRENT_FRAME(ts) ((ts)->cframe ? (ts)->cframe->current_frame : NULL)
#define FRAME_CODE(f)     ((f)->f_code)
#endif

static bool enabled;
static bool gate; /* the thread state is read for may_finalize (whatever PQLEAK_PYTHON says) */
static PyObject *const *generator_exit;
static PyThreadState *(*get_tstate)(void);
static int (*addr2line)(PyCodeObject *, int);
static const PyTypeObject *code_type;
static uintptr_t interp_lo, interp_hi; /* the interpreter's code (python3.x or libpython) */

bool PQL_PY_FN(setup)(bool on)
{
    const unsigned long *version = pql_dlsym(RTLD_DEFAULT, "Py_Version");
    *(void **)&get_tstate = pql_dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
    *(void **)&addr2line = pql_dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");
    code_type = pql_dlsym(RTLD_DEFAULT, "PyCode_Type");
    /* The frame layout is this version's: another one is left alone rather than misread. */
    if (!version || (*version >> 16) != (PY_VERSION_HEX >> 16) || !get_tstate)
        return false;
    generator_exit = pql_dlsym(RTLD_DEFAULT, "PyExc_GeneratorExit");
    gate = GATE_FIELDS_KNOWN && generator_exit;
    if (on && addr2line && code_type)
        enabled = pql_code_range((uintptr_t)get_tstate, &interp_lo, &interp_hi);
    return enabled;
}

#if GATE_FIELDS_KNOWN
/* True when type t is base or derives from it (the tp_base chain, read without any call). */
static bool derives(const PyTypeObject *t, const PyTypeObject *base)
{
    for (; t; t = t->tp_base)
        if (t == base)
            return true;
    return false;
}
#endif

/* The finalizers the teardown check finds on the stack (runtime.c) leave a mark on the thread: a dropped
 * object's __del__ runs inside subtype_dealloc's trashcan (nesting > 0: every class statement makes a GC
 * type, the trashcan's condition); a dropped generator's or coroutine's finally and with blocks run while
 * GeneratorExit is handled, and its locals are released with its frame object, dropped by the
 * GeneratorExit's traceback inside tb_dealloc's and frame_dealloc's trashcans. Without either mark, none
 * of them is on the stack. */
int PQL_PY_FN(may_finalize)(void)
{
    if (!gate)
        return -1;
    PyThreadState *ts = get_tstate();
    if (!ts) /* a thread Python did not make (or a subinterpreter's): not known */
        return 1;
#if GATE_FIELDS_KNOWN
    if (TRASH_NESTING(ts) > 0)
        return 1;
    const PyTypeObject *ge = (const PyTypeObject *)*generator_exit;
    for (const _PyErr_StackItem *e = ts->exc_info; e; e = e->previous_item)
        if (e->exc_value && derives(Py_TYPE(e->exc_value), ge))
            return 1;
#endif
    return 0;
}

/* UTF-8 of a str object, read without any API call: compact ASCII (the usual case for names and paths)
 * or a cached UTF-8 form; "?" otherwise. */
static const char *utf8_of(PyObject *o)
{
    if (!o)
        return "?";
    PyASCIIObject *a = (PyASCIIObject *)o;
    if (a->state.compact && a->state.ascii)
        return (const char *)(a + 1);
    PyCompactUnicodeObject *c = (PyCompactUnicodeObject *)o;
    return a->state.compact && c->utf8 ? c->utf8 : "?";
}

int PQL_PY_FN(merge)(uintptr_t *frames, int n, int max)
{
    if (!enabled)
        return n;
    PyThreadState *ts = get_tstate();
    if (!ts)
        return n;
    int k = pql_app_first_in(frames, n, interp_lo, interp_hi);
    if (k == n) /* not called from Python code */
        return n;
    int out = k;
    bool locked = false; /* taken for the first site this thread has not met lately */
    for (_PyInterpreterFrame *f = CURRENT_FRAME(ts); f && out < max; f = f->previous) {
#if PY_VERSION_HEX >= 0x030c0000
        if (f->owner == FRAME_OWNED_BY_CSTACK) /* the C stack's entry frames, no Python code */
            continue;
#endif
        PyCodeObject *code = FRAME_CODE(f);
        /* A frame being set up has no meaningful position yet. */
        if (!code || _PyFrame_IsIncomplete(f))
            continue;
        int lasti = _PyInterpreterFrame_LASTI(f);
        struct pql_app_key key = {PQL_LANG_PYTHON, (uintptr_t)code, (uint64_t)lasti,
                                  (uintptr_t)code->co_qualname * 31 + (uintptr_t)code->co_filename};
        uint32_t id = pql_app_cached(&key);
        if (!id) {
            if (!locked)
                pql_app_lock();
            locked = true;
            id = pql_app_find(&key);
            if (!id)
                id = pql_app_add(&key, utf8_of(code->co_qualname), utf8_of(code->co_filename),
                                 addr2line(code, lasti * (int)sizeof(_Py_CODEUNIT)));
            pql_app_remember(&key, id);
        }
        if (id)
            frames[out++] = PQL_APPFRAME_TAG | id;
    }
    if (locked)
        pql_app_unlock();
    return out > k ? out : n;
}

#else /* no Python headers at build time */

bool PQL_PY_FN(setup)(bool on)
{
    (void)on;
    return false;
}

int PQL_PY_FN(may_finalize)(void)
{
    return -1;
}

int PQL_PY_FN(merge)(uintptr_t *frames, int n, int max)
{
    (void)frames;
    (void)max;
    return n;
}

#endif
