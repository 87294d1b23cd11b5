/* What the runtimes' frame readers share with appframes.c, and nothing else includes: the table of
 * interned frames (appframes.c) and each reader's setup and merge. */
#ifndef PQL_APPREADERS_H
#define PQL_APPREADERS_H

#include <stdbool.h>
#include <stdint.h>

enum pql_app_lang { PQL_LANG_PYTHON, PQL_LANG_PERL, PQL_LANG_RUBY, PQL_LANG_PHP };

/* The table's lock, held by a reader around its calls to pql_app_intern. */
void pql_app_lock(void);
void pql_app_unlock(void);

/* A call site: the runtime's code object and position (k1, k2), and ident, the addresses of the strings
 * the site's function and file names are read from: a freed object's address reused by another is
 * another key, with no string compared on the capture path. */
struct pql_app_key {
    uint64_t lang, k1, k2, ident;
};

/* Per thread, the call sites it met lately, direct-mapped: a capture finds most of its frames there,
 * without the table's lock or hash (a web worker captures the same handler's frames transaction after
 * transaction). Allocated at the thread's first capture, freed when the thread ends; an id stays valid
 * for good (sites are never removed). */
#define PQL_APP_SITE_CACHE 64
struct pql_app_site_cache {
    struct pql_app_key key[PQL_APP_SITE_CACHE];
    uint32_t id[PQL_APP_SITE_CACHE];
};
extern __thread struct pql_app_site_cache *pql_app_site_cache
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline unsigned pql_app_site_slot(const struct pql_app_key *k)
{
    return (unsigned)(((k->k1 >> 4) ^ (k->k2 * 0x9e3779b1u)) & (PQL_APP_SITE_CACHE - 1));
}

/* The id of a site this thread met lately, or 0: a lookup without the lock, tried first. Inline: every
 * frame of every capture asks. */
static inline uint32_t pql_app_cached(const struct pql_app_key *key)
{
    const struct pql_app_site_cache *c = pql_app_site_cache;
    if (!c)
        return 0;
    unsigned i = pql_app_site_slot(key);
    const struct pql_app_key *k = &c->key[i];
    bool same = k->k1 == key->k1 && k->k2 == key->k2 && k->ident == key->ident && k->lang == key->lang;
    return same ? c->id[i] : 0;
}

/* Remembers a site's id (from pql_app_find or pql_app_add) for this thread's pql_app_cached. */
void pql_app_remember(const struct pql_app_key *key, uint32_t id);

/* The id of a site interned before; 0 when it is new. Lock held. */
uint32_t pql_app_find(const struct pql_app_key *key);

/* Interns a new site with copies of function and file and its line; its id, 0 on out of memory. Lock
 * held. */
uint32_t pql_app_add(const struct pql_app_key *key, const char *function, const char *file, int line);

/* Index of the first of frames[0..n) inside [lo, hi) (return addresses, so pc - 1 is tested); n when
 * none is: the stack was not called from that interpreter. */
int pql_app_first_in(const uintptr_t *frames, int n, uintptr_t lo, uintptr_t hi);

/* Each reader: setup finds its runtime (idempotent, called once by pql_app_setup; Python's and Ruby's
 * return whether they read frames); merge is as pql_app_merge for its runtime, returning n untouched
 * when its runtime is absent or not calling. */
bool pql_python311_setup(bool on);
int pql_python311_merge(uintptr_t *frames, int n, int max);
bool pql_python312_setup(bool on);
int pql_python312_merge(uintptr_t *frames, int n, int max);
bool pql_python313_setup(bool on);
int pql_python313_merge(uintptr_t *frames, int n, int max);
/* Python's setup (whatever its on) also prepares may_finalize, as pql_app_python_may_finalize for its
 * version: -1 when this reader cannot tell (another version, or its thread state unknown here). */
int pql_python311_may_finalize(void);
int pql_python312_may_finalize(void);
int pql_python313_may_finalize(void);
void pql_perl_setup(void);
int pql_perl_merge(uintptr_t *frames, int n, int max);
/* As pql_app_perl_in_main_scope and pql_app_perl_may_tear_down; -1 when this build cannot read that
 * Perl's state. */
int pql_perl_in_main_scope(void);
int pql_perl_may_tear_down(void);
bool pql_ruby_setup(void);
int pql_ruby_merge(uintptr_t *frames, int n, int max);
void pql_php_setup(void);
int pql_php_merge(uintptr_t *frames, int n, int max);
/* As pql_app_php_may_shut_down; -1 when this build cannot read that PHP's state. */
int pql_php_in_shutdown(void);

#endif
