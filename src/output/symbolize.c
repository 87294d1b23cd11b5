/* Symbolization with libdw (elfutils), dlopen'ed RTLD_LOCAL at the first report so that processes
 * that never report never load it. Separate debug files are searched only locally by build id
 * (dwfl_build_id_find_debuginfo): never debuginfod, which would reach for the network from inside
 * the host process. Runs on the reporting thread; not signal-safe. */
#define _GNU_SOURCE
#include "symbolize.h"

#include <dlfcn.h>

#include "dlhook.h"
#include "proc.h"
#include "appframes.h"
#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

struct dw_api {
    Dwfl *(*begin)(const Dwfl_Callbacks *);
    void (*end)(Dwfl *);
    int (*linux_proc_report)(Dwfl *, pid_t);
    int (*report_end)(Dwfl *, int (*)(Dwfl_Module *, void *, const char *, Dwarf_Addr, void *), void *);
    void (*report_begin_add)(Dwfl *);
    Dwfl_Module *(*addrmodule)(Dwfl *, Dwarf_Addr);
    const char *(*module_addrname)(Dwfl_Module *, GElf_Addr);
    Dwfl_Line *(*module_getsrc)(Dwfl_Module *, Dwarf_Addr);
    const char *(*lineinfo)(Dwfl_Line *, Dwarf_Addr *, int *, int *, Dwarf_Word *, Dwarf_Word *);
    const char *(*module_info)(Dwfl_Module *, void ***, Dwarf_Addr *, Dwarf_Addr *, Dwarf_Addr *,
                               Dwarf_Addr *, const char **, const char **);
    Dwfl_Callbacks callbacks;
};

static struct dw_api dw;
static pthread_once_t dw_once = PTHREAD_ONCE_INIT;
static char *no_debuginfo_path;

#define LOAD(h, field, sym) (*(void **)&dw.field = pql_dlsym(h, sym))

static void dw_load(void)
{
    void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    LOAD(h, begin, "dwfl_begin");
    LOAD(h, end, "dwfl_end");
    LOAD(h, linux_proc_report, "dwfl_linux_proc_report");
    LOAD(h, report_end, "dwfl_report_end");
    LOAD(h, report_begin_add, "dwfl_report_begin_add");
    LOAD(h, addrmodule, "dwfl_addrmodule");
    LOAD(h, module_addrname, "dwfl_module_addrname");
    LOAD(h, module_getsrc, "dwfl_module_getsrc");
    LOAD(h, lineinfo, "dwfl_lineinfo");
    LOAD(h, module_info, "dwfl_module_info");
    LOAD(h, callbacks.find_elf, "dwfl_linux_proc_find_elf");
    LOAD(h, callbacks.find_debuginfo, "dwfl_build_id_find_debuginfo");
    dw.callbacks.debuginfo_path = &no_debuginfo_path;
    if (!dw.begin || !dw.end || !dw.linux_proc_report || !dw.report_end || !dw.report_begin_add ||
        !dw.addrmodule || !dw.module_addrname || !dw.module_getsrc || !dw.lineinfo || !dw.module_info ||
        !dw.callbacks.find_elf || !dw.callbacks.find_debuginfo)
        dw.begin = NULL;
}

struct cached {
    struct pql_frame f;
    UT_hash_handle hh;
};

struct pql_symbolizer {
    Dwfl *dwfl;
    struct cached *cache;
    char exe[1024];
    bool refreshed; /* modules re-read since acquired: at most once per use */
};

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pql_symbolizer *shared;

/* Adds the modules loaded since the session began; those unloaded since stay known. */
static void refresh(struct pql_symbolizer *s)
{
    if (!s->dwfl || s->refreshed)
        return;
    s->refreshed = true;
    dw.report_begin_add(s->dwfl);
    dw.linux_proc_report(s->dwfl, getpid());
    dw.report_end(s->dwfl, NULL, NULL);
}

struct pql_symbolizer *pql_sym_open(void)
{
    pthread_once(&dw_once, dw_load);
    struct pql_symbolizer *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    ssize_t n = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1);
    s->exe[n > 0 ? n : 0] = '\0';
    if (dw.begin) {
        s->dwfl = dw.begin(&dw.callbacks);
        if (s->dwfl &&
            (dw.linux_proc_report(s->dwfl, getpid()) != 0 || dw.report_end(s->dwfl, NULL, NULL) != 0)) {
            dw.end(s->dwfl);
            s->dwfl = NULL;
        }
    }
    return s;
}

static char *dup_or_null(const char *p)
{
    return p && *p ? strdup(p) : NULL;
}

static void resolve(struct pql_symbolizer *s, struct pql_frame *f)
{
    /* A return address points after the call; look up the call itself. */
    uintptr_t pc = f->pc ? f->pc - 1 : 0;
    Dl_info info;
    if (dladdr((void *)pc, &info)) {
        f->offset = f->pc - (uintptr_t)info.dli_fbase;
        /* The main program's name from dladdr is empty or argv[0]. */
        const char *mod = info.dli_fname && info.dli_fname[0] == '/' ? info.dli_fname : s->exe;
        f->module = dup_or_null(mod);
        f->function = dup_or_null(info.dli_sname);
    }
    if (!s->dwfl)
        return;
    Dwfl_Module *m = dw.addrmodule(s->dwfl, pc);
    if (!m) {
        refresh(s); /* a module loaded after the session began */
        m = dw.addrmodule(s->dwfl, pc);
    }
    if (!m)
        return;
    if (!f->module) {
        Dwarf_Addr start = 0;
        const char *mainfile = NULL;
        const char *name = dw.module_info(m, NULL, &start, NULL, NULL, NULL, &mainfile, NULL);
        f->module = dup_or_null(mainfile ? mainfile : name);
        f->offset = f->pc - start;
    }
    const char *fn = dw.module_addrname(m, pc);
    if (fn) {
        free((char *)f->function);
        /* "__libc_start_main@@GLIBC_2.34": the symbol version is noise in a report. */
        f->function = strndup(fn, strcspn(fn, "@"));
    }
    Dwfl_Line *line = dw.module_getsrc(m, pc);
    if (line) {
        int lineno = 0;
        const char *src = dw.lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        f->file = dup_or_null(src);
        f->line = lineno;
    }
}

const struct pql_frame *pql_sym_frame(struct pql_symbolizer *s, uintptr_t pc)
{
    struct cached *c;
    HASH_FIND(hh, s->cache, &pc, sizeof(pc), c);
    if (c)
        return &c->f;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->f.pc = pc;
    c->f.lang = "c";
    const char *function, *file;
    int line;
    if (pc & PQL_APPFRAME_TAG) {
        const char *lang = "?";
        if (pql_app_frame(pc, &lang, &function, &file, &line)) {
            c->f.function = strdup(function);
            c->f.file = strdup(file);
            c->f.line = line;
        }
        c->f.lang = lang;
    } else {
        resolve(s, &c->f);
    }
    HASH_ADD(hh, s->cache, f.pc, sizeof(pc), c);
    return &c->f;
}

void pql_sym_close(struct pql_symbolizer *s)
{
    if (!s)
        return;
    struct cached *c, *tmp;
    HASH_ITER(hh, s->cache, c, tmp)
    {
        HASH_DEL(s->cache, c);
        free((char *)c->f.function);
        free((char *)c->f.file);
        free((char *)c->f.module);
        free(c);
    }
    if (s->dwfl)
        dw.end(s->dwfl);
    free(s);
}

struct pql_symbolizer *pql_sym_acquire(void)
{
    pthread_mutex_lock(&shared_lock);
    if (!shared)
        shared = pql_sym_open();
    if (!shared) {
        pthread_mutex_unlock(&shared_lock);
        return NULL;
    }
    shared->refreshed = false;
    return shared;
}

void pql_sym_release(struct pql_symbolizer *s)
{
    if (s)
        pthread_mutex_unlock(&shared_lock);
}

void pql_sym_note_modules(void)
{
    struct pql_symbolizer *s = pql_sym_acquire();
    if (s)
        refresh(s);
    pql_sym_release(s);
}

/* A parent thread may have held the shared session's lock; the child resets it (the session itself
 * stays: its cache is still right for the child's copy of the address space). */
static void fork_child(void)
{
    pthread_mutex_init(&shared_lock, NULL);
}

void pql_sym_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
}
