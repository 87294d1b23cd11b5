/* Loading and validating pqleak/1 reports (reportio.h). Validation walks the whole document first
 * (check_*), then merging walks it again trusting it (add_*), so a bad file adds nothing.
 * Command-line process only. */
#include "reportio.h"

#include "findings.h"
#include "names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- directories ---- */

static char *snap_id(const char *name, const struct stat *st)
{
    return cli_xasprintf("%s/%llu/%lld.%09ld", name, (unsigned long long)st->st_ino,
                         (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

/* Any *.json file not hidden: saved and merged reports may have any name; the shim's temp files
 * (PQL_TEMP_PREFIX) start with '.'. */
static bool is_report_name(const char *name)
{
    return name[0] != '.' && fnmatch("*" PQL_REPORT_SUFFIX, name, FNM_PERIOD) == 0;
}

static int by_version(const void *a, const void *b)
{
    /* Version order puts pqleak-99-... before pqleak-100-...: reports come out in pid order. */
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* Calls fn for every report file in dir; false when dir cannot be opened. */
static bool scan_dir(const char *dir,
                     void (*fn)(void *ctx, const char *path, const char *name, const struct stat *st),
                     void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_report_name(e->d_name))
            continue;
        char *path = cli_xasprintf("%s/%s", dir, e->d_name);
        /* lstat: a link is listed as itself, and loading refuses it (cli_report_load_listed): a name
         * planted in a report directory by someone else is never followed, and fails the read; so does
         * a FIFO or a device. Subdirectories are not reports. */
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
            fn(ctx, path, e->d_name, &st);
        free(path);
    }
    closedir(d);
    return true;
}

static void snap_one(void *ctx, const char *path, const char *name, const struct stat *st)
{
    (void)path;
    cli_vec_push(&((struct cli_dirsnap *)ctx)->ids, snap_id(name, st));
}

void cli_dirsnap_take(struct cli_dirsnap *snap, const char *dir)
{
    scan_dir(dir, snap_one, snap);
}

void cli_dirsnap_free(struct cli_dirsnap *snap)
{
    for (size_t i = 0; i < snap->ids.n; i++)
        free(snap->ids.v[i]);
    cli_vec_free(&snap->ids);
}

struct list_ctx {
    const struct cli_dirsnap *skip;
    struct cli_vec names;
};

static void list_one(void *ctx, const char *path, const char *name, const struct stat *st)
{
    (void)path;
    struct list_ctx *c = ctx;
    if (c->skip) {
        char *id = snap_id(name, st);
        bool old = false;
        for (size_t i = 0; i < c->skip->ids.n && !old; i++)
            old = strcmp(c->skip->ids.v[i], id) == 0;
        free(id);
        if (old)
            return;
    }
    cli_vec_push(&c->names, cli_xstrdup(name));
}

bool cli_report_list_dir(const char *dir, const struct cli_dirsnap *skip, struct cli_vec *paths)
{
    struct list_ctx c = {.skip = skip};
    if (!scan_dir(dir, list_one, &c)) {
        cli_err("%s: cannot read directory: %s", dir, strerror(errno));
        return false;
    }
    if (c.names.n)
        qsort(c.names.v, c.names.n, sizeof *c.names.v, by_version);
    size_t dl = strlen(dir);
    for (size_t i = 0; i < c.names.n; i++) {
        bool slash = dl && dir[dl - 1] == '/';
        cli_vec_push(paths, cli_xasprintf("%s%s%s", dir, slash ? "" : "/", (char *)c.names.v[i]));
        free(c.names.v[i]);
    }
    cli_vec_free(&c.names);
    return true;
}

/* ---- validation ---- */

/* What is wrong with a document; set once, by the first check that fails. */
struct verdict {
    char msg[512];
    bool bad;
    bool corrupt; /* a pqleak report, but damaged */
};

static bool fail(struct verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct verdict *v, const char *fmt, ...)
{
    if (!v->bad) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->msg, sizeof v->msg, fmt, ap);
        va_end(ap);
        v->bad = true;
    }
    return false;
}

/* Unknown values are null, never missing (docs/report-schema.md); this reader also takes missing as null so
 * that only wrong types fail. */
static bool opt_string(const json_t *obj, const char *name)
{
    const json_t *x = json_object_get(obj, name);
    return !x || json_is_null(x) || json_is_string(x);
}

static bool opt_integer(const json_t *obj, const char *name)
{
    const json_t *x = json_object_get(obj, name);
    return !x || json_is_null(x) || json_is_integer(x);
}

static bool check_stack_ref(const json_t *obj, const char *name, const json_t *stacks, const char *what,
                            struct verdict *v)
{
    const json_t *x = json_object_get(obj, name);
    switch (cli_stack_ref(stacks, obj, name, NULL)) {
    case CLI_STACK_NOT_ID:
        return fail(v, "%s: \"%s\" is not a stack id", what, name);
    case CLI_STACK_UNKNOWN:
        return fail(v, "%s refers to stack %lld, which is not in \"stacks\"", what,
                    (long long)json_integer_value(x));
    default:
        return true;
    }
}

static bool check_stacks(const json_t *stacks, struct verdict *v)
{
    if (!stacks || json_is_null(stacks))
        return true;
    if (!json_is_object(stacks))
        return fail(v, "\"stacks\" is not an object");
    for (void *it = json_object_iter((json_t *)stacks); it;
         it = json_object_iter_next((json_t *)stacks, it)) {
        const char *id = json_object_iter_key(it);
        const json_t *frames = json_object_iter_value(it);
        if (!json_is_array(frames))
            return fail(v, "stack %s is not a list of frames", id);
        for (size_t i = 0; i < json_array_size(frames); i++) {
            const json_t *f = json_array_get(frames, i);
            const json_t *off = json_object_get(f, PQL_F_OFFSET);
            if (!json_is_object(f) || !opt_string(f, PQL_F_FUNCTION) || !opt_string(f, PQL_F_FILE) ||
                !opt_integer(f, PQL_F_LINE) || !opt_string(f, PQL_F_MODULE) || !opt_string(f, PQL_F_LANG) ||
                (off && !json_is_null(off) && !json_is_string(off) && !json_is_integer(off)))
                return fail(v, "stack %s, frame %zu is malformed", id, i);
        }
    }
    return true;
}

static bool check_proc_list(const json_t *list, const char *what, struct verdict *v)
{
    if (!json_is_array(list))
        return fail(v, "%s: \"processes\" is not a list", what);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *p = json_array_get(list, i);
        if (json_is_integer(p))
            continue;
        if (!json_is_object(p) || !opt_string(p, PQL_F_PROGRAM) || !opt_integer(p, PQL_F_PID))
            return fail(v, "%s: process %zu is malformed", what, i);
    }
    return true;
}

/* Item i of a list, named "NOUN i" in what (len bytes) for messages; NULL after fail when it is no
 * object. */
static const json_t *list_object(const json_t *list, size_t i, const char *noun, char *what, size_t len,
                                 struct verdict *v)
{
    const json_t *x = json_array_get(list, i);
    snprintf(what, len, "%s %zu", noun, i);
    if (!json_is_object(x)) {
        fail(v, "%s is not an object", what);
        return NULL;
    }
    return x;
}

/* Fills conns (id -> connection object, borrowed) while checking the "connections" list. */
static bool check_connections(const json_t *list, const json_t *stacks, json_t *conns, struct verdict *v)
{
    if (!list || json_is_null(list))
        return true;
    if (!json_is_array(list))
        return fail(v, "\"connections\" is not a list");
    for (size_t i = 0; i < json_array_size(list); i++) {
        char what[64];
        const json_t *c = list_object(list, i, "connection", what, sizeof what, v);
        if (!c)
            return false;
        const json_t *id = json_object_get(c, PQL_F_ID);
        if (!json_is_integer(id))
            return fail(v, "%s has no integer \"id\"", what);
        const json_t *t = json_object_get(c, PQL_F_TARGET);
        if (t && !json_is_null(t) && !json_is_object(t))
            return fail(v, "%s: \"target\" is not an object", what);
        if (!check_stack_ref(c, PQL_F_STACK, stacks, what, v) ||
            !check_stack_ref(c, PQL_F_TX_STACK, stacks, what, v) || !opt_integer(c, PQL_F_PID) ||
            !opt_string(c, PQL_F_PROGRAM))
            return fail(v, "%s is malformed", what);
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
        if (json_object_get(conns, key))
            return fail(v, "connection id %s appears twice", key);
        json_object_set(conns, key, (json_t *)c);
    }
    return true;
}

static bool check_leaks(const json_t *leaks, const json_t *stacks, bool merged, struct verdict *v)
{
    if (!json_is_array(leaks))
        return fail(v, "\"leaks\" is missing or not a list");
    for (size_t i = 0; i < json_array_size(leaks); i++) {
        char what[64];
        const json_t *l = list_object(leaks, i, "leak", what, sizeof what, v);
        if (!l)
            return false;
        /* A null stack is one the shim could not capture: the leak still counts. */
        if (!json_object_get(l, PQL_F_STACK))
            return fail(v, "%s has no \"stack\"", what);
        if (!check_stack_ref(l, PQL_F_STACK, stacks, what, v) ||
            !check_stack_ref(l, PQL_F_TX_STACK, stacks, what, v))
            return false;
        const json_t *count = json_object_get(l, PQL_F_COUNT);
        if (!json_is_integer(count) || json_integer_value(count) < 0)
            return fail(v, "%s has no valid \"count\"", what);
        const char *kind = json_string_value(json_object_get(l, PQL_F_KIND));
        if (!kind || !*kind)
            return fail(v, "%s has no \"kind\"", what);
        const json_t *sup = json_object_get(l, PQL_F_SUPPRESSED);
        if (sup && !json_is_null(sup) && !json_is_boolean(sup))
            return fail(v, "%s: \"suppressed\" is not true or false", what);
        if (!opt_string(l, PQL_F_RULE))
            return fail(v, "%s: \"rule\" is not a string", what);
        const json_t *ids = json_object_get(l, PQL_F_CONNECTIONS);
        if (ids && !json_is_null(ids)) {
            if (!json_is_array(ids))
                return fail(v, "%s: \"connections\" is not a list", what);
            for (size_t j = 0; j < json_array_size(ids); j++) {
                if (!json_is_integer(json_array_get(ids, j)))
                    return fail(v, "%s: connection %zu is not an id", what, j);
            }
        }
        if (merged && !check_proc_list(json_object_get(l, PQL_F_PROCESSES), what, v))
            return false;
    }
    return true;
}

static const char *const triggers[] = {PQL_TRIGGER_EXIT, PQL_TRIGGER_SIGNAL, PQL_TRIGGER_SUSPECT,
                                       PQL_TRIGGER_REQUEST, PQL_TRIGGER_MERGED};

/* Checks root; on success fills conns with the id -> connection map. */
static bool check_report(const json_t *root, json_t *conns, struct verdict *v)
{
    if (!json_is_object(root))
        return fail(v, "not a pqleak report (not a JSON object)");
    const json_t *schema = json_object_get(root, PQL_F_SCHEMA);
    if (!schema)
        return fail(v, "not a pqleak report (no \"schema\")");
    if (!json_is_string(schema) || strcmp(json_string_value(schema), PQL_SCHEMA) != 0) {
        char *s = json_dumps(schema, JSON_ENCODE_ANY);
        fail(v, "not a pqleak report (schema %.100s, expected \"" PQL_SCHEMA "\")", s ? s : "?");
        free(s);
        return false;
    }
    const char *trigger = json_string_value(json_object_get(root, PQL_F_TRIGGER));
    bool known = false;
    for (size_t i = 0; trigger && i < sizeof triggers / sizeof triggers[0]; i++)
        known = known || strcmp(trigger, triggers[i]) == 0;
    if (!known)
        return fail(v, "corrupt report (missing or unknown \"trigger\")");
    bool merged = strcmp(trigger, PQL_TRIGGER_MERGED) == 0;
    if (!opt_integer(root, PQL_F_PID) || !opt_string(root, PQL_F_PROGRAM) || !opt_string(root, PQL_F_TIME))
        return fail(v, "corrupt report (bad \"pid\", \"program\" or \"time\")");
    const json_t *u = json_object_get(root, PQL_F_UTILIZATION);
    const json_t *set = json_object_get(root, PQL_F_SETTINGS);
    if ((u && !json_is_null(u) && !json_is_object(u)) || (set && !json_is_null(set) && !json_is_object(set)))
        return fail(v, "corrupt report (\"utilization\" or \"settings\" is not an object)");
    const json_t *stacks = json_object_get(root, PQL_F_STACKS);
    if (!check_stacks(stacks, v) ||
        !check_connections(json_object_get(root, PQL_F_CONNECTIONS), stacks, conns, v))
        goto corrupt;
    if (merged && !check_proc_list(json_object_get(root, PQL_F_PROCESSES), "report", v))
        goto corrupt;
    /* Exit reports always carry "leaks", even empty: without it this is not a whole report. */
    const json_t *leaks = json_object_get(root, PQL_F_LEAKS);
    if (strcmp(trigger, PQL_TRIGGER_EXIT) == 0 || merged || (leaks && !json_is_null(leaks)))
        if (!check_leaks(leaks, stacks, merged, v))
            goto corrupt;
    /* issue 12: site, site_from, last_stack, misuse (findings.c) */
    char fmsg[256];
    if (!cli_findings_check(root, fmsg, sizeof fmsg)) {
        fail(v, "%s", fmsg);
        goto corrupt;
    }
    return true;
corrupt:
    v->corrupt = true;
    return false;
}

/* ---- merging a validated report ---- */

static long pid_of(const json_t *obj)
{
    const json_t *p = json_object_get(obj, PQL_F_PID);
    return json_is_integer(p) ? (long)json_integer_value(p) : -1;
}

static const struct cli_proc *proc_from(struct cli_set *set, const json_t *p)
{
    if (json_is_integer(p))
        return cli_set_proc(set, NULL, (long)json_integer_value(p));
    const char *program = json_string_value(json_object_get(p, PQL_F_PROGRAM));
    return cli_set_proc(set, program, pid_of(p));
}

static struct cli_conn *make_conn(struct cli_set *set, const json_t *obj, const json_t *stacks,
                                  const struct cli_proc *proc)
{
    struct cli_conn *c = cli_xcalloc(1, sizeof *c);
    c->obj = json_deep_copy(obj);
    c->has_stack = cli_stack_from_report(stacks, obj, PQL_F_STACK, &c->stack);
    c->has_tx = cli_stack_from_report(stacks, obj, PQL_F_TX_STACK, &c->tx);
    c->has_last = cli_stack_from_report(stacks, obj, PQL_F_LAST_STACK, &c->last); /* issue 12 */
    /* A merged report names each connection's process in the connection itself. */
    if (json_object_get(obj, PQL_F_PID) || json_object_get(obj, PQL_F_PROGRAM))
        proc = cli_set_proc(set, json_string_value(json_object_get(obj, PQL_F_PROGRAM)), pid_of(obj));
    c->proc = proc;
    static const char *const renumbered[] = {PQL_F_ID,  PQL_F_STACK,   PQL_F_TX_STACK,
                                             PQL_F_PID, PQL_F_PROGRAM, PQL_F_LAST_STACK};
    for (size_t i = 0; i < sizeof renumbered / sizeof renumbered[0]; i++)
        json_object_del(c->obj, renumbered[i]);
    return c;
}

static void add_leak(struct cli_set *set, const json_t *l, const json_t *stacks, const json_t *conns,
                     const struct cli_proc *self)
{
    struct cli_stack stack, tx;
    cli_stack_from_report(stacks, l, PQL_F_STACK, &stack);
    bool has_tx = cli_stack_from_report(stacks, l, PQL_F_TX_STACK, &tx);

    struct cli_vec procs = {0};
    if (self)
        cli_vec_push(&procs, (void *)self);
    else {
        const json_t *list = json_object_get(l, PQL_F_PROCESSES);
        for (size_t i = 0; i < json_array_size(list); i++)
            cli_vec_push(&procs, (void *)proc_from(set, json_array_get(list, i)));
    }

    struct cli_vec cv = {0};
    const json_t *ids = json_object_get(l, PQL_F_CONNECTIONS);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_array_get(ids, i)));
        const json_t *obj = json_object_get(conns, key);
        /* A leak may name a connection the report did not list; its count still stands. */
        if (obj)
            cli_vec_push(&cv, make_conn(set, obj, stacks, self));
    }

    const char *kind = json_string_value(json_object_get(l, PQL_F_KIND));
    long count = (long)json_integer_value(json_object_get(l, PQL_F_COUNT));
    bool sup = json_is_true(json_object_get(l, PQL_F_SUPPRESSED));
    const char *rule = json_string_value(json_object_get(l, PQL_F_RULE));
    cli_set_add_leak(set, &stack, has_tx ? &tx : NULL, kind, count, sup, rule,
                     (const struct cli_proc *const *)procs.v, procs.n, (struct cli_conn **)cv.v, cv.n);
    cli_vec_free(&cv);
    cli_vec_free(&procs);
    cli_stack_free(&stack);
    cli_stack_free(&tx);
}

static void add_report(struct cli_set *set, const json_t *root, const json_t *conns, const char *path)
{
    const char *trigger = json_string_value(json_object_get(root, PQL_F_TRIGGER));
    bool merged = strcmp(trigger, PQL_TRIGGER_MERGED) == 0;
    bool is_exit = strcmp(trigger, PQL_TRIGGER_EXIT) == 0;
    const struct cli_proc *self = NULL;
    char *who;
    if (merged) {
        const json_t *list = json_object_get(root, PQL_F_PROCESSES);
        for (size_t i = 0; i < json_array_size(list); i++)
            proc_from(set, json_array_get(list, i));
        who = cli_xasprintf("merged %s", path);
    } else {
        self = cli_set_proc(set, json_string_value(json_object_get(root, PQL_F_PROGRAM)), pid_of(root));
        who = cli_xstrdup(self->key);
    }
    set->reports++;
    cli_set_add_util(set, who, merged || is_exit ? 1 : 0,
                     json_string_value(json_object_get(root, PQL_F_TIME)),
                     json_object_get(root, PQL_F_UTILIZATION));
    free(who);
    cli_set_add_settings(set, json_object_get(root, PQL_F_SETTINGS));
    /* Only final reports count leaks: a live report's open connections may yet be closed, and its
     * process writes an exit report later. */
    if (!merged && !is_exit)
        return;
    const json_t *stacks = json_object_get(root, PQL_F_STACKS);
    const json_t *leaks = json_object_get(root, PQL_F_LEAKS);
    for (size_t i = 0; i < json_array_size(leaks); i++)
        add_leak(set, json_array_get(leaks, i), stacks, conns, self);
    cli_findings_add(set, root, self); /* issue 12: sites and misuse */
}

/* Opens a report for reading without blocking on a FIFO or a device, and only if it is a regular file
 * (a link, too, when nofollow). Returns a stream, or NULL after printing one line. */
static FILE *open_report(const char *path, bool nofollow)
{
    int fd;
    do
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (nofollow && errno == ELOOP)
            cli_err("%s: a symbolic link in a report directory, not followed", path);
        else
            cli_err("%s: cannot read report: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        if (S_ISDIR(st.st_mode))
            cli_err("%s: is a directory", path);
        else if (st.st_mode)
            cli_err("%s: not a regular file (a FIFO, socket or device is never read)", path);
        else
            cli_err("%s: cannot read report: %s", path, strerror(e));
        return NULL;
    }
    if (st.st_size == 0) {
        close(fd);
        cli_err("%s: empty file, not a pqleak report", path);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *fp = fdopen(fd, "r");
    if (!fp) {
        cli_err("%s: cannot read report: %s", path, strerror(errno));
        close(fd);
    }
    return fp;
}

static bool load(struct cli_set *set, const char *path, bool nofollow)
{
    FILE *fp = open_report(path, nofollow);
    if (!fp)
        return false;
    json_error_t jerr;
    json_t *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
    bool read_error = ferror(fp);
    fclose(fp);
    if (!root) {
        if (read_error)
            cli_err("%s: cannot read report: %s", path, strerror(errno));
        else
            cli_err("%s: not valid JSON, truncated or corrupt (line %d: %s)", path, jerr.line, jerr.text);
        return false;
    }
    json_t *conns = json_object();
    struct verdict v = {0};
    bool ok = check_report(root, conns, &v);
    if (ok)
        add_report(set, root, conns, path);
    else if (v.corrupt)
        cli_err("%s: corrupt report (%s)", path, v.msg);
    else
        cli_err("%s: %s", path, v.msg);
    json_decref(conns);
    json_decref(root);
    return ok;
}

bool cli_report_load(struct cli_set *set, const char *path)
{
    return load(set, path, false);
}

bool cli_report_load_listed(struct cli_set *set, const char *path)
{
    return load(set, path, true);
}

bool cli_report_check(const json_t *root, char *msg, size_t len)
{
    json_t *conns = json_object();
    if (!conns)
        cli_oom();
    struct verdict v = {0};
    bool ok = check_report(root, conns, &v);
    json_decref(conns);
    if (!ok)
        snprintf(msg, len, v.corrupt ? "corrupt report (%s)" : "%s", v.msg);
    return ok;
}

size_t cli_report_load_paths(struct cli_set *set, char *const *paths)
{
    size_t bad = 0;
    for (size_t i = 0; paths[i]; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            cli_err("%s: cannot read: %s", paths[i], strerror(errno));
            bad++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += !cli_report_load(set, paths[i]);
            continue;
        }
        struct cli_vec files = {0};
        if (!cli_report_list_dir(paths[i], NULL, &files)) {
            bad++;
            continue;
        }
        /* As for `pqleak run` of a command that never connected (docs/exit-codes.md): no report is
         * no leak, said on stderr. A path that does not exist (a typo) is still an error, above. */
        if (files.n == 0)
            cli_err("%s: no reports in this directory (no *.json files): no process opened a PostgreSQL "
                    "connection",
                    paths[i]);
        for (size_t j = 0; j < files.n; j++) {
            bad += !cli_report_load_listed(set, files.v[j]);
            free(files.v[j]);
        }
        cli_vec_free(&files);
    }
    return bad;
}
