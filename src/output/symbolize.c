/* Symbolization with libdw (elfutils), dlopen'ed RTLD_LOCAL at the first report so that processes
 * that never report never load it. Separate debug files are searched only locally by build id
 * (dwfl_build_id_find_debuginfo): never debuginfod, which would reach for the network from inside
 * the host process. An address inside inlined code yields one frame per inlined function, as
 * addr2line -i does; C++ names are demangled by the process's own __cxa_demangle when the program has
 * libstdc++ loaded (the shim never loads it). Names and paths are kept display-safe: a control byte
 * or invalid UTF-8 in a symbol, a script's function or file name or a module path is recorded escaped
 * (common/escape.h), so that no report, log line or baseline rule made of it can be broken into lines;
 * every output and the suppression rules see the same name. Runs on the reporting thread; not
 * signal-safe. */
#define _GNU_SOURCE
#include "symbolize.h"

#include <dlfcn.h>

#include "dlhook.h"
#include "escape.h"
#include "path.h"
#include "proc.h"
#include "appframes.h"
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    /* libdw's own finders, which open files without O_CLOEXEC; called through find_elf_cloexec and
     * find_debuginfo_cloexec. */
    int (*proc_find_elf)(Dwfl_Module *, void **, const char *, Dwarf_Addr, char **, Elf **);
    int (*build_id_find_debuginfo)(Dwfl_Module *, void **, const char *, Dwarf_Addr, const char *,
                                   const char *, GElf_Word, char **);
    /* Inline expansion; optional (all NULL: one frame per address). */
    Dwarf_Die *(*module_addrdie)(Dwfl_Module *, Dwarf_Addr, Dwarf_Addr *);
    int (*child)(Dwarf_Die *, Dwarf_Die *);
    int (*siblingof)(Dwarf_Die *, Dwarf_Die *);
    int (*haspc)(Dwarf_Die *, Dwarf_Addr);
    Dwarf_Die *(*module_nextcu)(Dwfl_Module *, Dwarf_Die *, Dwarf_Addr *);
    Dwarf_Line *(*getsrc_die)(Dwarf_Die *, Dwarf_Addr);
    const char *(*linesrc)(Dwarf_Line *, Dwarf_Word *, Dwarf_Word *);
    int (*lineno)(Dwarf_Line *, int *);
    int (*tag)(Dwarf_Die *);
    Dwarf_Attribute *(*attr)(Dwarf_Die *, unsigned int, Dwarf_Attribute *);
    Dwarf_Attribute *(*attr_integrate)(Dwarf_Die *, unsigned int, Dwarf_Attribute *);
    const char *(*formstring)(Dwarf_Attribute *);
    int (*formudata)(Dwarf_Attribute *, Dwarf_Word *);
    const char *(*diename)(Dwarf_Die *);
    int (*getsrcfiles)(Dwarf_Die *, Dwarf_Files **, size_t *);
    const char *(*filesrc)(Dwarf_Files *, size_t, Dwarf_Word *, Dwarf_Word *);
};

static struct dw_api dw;
static pthread_once_t dw_once = PTHREAD_ONCE_INIT;
static char *no_debuginfo_path;

#define LOAD(h, field, sym) (*(void **)&dw.field = pql_dlsym(h, sym))

/* The ELF files libdw keeps open for the session (the program's and its libraries') must not pass to
 * the programs the host executes: a file that is a path is opened here with O_CLOEXEC, as
 * dwfl_linux_proc_find_elf would open it (regular files only: a mapped device could block); anything
 * else ("[vdso: N]", a deleted file) goes to libdw's finder, and the fd it returns, if any, is made
 * close-on-exec at once. */
static int find_elf_cloexec(Dwfl_Module *mod, void **userdata, const char *module_name, Dwarf_Addr base,
                            char **file_name, Elf **elfp)
{
    struct stat st;
    if (module_name[0] == '/' && stat(module_name, &st) == 0 && S_ISREG(st.st_mode)) {
        int fd = open(module_name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0 && !(*file_name = strdup(module_name))) {
            close(fd);
            return -1;
        }
        return fd;
    }
    int fd = dw.proc_find_elf(mod, userdata, module_name, base, file_name, elfp);
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

/* libdw's local search by build id (never debuginfod), its fd made close-on-exec. */
static int find_debuginfo_cloexec(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                                  const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                                  char **debuginfo_file_name)
{
    int fd = dw.build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

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
    LOAD(h, proc_find_elf, "dwfl_linux_proc_find_elf");
    LOAD(h, build_id_find_debuginfo, "dwfl_build_id_find_debuginfo");
    dw.callbacks.find_elf = find_elf_cloexec;
    dw.callbacks.find_debuginfo = find_debuginfo_cloexec;
    dw.callbacks.debuginfo_path = &no_debuginfo_path;
    if (!dw.begin || !dw.end || !dw.linux_proc_report || !dw.report_end || !dw.report_begin_add ||
        !dw.addrmodule || !dw.module_addrname || !dw.module_getsrc || !dw.lineinfo || !dw.module_info ||
        !dw.proc_find_elf || !dw.build_id_find_debuginfo)
        dw.begin = NULL;
    LOAD(h, module_addrdie, "dwfl_module_addrdie");
    LOAD(h, child, "dwarf_child");
    LOAD(h, siblingof, "dwarf_siblingof");
    LOAD(h, haspc, "dwarf_haspc");
    LOAD(h, module_nextcu, "dwfl_module_nextcu");
    LOAD(h, getsrc_die, "dwarf_getsrc_die");
    LOAD(h, linesrc, "dwarf_linesrc");
    LOAD(h, lineno, "dwarf_lineno");
    LOAD(h, tag, "dwarf_tag");
    LOAD(h, attr, "dwarf_attr");
    LOAD(h, attr_integrate, "dwarf_attr_integrate");
    LOAD(h, formstring, "dwarf_formstring");
    LOAD(h, formudata, "dwarf_formudata");
    LOAD(h, diename, "dwarf_diename");
    LOAD(h, getsrcfiles, "dwarf_getsrcfiles");
    LOAD(h, filesrc, "dwarf_filesrc");
    if (!dw.module_addrdie || !dw.child || !dw.siblingof || !dw.haspc || !dw.module_nextcu ||
        !dw.getsrc_die || !dw.linesrc || !dw.lineno || !dw.tag || !dw.attr || !dw.attr_integrate ||
        !dw.formstring || !dw.formudata || !dw.diename || !dw.getsrcfiles || !dw.filesrc)
        dw.module_addrdie = NULL;
}

/* The frames of one address: inl[0..ninl) the functions inlined there, innermost first, then f, the
 * function the address is in. */
struct cached {
    struct pql_frame f;
    struct pql_frame *inl;
    int ninl;
    UT_hash_handle hh;
};

typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

struct pql_symbolizer {
    Dwfl *dwfl;
    struct cached *cache;
    char exe[1024];
    bool refreshed;       /* modules re-read since acquired: at most once per use */
    demangle_fn demangle; /* the process's __cxa_demangle, or NULL */
    bool demangle_looked; /* looked for it since acquired */
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
    pql_self_exe(s->exe, sizeof(s->exe));
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

/* A malloc'ed copy of p[0..len), escaped when it holds a control byte or invalid UTF-8; NULL when out
 * of memory. */
static char *safe_dup(const char *p, size_t len)
{
    if (pql_escape_clean(p, len, false))
        return strndup(p, len);
    size_t need = pql_escape(NULL, 0, p, len, false) + 1;
    char *out = malloc(need);
    if (out)
        pql_escape(out, need, p, len, false);
    return out;
}

static char *dup_or_null(const char *p)
{
    return p && *p ? safe_dup(p, strlen(p)) : NULL;
}

/* A function's name for a report, malloc'ed: a C++ name demangled by the process's own __cxa_demangle
 * (looked up once per use of the session, so that a libstdc++ loaded late is found); else a copy.
 * NULL only when name is NULL or memory is out. */
static char *readable(struct pql_symbolizer *s, const char *name, size_t len)
{
    if (!name)
        return NULL;
    char *copy = safe_dup(name, len);
    if (!copy || strncmp(copy, "_Z", 2) != 0)
        return copy;
    if (!s->demangle && !s->demangle_looked) {
        s->demangle_looked = true;
        *(void **)&s->demangle = pql_dlsym(RTLD_DEFAULT, "__cxa_demangle");
    }
    int status = -1;
    char *out = s->demangle ? s->demangle(copy, NULL, NULL, &status) : NULL;
    if (!out || status != 0) {
        free(out);
        return copy;
    }
    free(copy);
    copy = safe_dup(out, strlen(out));
    free(out);
    return copy;
}

/* A DIE's function name as addr2line gives it: the linkage name (mangled, demangled here), following
 * DW_AT_abstract_origin and DW_AT_specification, else the plain name. */
static char *die_function(struct pql_symbolizer *s, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *name = dw.formstring(dw.attr_integrate(die, DW_AT_linkage_name, &a));
    if (!name)
        name = dw.formstring(dw.attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
    if (!name)
        name = dw.diename(die);
    return name ? readable(s, name, strlen(name)) : NULL;
}

#define MAX_SCOPES 64

/* Appends to path[*n] the DIEs under parent that contain pc, outermost first (functions, inlined
 * functions, blocks); namespaces, which have no addresses, are looked into. Only the branch holding pc
 * is read, unlike dwarf_getscopes_die, which reads the unit up to it: a report stays as fast in a large
 * C++ unit. True when a DIE containing pc was found. Nesting deeper than MAX_SCOPES is cut. */
static bool scope_path(Dwarf_Die *parent, Dwarf_Addr pc, Dwarf_Die *path, int *n)
{
    Dwarf_Die die, next;
    if (dw.child(parent, &die) != 0)
        return false;
    for (;;) {
        switch (dw.tag(&die)) {
        case DW_TAG_namespace:
        case DW_TAG_module:
            if (scope_path(&die, pc, path, n))
                return true;
            break;
        case DW_TAG_subprogram:
        case DW_TAG_inlined_subroutine:
        case DW_TAG_lexical_block:
        case DW_TAG_try_block:
        case DW_TAG_catch_block:
            if (dw.haspc(&die, pc) > 0) {
                if (*n < MAX_SCOPES)
                    path[(*n)++] = die;
                scope_path(&die, pc, path, n);
                return true;
            }
            break;
        default:
            break;
        }
        if (dw.siblingof(&die, &next) != 0)
            return false;
        die = next;
    }
}

/* The compilation unit holding pc (its bias in *bias): by .debug_aranges, else by the units' own
 * ranges, since clang writes no .debug_aranges unless asked (-gdwarf-aranges). NULL when there is no
 * such unit, or DWARF at all. */
static Dwarf_Die *unit_of(Dwfl_Module *m, uintptr_t pc, Dwarf_Addr *bias)
{
    if (!dw.module_addrdie)
        return NULL;
    Dwarf_Die *cu = dw.module_addrdie(m, pc, bias);
    for (Dwarf_Die *u = NULL; !cu && (u = dw.module_nextcu(m, u, bias)) != NULL;)
        if (dw.haspc(u, pc - *bias) > 0)
            cu = u;
    return cu;
}

/* Expands the inlined functions at pc (already the call's address) into c->inl, as addr2line -i does:
 * the innermost takes the line table's position (already in c->f), each caller the call position
 * (DW_AT_call_file, DW_AT_call_line) of the function inlined into it; c->f, the containing function,
 * keeps its symbol's name and takes the call position of the outermost inlined function. Leaves c as
 * it is when there is no inlining or no DWARF, or memory is out. */
static void expand_inlines(struct pql_symbolizer *s, Dwarf_Die *cu, Dwarf_Addr pc, struct cached *c)
{
    Dwarf_Die scopes[MAX_SCOPES];
    int n = 0;
    if (!cu || !scope_path(cu, pc, scopes, &n))
        return;
    Dwarf_Files *files = NULL;
    int ninl = 0;
    for (int i = 0; i < n; i++)
        ninl += dw.tag(&scopes[i]) == DW_TAG_inlined_subroutine;
    if (ninl == 0 || dw.getsrcfiles(cu, &files, NULL) != 0 ||
        !(c->inl = calloc((size_t)ninl, sizeof(*c->inl))))
        return;
    /* Walk outwards: each inlined function's frame, then the position it was called from. */
    const char *file = c->f.file;
    int line = c->f.line;
    c->f.file = NULL;
    for (int i = n - 1; i >= 0 && c->ninl < ninl; i--) {
        if (dw.tag(&scopes[i]) != DW_TAG_inlined_subroutine)
            continue;
        struct pql_frame *f = &c->inl[c->ninl++];
        *f = c->f; /* pc, module (owned by c->f), offset, lang */
        f->function = die_function(s, &scopes[i]);
        f->file = file;
        f->line = line;
        Dwarf_Attribute a;
        Dwarf_Word v = 0;
        file = dw.formudata(dw.attr(&scopes[i], DW_AT_call_file, &a), &v) == 0
                   ? dup_or_null(dw.filesrc(files, v, NULL, NULL))
                   : NULL;
        line = dw.formudata(dw.attr(&scopes[i], DW_AT_call_line, &a), &v) == 0 ? (int)v : 0;
    }
    c->f.file = file;
    c->f.line = line;
}

static void resolve(struct pql_symbolizer *s, struct cached *c)
{
    struct pql_frame *f = &c->f;
    /* A return address points after the call; look up the call itself. */
    uintptr_t pc = f->pc ? f->pc - 1 : 0;
    Dl_info info;
    if (dladdr((void *)pc, &info)) {
        f->offset = f->pc - (uintptr_t)info.dli_fbase;
        /* The main program's name from dladdr is empty or argv[0]. */
        const char *mod = info.dli_fname && info.dli_fname[0] == '/' ? info.dli_fname : s->exe;
        f->module = dup_or_null(mod);
        f->function =
            info.dli_sname && *info.dli_sname ? readable(s, info.dli_sname, strlen(info.dli_sname)) : NULL;
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
        f->function = readable(s, fn, strcspn(fn, "@"));
    }
    Dwfl_Line *line = dw.module_getsrc(m, pc);
    if (line) {
        int lineno = 0;
        const char *src = dw.lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        f->file = dup_or_null(src);
        f->line = lineno;
    }
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = unit_of(m, pc, &bias);
    Dwarf_Line *unit_line = !line && cu ? dw.getsrc_die(cu, pc - bias) : NULL;
    if (unit_line) { /* a unit found by its ranges (no .debug_aranges) */
        int lineno = 0;
        f->file = dup_or_null(dw.linesrc(unit_line, NULL, NULL));
        f->line = dw.lineno(unit_line, &lineno) == 0 ? lineno : 0;
    }
    expand_inlines(s, cu, pc - bias, c);
}

static struct cached *lookup(struct pql_symbolizer *s, uintptr_t pc)
{
    struct cached *c;
    HASH_FIND(hh, s->cache, &pc, sizeof(pc), c);
    if (c)
        return c;
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
            c->f.function = safe_dup(function, strlen(function));
            c->f.file = safe_dup(file, strlen(file));
            c->f.line = line;
        }
        c->f.lang = lang;
    } else {
        resolve(s, c);
    }
    HASH_ADD(hh, s->cache, f.pc, sizeof(pc), c);
    return c;
}

const struct pql_frame *pql_sym_frame(struct pql_symbolizer *s, uintptr_t pc)
{
    struct cached *c = lookup(s, pc);
    return c ? &c->f : NULL;
}

int pql_sym_frames(struct pql_symbolizer *s, uintptr_t pc, const struct pql_frame **out, int max)
{
    struct cached *c = lookup(s, pc);
    int n = 0;
    for (int i = 0; c && i < c->ninl && n < max; i++)
        out[n++] = &c->inl[i];
    if (c && n < max)
        out[n++] = &c->f;
    return n;
}

void pql_sym_close(struct pql_symbolizer *s)
{
    if (!s)
        return;
    struct cached *c, *tmp;
    HASH_ITER(hh, s->cache, c, tmp)
    {
        HASH_DEL(s->cache, c);
        for (int i = 0; i < c->ninl; i++) {
            free((char *)c->inl[i].function);
            free((char *)c->inl[i].file);
        }
        free(c->inl);
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
    shared->demangle_looked = false;
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
