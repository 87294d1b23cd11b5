/* Frame classification (frames.h): one table of module names for native frames, one set of path rules
 * for interpreted frames. No allocation, no stdio, no locale: any thread, and signal handlers. */
#include "frames.h"

#include "path.h"

#include <string.h>

static bool prefixed(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Native modules by the start of their file name. "libc-" and "libdl-" (glibc before 2.34 names them
 * libc-2.31.so) need a digit after, so that libc-client.so stays a library of the program's. */
static const struct {
    const char *prefix;
    enum pql_frame_kind kind;
    bool digit; /* a digit must follow the prefix */
} native[] = {
    {"libpq.", PQL_FRAME_LIBPQ, false},      {"libpqleak", PQL_FRAME_SYSTEM, false},
    {"libunwind", PQL_FRAME_SYSTEM, false},  {"libc.", PQL_FRAME_SYSTEM, false},
    {"libc-", PQL_FRAME_SYSTEM, true},       {"ld-linux", PQL_FRAME_SYSTEM, false},
    {"ld.so", PQL_FRAME_SYSTEM, false},      {"ld64.so", PQL_FRAME_SYSTEM, false},
    {"ld-musl", PQL_FRAME_SYSTEM, false},    {"libpthread", PQL_FRAME_SYSTEM, false},
    {"libdl.", PQL_FRAME_SYSTEM, false},     {"libdl-", PQL_FRAME_SYSTEM, true},
    {"libpython", PQL_FRAME_RUNTIME, false}, {"python", PQL_FRAME_RUNTIME, false},
    {"libperl", PQL_FRAME_RUNTIME, false},   {"perl", PQL_FRAME_RUNTIME, false},
    {"libruby", PQL_FRAME_RUNTIME, false},   {"ruby", PQL_FRAME_RUNTIME, false},
    {"libphp", PQL_FRAME_RUNTIME, false},    {"php", PQL_FRAME_RUNTIME, false},
};

static bool native_match(const char *base, size_t i)
{
    size_t n = strlen(native[i].prefix);
    return strncmp(base, native[i].prefix, n) == 0 && (!native[i].digit || is_digit(base[n]));
}

bool pql_module_is_shim(const char *module)
{
    if (!module)
        return false;
    const char *base = pql_base_name(module);
    return prefixed(base, "libpqleak") || prefixed(base, "libunwind");
}

/* Where the name of an installed package starts in file (after "/site-packages/"), or NULL. */
static const char *after_packages(const char *file)
{
    static const char *const dirs[] = {"/site-packages/", "/dist-packages/"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        const char *p = strstr(file, dirs[i]);
        if (p)
            return p + strlen(dirs[i]);
    }
    return NULL;
}

/* The "pythonX.Y" directory of a standard-library path (".../lib/python3.11/threading.py",
 * "/usr/lib/python3/..."): "python", digits and dots, then '/'. NULL when there is none. */
static const char *stdlib_dir(const char *file, size_t *len)
{
    for (const char *p = strstr(file, "/lib/python"); p; p = strstr(p + 1, "/lib/python")) {
        const char *d = p + strlen("/lib/");
        const char *v = d + strlen("python");
        if (!is_digit(*v))
            continue;
        while (is_digit(*v) || *v == '.')
            v++;
        if (*v == '/') {
            *len = (size_t)(v - d);
            return d;
        }
    }
    return NULL;
}

static bool interpreted(const char *lang)
{
    return lang && strcmp(lang, "c") != 0;
}

/* Where the system's packages put interpreted libraries (Debian's layout and the usual others). */
static bool system_script(const char *file)
{
    static const char *const dirs[] = {"/usr/share/perl",
                                       "/usr/lib/x86_64-linux-gnu/perl",
                                       "/usr/lib/perl",
                                       "/usr/local/share/perl",
                                       "/usr/local/lib/x86_64-linux-gnu/perl",
                                       "/usr/lib/ruby/",
                                       "/usr/share/ruby",
                                       "/var/lib/gems/",
                                       "/usr/share/php/",
                                       "/usr/lib/php/"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (prefixed(file, dirs[i]))
            return true;
    return false;
}

/* A shared object in the system's library directories; an executable there (pg_basebackup under
 * /usr/lib/postgresql/15/bin) is a program, not a library. */
static bool system_library(const char *module, const char *base)
{
    static const char *const dirs[] = {"/usr/lib/", "/lib/", "/usr/lib64/", "/lib64/"};
    if (!strstr(base, ".so"))
        return false;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (prefixed(module, dirs[i]))
            return true;
    return false;
}

/* A source file of an installed library's headers: its code inlined into the program (libpqxx's
 * templates, libstdc++'s containers, glibc's fortified wrappers) is the library's, not the program's. */
static bool installed_header(const char *file)
{
    return prefixed(file, "/usr/include/") || prefixed(file, "/usr/local/include/");
}

enum pql_frame_kind pql_frame_classify(const char *function, const char *file, const char *module,
                                       const char *lang)
{
    if (interpreted(lang)) {
        size_t n;
        if (!file || prefixed(file, "<frozen") || after_packages(file) || stdlib_dir(file, &n) ||
            system_script(file))
            return PQL_FRAME_LIBRARY;
        return PQL_FRAME_APP;
    }
    const char *base = module ? pql_base_name(module) : NULL;
    for (size_t i = 0; base && i < sizeof native / sizeof native[0]; i++)
        if (native_match(base, i))
            return native[i].kind;
    if (file && installed_header(file))
        return PQL_FRAME_LIBRARY;
    if (!module)
        return function || file ? PQL_FRAME_APP : PQL_FRAME_SYSTEM;
    return system_library(module, base) ? PQL_FRAME_LIBRARY : PQL_FRAME_APP;
}

int pql_frame_headline(const struct pql_frame_ref *f, size_t n, bool *own)
{
    bool script = false;
    for (size_t i = 0; i < n && !script; i++)
        script = interpreted(f[i].lang);
    int library = -1;
    for (size_t i = 0; i < n; i++) {
        if (script != interpreted(f[i].lang))
            continue;
        enum pql_frame_kind k = pql_frame_classify(f[i].function, f[i].file, f[i].module, f[i].lang);
        if (k == PQL_FRAME_APP) {
            if (own)
                *own = true;
            return (int)i;
        }
        if (k == PQL_FRAME_LIBRARY && library < 0)
            library = (int)i;
    }
    if (own)
        *own = false;
    return library;
}

bool pql_frame_is_test_runner(const char *file)
{
    static const char *const dirs[] = {"/_pytest/", "/pytest/", "/pluggy/", "/unittest/", "/nose2/"};
    if (!file)
        return false;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (strstr(file, dirs[i]))
            return true;
    const char *base = pql_base_name(file);
    bool launcher = prefixed(base, "pytest") || prefixed(base, "py.test");
    return launcher && base - file >= 5 && strncmp(base - 5, "/bin/", 5) == 0;
}

/* Copies n bytes of s into buf as a string, cut to len; returns buf. */
static const char *copy(char *buf, size_t len, const char *s, size_t n)
{
    if (!buf || !len)
        return "?";
    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

const char *pql_frame_origin(const char *file, const char *module, const char *lang, char *buf, size_t len)
{
    if (module)
        return pql_base_name(module);
    if (!file)
        return lang ? lang : "?";
    if (prefixed(file, "<frozen"))
        return "frozen modules";
    const char *pkg = after_packages(file);
    size_t n;
    if (pkg) {
        n = strcspn(pkg, "/");
        /* A top-level module file names itself: "six.py" -> "six". */
        if (!pkg[n] && n > 3 && strcmp(pkg + n - 3, ".py") == 0)
            n -= 3;
        return copy(buf, len, pkg, n);
    }
    const char *std = stdlib_dir(file, &n);
    if (std)
        return copy(buf, len, std, n);
    return pql_base_name(file);
}
