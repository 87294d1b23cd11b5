/* The running test's name (testname.h): PYTEST_CURRENT_TEST read with getenv (libpq reads its PG*
 * variables the same way on every connect, so a concurrent setenv is no new risk), copied once into an
 * open-addressing table of pointers. Insertion is one compare-and-swap on a slot, lookups are atomic
 * loads: no lock, so the exit report may read names even from a signal handler, and fork needs no
 * handler (a slot is either published or still empty). Any application thread. */
#define _GNU_SOURCE
#include "testname.h"

#include "appframes.h"
#include "proc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A power of two below 65536 (ids are 16 bits). A suite rarely has this many test phases that connect;
 * past it, or past PROBES collisions, new names get no id. */
#define SLOTS  PQL_TESTNAME_MAX
#define PROBES 64

static _Atomic(char *) slots[SLOTS];
static struct pql_once once = PQL_ONCE_INIT;
static bool enabled;

/* Only a Python process, or one started with the variable set (a program run by a test), can have a
 * test name: any other process pays one flag check per connect. */
static void decide(void)
{
    enabled = getenv(PQL_TESTNAME_VAR) || (pql_runtimes_loaded() & (1u << PQL_RUNTIME_PYTHON));
}

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The name as kept: s cut to fit PQL_TESTNAME_LEN, ending in "..." at a UTF-8 character boundary, with
 * '?' for control characters (a line break would forge a line of the text report). */
static void kept_name(char key[PQL_TESTNAME_LEN], const char *s)
{
    size_t n = strnlen(s, PQL_TESTNAME_LEN);
    if (n < PQL_TESTNAME_LEN) {
        memcpy(key, s, n + 1);
    } else {
        n = PQL_TESTNAME_LEN - 4;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] would start the dropped part: never leave half a character */
        memcpy(key, s, n);
        memcpy(key + n, "...", 4);
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
            key[i] = '?';
}

/* Finds name or adds a copy; 0 when the table is full or memory ran out. */
static uint16_t intern(const char *name)
{
    char key[PQL_TESTNAME_LEN];
    kept_name(key, name);
    uint32_t h = hash(key, strlen(key));
    char *mine = NULL;
    for (uint32_t p = 0; p < PROBES; p++) {
        uint32_t i = (h + p) & (SLOTS - 1);
        if (i == 0)
            continue; /* id 0 means none */
        char *s = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (!s) {
            if (!mine && !(mine = strdup(key)))
                return 0;
            if (atomic_compare_exchange_strong_explicit(&slots[i], &s, mine, memory_order_acq_rel,
                                                        memory_order_acquire))
                return (uint16_t)i;
            /* Another thread took the slot first: s is now its name. */
        }
        if (strcmp(s, key) == 0) {
            free(mine);
            return (uint16_t)i;
        }
    }
    free(mine);
    return 0;
}

/* Out of line: intern's frame (a name's copy) is set up only where a test runner may be. */
static __attribute__((noinline)) uint16_t now(void)
{
    const char *name = getenv(PQL_TESTNAME_VAR);
    return name && *name ? intern(name) : 0;
}

uint16_t pql_testname_now(void)
{
    pql_once(&once, decide);
    return enabled ? now() : 0;
}

const char *pql_testname(uint16_t id)
{
    return id && id < SLOTS ? atomic_load_explicit(&slots[id], memory_order_acquire) : NULL;
}
