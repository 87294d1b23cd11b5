/* The table of application frames shared by the runtimes' readers: one entry per call site (a
 * runtime's code object and position), with copies of its strings, found by key at capture and by id
 * at report time. Any application thread; the readers take its lock around their interning. */
#define _GNU_SOURCE
#include "appframes.h"
#include "appreaders.h"
#include "dlhook.h"

#include <dlfcn.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM      1
#define uthash_nonfatal_oom(e) (table_oom = true)
static bool table_oom;
/* Keys are four words (struct pql_app_key): mixed as words, far cheaper than uthash's byte-wise hash on
 * the capture path (one lookup per interpreted frame). */
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = key_hash((const struct pql_app_key *)(keyptr)))
static unsigned key_hash(const struct pql_app_key *k)
{
    uint64_t h = k->lang * 0x9e3779b97f4a7c15u;
    h = (h ^ k->k1) * 0xff51afd7ed558ccdu;
    h = (h ^ k->k2) * 0xc4ceb9fe1a85ec53u;
    h = (h ^ k->ident) * 0xff51afd7ed558ccdu;
    return (unsigned)(h ^ (h >> 32));
}
#include <uthash.h>

struct appframe {
    struct pql_app_key key;
    uint32_t id;
    int line;
    enum pql_app_lang lang;
    char *function, *file;
    UT_hash_handle hh;
};

static const char *const lang_names[] = {"python", "perl", "ruby", "php"};

/* The per-thread site cache (appreaders.h). */
__thread struct pql_app_site_cache *pql_app_site_cache __attribute__((tls_model("initial-exec")));
static pthread_key_t site_cache_key; /* its destructor frees a thread's cache */
static bool site_cache_ok;

/* The key's destructor, in the ending thread: a capture from a later destructor allocates anew. */
static void free_site_cache(void *c)
{
    pql_app_site_cache = NULL;
    free(c);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct appframe *by_key;
static struct appframe **by_id;
static uint32_t count, cap;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool want_python;
static bool readers_on; /* a reader may merge frames (Perl's and PHP's are taken to, when loaded) */

/* Another parent thread may have held the table's lock (a thread connecting without its runtime's
 * lock while another one forks): the child resets it. */
static void fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
}

static pthread_once_t loaded_once = PTHREAD_ONCE_INIT;
static unsigned loaded;

/* A symbol every supported version of each runtime exports, from its executable or its library. */
static void find_loaded(void)
{
    static const char *const probes[] = {[PQL_RUNTIME_PYTHON] = "Py_IsInitialized",
                                         [PQL_RUNTIME_PERL] = "perl_destruct",
                                         [PQL_RUNTIME_RUBY] = "ruby_run_node",
                                         [PQL_RUNTIME_PHP] = "get_zend_version"};
    for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
        if (pql_dlsym(RTLD_DEFAULT, probes[i]))
            loaded |= 1u << i;
}

unsigned pql_runtimes_loaded(void)
{
    pthread_once(&loaded_once, find_loaded);
    return loaded;
}

static void setup(void)
{
    pthread_atfork(NULL, NULL, fork_child);
    site_cache_ok = pthread_key_create(&site_cache_key, free_site_cache) == 0;
    unsigned rt = pql_runtimes_loaded(); /* each reader looks up several symbols: only its runtime's */
    bool on = false;
    if (rt & (1u << PQL_RUNTIME_PYTHON)) { /* off: no frames, but the finalizer gate still reads the state */
        on |= pql_python311_setup(want_python);
        on |= pql_python312_setup(want_python);
        on |= pql_python313_setup(want_python);
    }
    if (rt & (1u << PQL_RUNTIME_PERL)) {
        pql_perl_setup();
        on = true;
    }
    if (rt & (1u << PQL_RUNTIME_RUBY))
        on |= pql_ruby_setup();
    if (rt & (1u << PQL_RUNTIME_PHP)) {
        pql_php_setup();
        on = true;
    }
    readers_on = on;
}

void pql_app_setup(bool python)
{
    want_python = python;
    pthread_once(&once, setup);
}

bool pql_app_readers_on(void)
{
    return readers_on;
}

void pql_app_lock(void)
{
    pthread_mutex_lock(&lock);
}

void pql_app_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

int pql_app_first_in(const uintptr_t *frames, int n, uintptr_t lo, uintptr_t hi)
{
    int k = 0;
    while (k < n && !(frames[k] - 1 >= lo && frames[k] - 1 < hi))
        k++;
    return k;
}

void pql_app_remember(const struct pql_app_key *key, uint32_t id)
{
    struct pql_app_site_cache *c = pql_app_site_cache;
    if (!c && site_cache_ok && id) {
        c = calloc(1, sizeof(*c));
        if (c && pthread_setspecific(site_cache_key, c) != 0) {
            free(c);
            c = NULL;
        }
        pql_app_site_cache = c;
    }
    if (!c || !id)
        return;
    unsigned i = pql_app_site_slot(key);
    c->key[i] = *key;
    c->id[i] = id;
}

uint32_t pql_app_find(const struct pql_app_key *key)
{
    struct appframe *f;
    HASH_FIND(hh, by_key, key, sizeof(*key), f);
    return f ? f->id : 0;
}

uint32_t pql_app_add(const struct pql_app_key *key, const char *function, const char *file, int line)
{
    if (count == cap) {
        uint32_t ncap = cap ? 2 * cap : 256;
        struct appframe **v = realloc(by_id, ncap * sizeof(*v));
        if (!v)
            return 0;
        by_id = v;
        cap = ncap;
    }
    struct appframe *f = calloc(1, sizeof(*f));
    if (!f || !(f->function = strdup(function)) || !(f->file = strdup(file))) {
        if (f)
            free(f->function);
        free(f);
        return 0;
    }
    f->key = *key;
    f->lang = (enum pql_app_lang)key->lang;
    f->line = line;
    table_oom = false;
    HASH_ADD(hh, by_key, key, sizeof(f->key), f);
    if (table_oom) {
        free(f->function);
        free(f->file);
        free(f);
        return 0;
    }
    f->id = ++count;
    by_id[f->id - 1] = f;
    return f->id;
}

/* Out of line: the check above it is all a C program's capture runs, without this one's frame. */
static __attribute__((noinline)) int merge(uintptr_t *frames, int n, int max)
{
    int m = pql_python311_merge(frames, n, max);
    if (m == n)
        m = pql_python312_merge(frames, n, max);
    if (m == n)
        m = pql_python313_merge(frames, n, max);
    if (m == n)
        m = pql_perl_merge(frames, n, max);
    if (m == n)
        m = pql_ruby_merge(frames, n, max);
    if (m == n)
        m = pql_php_merge(frames, n, max);
    return m;
}

int pql_app_merge(uintptr_t *frames, int n, int max)
{
    if (!loaded) /* no runtime, no reader enabled: a C program's capture asks none of them */
        return n;
    return merge(frames, n, max);
}

bool pql_app_python_may_finalize(void)
{
    int r = pql_python311_may_finalize();
    if (r < 0)
        r = pql_python312_may_finalize();
    if (r < 0)
        r = pql_python313_may_finalize();
    return r != 0;
}

bool pql_app_perl_may_tear_down(void)
{
    return pql_perl_may_tear_down() != 0;
}

bool pql_app_php_may_shut_down(void)
{
    return pql_php_in_shutdown() != 0;
}

bool pql_app_perl_in_main_scope(void)
{
    return pql_perl_in_main_scope() > 0;
}

bool pql_app_frame(uintptr_t entry, const char **lang, const char **function, const char **file, int *line)
{
    uint32_t id = (uint32_t)(entry & ~PQL_APPFRAME_TAG);
    bool ok = false;
    pthread_mutex_lock(&lock);
    if (id >= 1 && id <= count) {
        const struct appframe *f = by_id[id - 1];
        *lang = lang_names[f->lang];
        *function = f->function;
        *file = f->file;
        *line = f->line;
        ok = true;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}
