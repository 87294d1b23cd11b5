/* The connection registry: records in an open-addressing table keyed by the masked PGconn pointer,
 * counters, one mutex. Records come from never-freed blocks through a free list, so that a program
 * that connects and closes again and again allocates nothing per connection. Called from interposers on
 * application threads and from report writers; never from a signal handler. Out of memory loses a
 * record (counted), never the application's call. */
#include "registry.h"

#include "proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entry {
    uintptr_t key;
    struct pql_live *live;   /* kept on the free list, started again for the entry's next record */
    struct entry *next_free; /* on the free list */
    struct pql_conn rec;
};

/* Lock-free hints from PGconn to live state for the query path: 1024 sets of 4 ways, so that a few
 * connections hashing alike do not keep evicting each other (that would send every query call to the
 * lock). A wrong or stale hint is detected by the live struct's key and falls back to the locked table. */
#define HINT_SET_BITS 10
#define HINT_WAYS     4
static _Atomic(struct pql_live *) hints[(1u << HINT_SET_BITS) * HINT_WAYS];

static unsigned hint_set(uintptr_t key)
{
    return (unsigned)(((uint64_t)key * 0x9e3779b97f4a7c15ull) >> (64 - HINT_SET_BITS)) * HINT_WAYS;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The table: a power-of-two array of entries, linear probing, at most half full (removal shifts the
 * probe chain back, so there are no tombstones). NULL slots are empty. */
static struct entry **slots;
static size_t nslots, nused;
static struct entry *free_entries; /* removed entries, for reuse */
static struct pql_conn *retired;   /* closed by a runtime's teardown, kept for the exit report */
static size_t nretired, retired_cap;
static struct pql_counters counters;
static uint64_t next_id = 1;

/* The slot a key's probe starts at. */
static size_t home(uintptr_t key)
{
    return (size_t)(((uint64_t)key * 0x9e3779b97f4a7c15ull) >> 32) & (nslots - 1);
}

/* The slot holding key, or the empty slot where it would go. nslots > nused. Called with lock held. */
static size_t probe(uintptr_t key)
{
    size_t i = home(key);
    while (slots[i] && slots[i]->key != key)
        i = (i + 1) & (nslots - 1);
    return i;
}

static struct entry *find(uintptr_t key)
{
    return nslots ? slots[probe(key)] : NULL;
}

/* Doubles the table (or makes the first one). False on out of memory, the table unchanged. */
static bool grow(void)
{
    size_t n = nslots ? 2 * nslots : 64;
    struct entry **v = calloc(n, sizeof(*v));
    if (!v)
        return false;
    struct entry **old = slots;
    size_t nold = nslots;
    slots = v;
    nslots = n;
    for (size_t i = 0; i < nold; i++)
        if (old[i])
            slots[probe(old[i]->key)] = old[i];
    free(old);
    return true;
}

/* Takes slot i's entry out and moves later members of its probe chain back into the gap. */
static void unlink_slot(size_t i)
{
    slots[i] = NULL;
    nused--;
    for (size_t j = (i + 1) & (nslots - 1); slots[j]; j = (j + 1) & (nslots - 1)) {
        size_t h = home(slots[j]->key);
        /* slots[j] may fill the gap at i when its home is not in (i, j], cyclically. */
        if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
            slots[i] = slots[j];
            slots[j] = NULL;
            i = j;
        }
    }
}

/* An entry from the free list (with the live state it had), else from a new block of 64 (never freed;
 * no live state yet). NULL on out of memory. Called with lock held. */
static struct entry *entry_alloc(void)
{
    static struct entry *block;
    static size_t used = 64;
    struct entry *e = free_entries;
    if (e) {
        free_entries = e->next_free;
        return e;
    }
    if (used == 64) {
        struct entry *b = malloc(64 * sizeof(*b));
        if (!b)
            return NULL;
        block = b;
        used = 0;
    }
    block[used].live = NULL;
    return &block[used++];
}

/* The live fields a snapshot or a removed record carries. */
static void copy_live(struct pql_conn *rec, const struct pql_live *l)
{
    if (!l)
        return;
    rec->tx_status = atomic_load_explicit(&l->tx, memory_order_relaxed);
    rec->active =
        atomic_load_explicit(&l->busy_tid, memory_order_relaxed) || rec->tx_status == PQTRANS_ACTIVE;
    rec->last_ns = atomic_load_explicit(&l->last_ns, memory_order_relaxed);
    rec->tx_stack = atomic_load_explicit(&l->tx_stack, memory_order_relaxed);
    rec->last_stack = atomic_load_explicit(&l->last_stack, memory_order_relaxed);
    rec->tx_began_ns = atomic_load_explicit(&l->tx_began_ns, memory_order_relaxed);
    rec->tx_test = atomic_load_explicit(&l->tx_test, memory_order_relaxed);
    rec->suspect = atomic_load_explicit(&l->suspect, memory_order_relaxed);
    rec->ended_in_teardown = atomic_load_explicit(&l->ended_in_teardown, memory_order_relaxed);
    rec->warned_fork = atomic_load_explicit(&l->warned_fork, memory_order_relaxed);
    rec->use_fork = atomic_load_explicit(&l->use_fork, memory_order_relaxed);
}

/* Stops e's live state, drops its hints and puts e on the free list, its live state with it; e must be
 * out of the table. Called with lock held. */
static void entry_release(struct entry *e)
{
    if (e->live) {
        unsigned set = hint_set(e->key);
        for (unsigned w = 0; w < HINT_WAYS; w++) {
            struct pql_live *expect = e->live;
            atomic_compare_exchange_strong(&hints[set + w], &expect, NULL);
        }
        pql_live_stop(e->live);
    }
    e->next_free = free_entries;
    free_entries = e;
}

static bool holds_slot(enum pql_state s)
{
    return s != PQL_BAD;
}

/* A free slot for key, the table grown first when it would be more than half full (or at worst,
 * with no memory to grow, more than 7/8). Returns the slot's index, or nslots when there is none. */
static size_t free_slot(uintptr_t key)
{
    if ((nused + 1) * 2 > nslots && !grow() && (nused + 1) * 8 > nslots * 7)
        return nslots;
    return probe(key);
}

uint64_t pql_registry_add(const PGconn *conn, const struct pql_conn *rec)
{
    uintptr_t key = pql_registry_key(conn);
    uint64_t id = 0;
    pthread_mutex_lock(&lock);
    size_t i = nslots ? probe(key) : 0;
    struct entry *old = nslots ? slots[i] : NULL;
    if (old) {
        /* libpq reused the address of a PGconn freed behind our back: the old record is stale. */
        unlink_slot(i);
        if (holds_slot(old->rec.state))
            counters.open--;
        entry_release(old);
    }
    struct entry *e = NULL;
    if ((i = free_slot(key)) < nslots && (e = entry_alloc())) {
        e->key = key;
        if (!e->live)
            e->live = pql_live_new(); /* NULL on out of memory: the record keeps no live state */
        if (e->live)
            pql_live_start(e->live, key, rec->tx_status);
        e->rec = *rec;
        e->rec.id = id = next_id++;
        slots[i] = e;
        nused++;
        /* A refusal is not a connection: it counts in the checkout's refused_total instead. */
        counters.opened_total += !rec->refused;
        if (rec->state == PQL_BAD && !rec->refused)
            counters.failed_total++;
        if (holds_slot(rec->state) && ++counters.open > counters.peak_open)
            counters.peak_open = counters.open;
    }
    pthread_mutex_unlock(&lock);
    return id;
}

bool pql_registry_set_state(const PGconn *conn, enum pql_state state, int server_pid,
                            const struct pql_target *target, struct pql_slot *released)
{
    uintptr_t key = pql_registry_key(conn);
    released->held = false;
    pthread_mutex_lock(&lock);
    struct entry *e = find(key);
    if (e) {
        if (holds_slot(e->rec.state) && !holds_slot(state)) {
            counters.open--;
            counters.failed_total++;
        } else if (!holds_slot(e->rec.state) && holds_slot(state)) {
            /* PQreset brought a failed connection back. */
            if (++counters.open > counters.peak_open)
                counters.peak_open = counters.open;
        }
        if (!holds_slot(state) && e->rec.slot.held) {
            *released = e->rec.slot;
            e->rec.slot.held = false;
        }
        e->rec.state = state;
        e->rec.server_pid = server_pid;
        if (target)
            e->rec.target = *target;
    }
    pthread_mutex_unlock(&lock);
    return e != NULL;
}

/* Keeps a copy of a record closed by teardown. Called with lock held. */
static void retire(const struct entry *e, enum pql_leak_kind kind)
{
    if (nretired == retired_cap) {
        size_t cap = retired_cap ? 2 * retired_cap : 16;
        struct pql_conn *v = realloc(retired, cap * sizeof(*v));
        if (!v)
            return; /* the leak goes unreported rather than the application failing */
        retired = v;
        retired_cap = cap;
    }
    struct pql_conn *r = &retired[nretired++];
    *r = e->rec;
    copy_live(r, e->live);
    r->leak_kind = kind;
}

bool pql_registry_remove(const PGconn *conn, struct pql_conn *out, enum pql_leak_kind kind)
{
    uintptr_t key = pql_registry_key(conn);
    pthread_mutex_lock(&lock);
    size_t i = nslots ? probe(key) : 0;
    struct entry *e = nslots ? slots[i] : NULL;
    if (e) {
        unlink_slot(i);
        if (e->rec.pid == pql_pid()) {
            counters.closed_total += !e->rec.refused;
            if (holds_slot(e->rec.state))
                counters.open--;
            if (kind != PQL_LEAK_UNCLOSED)
                retire(e, kind);
        }
        if (out) {
            *out = e->rec;
            copy_live(out, e->live);
            out->leak_kind = kind;
        }
        entry_release(e);
    }
    pthread_mutex_unlock(&lock);
    return e != NULL;
}

size_t pql_registry_retired(struct pql_conn **out)
{
    pid_t me = pql_pid();
    size_t n = 0;
    pthread_mutex_lock(&lock);
    *out = nretired ? malloc(nretired * sizeof(**out)) : NULL;
    for (size_t i = 0; *out && i < nretired; i++)
        if (retired[i].pid == me)
            (*out)[n++] = retired[i];
    pthread_mutex_unlock(&lock);
    return n;
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const struct pql_conn *)a)->id, y = ((const struct pql_conn *)b)->id;
    return x < y ? -1 : x > y;
}

size_t pql_registry_snapshot(struct pql_conn **out, struct pql_counters *c)
{
    pid_t me = pql_pid();
    pthread_mutex_lock(&lock);
    *c = counters;
    size_t n = 0;
    struct pql_conn *v = malloc((nused ? nused : 1) * sizeof(*v));
    for (size_t i = 0; v && i < nslots; i++) {
        const struct entry *e = slots[i];
        if (e && e->rec.pid == me) {
            v[n] = e->rec;
            copy_live(&v[n++], e->live);
        }
    }
    pthread_mutex_unlock(&lock);
    if (v)
        qsort(v, n, sizeof(*v), by_id);
    *out = v;
    return n;
}

bool pql_registry_get(const PGconn *conn, struct pql_conn *out)
{
    uintptr_t key = pql_registry_key(conn);
    pthread_mutex_lock(&lock);
    struct entry *e = find(key);
    if (e) {
        *out = e->rec;
        copy_live(out, e->live);
    }
    pthread_mutex_unlock(&lock);
    return e != NULL;
}

struct pql_live *pql_registry_live(const PGconn *conn)
{
    uintptr_t key = pql_registry_key(conn);
    unsigned set = hint_set(key);
    for (unsigned w = 0; w < HINT_WAYS; w++) {
        struct pql_live *l = atomic_load_explicit(&hints[set + w], memory_order_acquire);
        if (l && atomic_load_explicit(&l->key, memory_order_acquire) == key)
            return l;
    }
    pthread_mutex_lock(&lock);
    struct entry *e = find(key);
    struct pql_live *l = e ? e->live : NULL;
    if (l) {
        /* An empty way, or one whose connection is gone; else the way this key hashes to. */
        unsigned victim = set + (unsigned)(key >> 4) % HINT_WAYS;
        for (unsigned w = 0; w < HINT_WAYS; w++) {
            struct pql_live *h = atomic_load_explicit(&hints[set + w], memory_order_relaxed);
            if (!h || !atomic_load_explicit(&h->key, memory_order_relaxed)) {
                victim = set + w;
                break;
            }
        }
        atomic_store_explicit(&hints[victim], l, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    return l;
}

void pql_registry_each(void (*fn)(const struct pql_conn *rec, struct pql_live *live, void *arg), void *arg)
{
    pid_t me = pql_pid();
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nslots; i++) {
        struct entry *e = slots[i];
        if (!e || e->rec.pid != me)
            continue;
        struct pql_conn rec = e->rec;
        copy_live(&rec, e->live);
        fn(&rec, e->live, arg);
    }
    pthread_mutex_unlock(&lock);
}

void pql_registry_counters(struct pql_counters *c)
{
    pthread_mutex_lock(&lock);
    *c = counters;
    pthread_mutex_unlock(&lock);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    memset(&counters, 0, sizeof(counters));
}

void pql_registry_setup(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, fork_prepare, fork_parent, fork_child);
}
