/* Reads CPython 3.11's interpreter frames of the calling thread. Safe without the GIL because only this
 * thread's own frame chain is read, and it cannot change while this thread is inside libpq: the frames
 * and the code objects they hold stay alive until the call returns. Built only where Python 3.11's
 * headers are (for the struct layouts; nothing of libpython is linked: its few functions are looked up
 * at run time); elsewhere, and for any other runtime version, stacks carry C frames only. */
#define _GNU_SOURCE
#include "pyframes.h"

#include "codemap.h"
#include "dlhook.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef PQL_HAVE_PYTHON_HEADERS
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

struct pyframe {
    uint64_t key[2]; /* code object, instruction offset: the line is computed once per call site */
    uint32_t id;
    int line;
    char *function, *file;
    UT_hash_handle hh;
};

static bool enabled;
static PyThreadState *(*get_tstate)(void);
static int (*addr2line)(PyCodeObject *, int);
static uintptr_t interp_lo, interp_hi; /* the interpreter's code (python3.x or libpython) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pyframe *by_key;
static struct pyframe **by_id;
static uint32_t count, cap;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool want;

static void fork_child(void);

static void setup(void)
{
    pthread_atfork(NULL, NULL, fork_child);
    const unsigned long *version = pql_dlsym(RTLD_DEFAULT, "Py_Version");
    *(void **)&get_tstate = pql_dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
    *(void **)&addr2line = pql_dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");
    /* The frame layout is this version's: another one is left alone rather than misread. */
    if (!want || !version || (*version >> 16) != (PY_VERSION_HEX >> 16) || !get_tstate || !addr2line)
        return;
    enabled = pql_code_range((uintptr_t)get_tstate, &interp_lo, &interp_hi);
}

/* Another parent thread may have held the table's lock (a Python thread connecting without the GIL
 * while another one forks): the child resets it. */
static void fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
}

void pql_py_setup(bool on)
{
    want = on;
    pthread_once(&once, setup);
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

/* The id of a frame (code, instruction offset), interned with copies of its strings and its line; 0 on
 * out of memory. Lock held. */
static uint32_t intern(PyCodeObject *code, int lasti)
{
    const char *function = utf8_of(code->co_qualname), *file = utf8_of(code->co_filename);
    uint64_t key[2] = {(uint64_t)(uintptr_t)code, (uint64_t)lasti};
    struct pyframe *f;
    HASH_FIND(hh, by_key, key, sizeof(key), f);
    /* A freed code object's address may be reused: the strings tell. */
    if (f && !strcmp(f->function, function) && !strcmp(f->file, file))
        return f->id;
    if (f)
        HASH_DEL(by_key, f); /* the old entry stays reachable by id for stacks that use it */
    if (count == cap) {
        uint32_t ncap = cap ? 2 * cap : 256;
        struct pyframe **v = realloc(by_id, ncap * sizeof(*v));
        if (!v)
            return 0;
        by_id = v;
        cap = ncap;
    }
    f = calloc(1, sizeof(*f));
    if (!f || !(f->function = strdup(function)) || !(f->file = strdup(file))) {
        if (f)
            free(f->function);
        free(f);
        return 0;
    }
    memcpy(f->key, key, sizeof(key));
    f->line = addr2line(code, lasti * (int)sizeof(_Py_CODEUNIT));
    f->id = ++count;
    by_id[f->id - 1] = f;
    HASH_ADD(hh, by_key, key, sizeof(f->key), f);
    return f->id;
}

int pql_py_merge(uintptr_t *frames, int n, int max)
{
    if (!enabled)
        return n;
    PyThreadState *ts = get_tstate();
    if (!ts || !ts->cframe)
        return n;
    int k = 0;
    while (k < n && !(frames[k] - 1 >= interp_lo && frames[k] - 1 < interp_hi))
        k++;
    if (k == n) /* not called from Python code */
        return n;
    int out = k;
    pthread_mutex_lock(&lock);
    for (_PyInterpreterFrame *f = ts->cframe->current_frame; f && out < max; f = f->previous) {
        PyCodeObject *code = f->f_code;
        if (!code)
            continue;
        /* A frame being set up has no meaningful position yet. */
        if (f->owner != FRAME_OWNED_BY_GENERATOR &&
            f->prev_instr < _PyCode_CODE(code) + code->_co_firsttraceable)
            continue;
        int lasti = (int)(f->prev_instr - _PyCode_CODE(code));
        uint32_t id = intern(code, lasti);
        if (id)
            frames[out++] = PQL_PYFRAME_TAG | id;
    }
    pthread_mutex_unlock(&lock);
    return out > k ? out : n;
}

bool pql_py_frame(uintptr_t entry, const char **function, const char **file, int *line)
{
    uint32_t id = (uint32_t)(entry & ~PQL_PYFRAME_TAG);
    bool ok = false;
    pthread_mutex_lock(&lock);
    if (id >= 1 && id <= count) {
        *function = by_id[id - 1]->function;
        *file = by_id[id - 1]->file;
        *line = by_id[id - 1]->line;
        ok = true;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

#else /* no Python headers at build time */

void pql_py_setup(bool on)
{
    (void)on;
}

int pql_py_merge(uintptr_t *frames, int n, int max)
{
    (void)frames;
    (void)max;
    return n;
}

bool pql_py_frame(uintptr_t entry, const char **function, const char **file, int *line)
{
    (void)entry;
    (void)function;
    (void)file;
    (void)line;
    return false;
}

#endif
