/* Caps and checkout waits. One mutex guards the slot counts (global, per target, per thread) and a
 * FIFO of waiters, each with its own condition variable: a released slot is handed directly to the
 * first waiter that can use it, so a newcomer never overtakes a waiter (no starvation). Deadlock
 * rule: a thread that holds slots and would wait while every holder is itself or waiting is refused
 * at once. A thread "holds" the connections it opened. Application threads; never signal context. */
#define _GNU_SOURCE
#include "checkout.h"

#include "log.h"
#include "proc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

struct bucket { /* a target's slot count */
    uint32_t id;
    long used;
    char key[PQL_TARGET_KEY_MAX];
    UT_hash_handle hh;    /* by key */
    UT_hash_handle hh_id; /* by id */
};

struct holder { /* a thread's slot count */
    pid_t tid;
    long held;
    int waiting;
    UT_hash_handle hh;
};

struct waiter {
    struct waiter *next;
    pthread_cond_t cond;
    struct holder *who;
    struct bucket *bucket; /* NULL without a per-target cap */
    bool granted;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long used;
static struct bucket *buckets, *buckets_by_id;
static uint32_t next_bucket = 1;
static struct holder *holders;
static struct waiter *queue_head, *queue_tail;
static struct pql_wait_counters counts;
static bool warned_warn, warned_crit;
static double last_warn_at, last_crit_at; /* monotonic seconds of the last warning of each level */
static const struct pql_settings *cfg;

static double mono_s(void)
{
    return pql_clock_s(CLOCK_MONOTONIC);
}

static struct holder *holder_for(pid_t tid)
{
    struct holder *h;
    HASH_FIND(hh, holders, &tid, sizeof(tid), h);
    if (!h && (h = calloc(1, sizeof(*h)))) {
        h->tid = tid;
        HASH_ADD(hh, holders, tid, sizeof(tid), h);
    }
    return h;
}

static struct bucket *bucket_for(const struct pql_target *t)
{
    char key[PQL_TARGET_KEY_MAX];
    snprintf(key, sizeof(key), "%s\x1f%s\x1f%s\x1f%s", t->host, t->port, t->dbname, t->user);
    struct bucket *b;
    HASH_FIND_STR(buckets, key, b);
    if (!b && (b = calloc(1, sizeof(*b)))) {
        b->id = next_bucket++;
        strcpy(b->key, key);
        HASH_ADD_STR(buckets, key, b);
        HASH_ADD(hh_id, buckets_by_id, id, sizeof(b->id), b);
    }
    return b;
}

static bool fits(const struct bucket *b)
{
    if (cfg->max_conns > 0 && used >= cfg->max_conns)
        return false;
    return !b || cfg->max_conns_per_target <= 0 || b->used < cfg->max_conns_per_target;
}

/* Logs a crossing of the warning or critical level, once per crossing. Called with mu held. */
static void check_levels(void)
{
    if (cfg->max_conns <= 0)
        return;
    double pct = 100.0 * (double)used / cfg->max_conns;
    /* Re-armed crossings are still said at most once a minute per level: a small pool that empties
     * and fills all the time would otherwise flood the log. */
    double now = mono_s();
    if (pct >= cfg->crit_pct && !warned_crit && (last_crit_at == 0 || now - last_crit_at >= 60)) {
        warned_crit = warned_warn = true;
        last_crit_at = last_warn_at = now;
        pql_log("CRITICAL: %ld of PQLEAK_MAX_CONNS=%d connections open (%.0f%%, critical level %d%%)", used,
                cfg->max_conns, pct, cfg->crit_pct);
    } else if (pct >= cfg->warn_pct && !warned_warn && (last_warn_at == 0 || now - last_warn_at >= 60)) {
        warned_warn = true;
        last_warn_at = now;
        pql_log("WARNING: %ld of PQLEAK_MAX_CONNS=%d connections open (%.0f%%, warning level %d%%)", used,
                cfg->max_conns, pct, cfg->warn_pct);
    }
    /* Re-armed only well below the level, so that a pool hovering at the level does not flood the log. */
    if (pct < 0.75 * cfg->crit_pct)
        warned_crit = false;
    if (pct < 0.75 * cfg->warn_pct)
        warned_warn = false;
}

static void take(struct holder *h, struct bucket *b, struct pql_slot *slot)
{
    used++;
    if (b)
        b->used++;
    if (h)
        h->held++;
    slot->held = true;
    slot->tid = h ? h->tid : 0;
    slot->target = b ? b->id : 0;
    check_levels();
}

const double pql_wait_bounds[PQL_WAIT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,    2.5,   5,    10,  30};

/* Adds an ended wait to the counters, under the lock. */
static void count_wait(double waited)
{
    size_t i = 0;
    while (i < PQL_WAIT_BUCKETS && waited > pql_wait_bounds[i])
        i++;
    counts.waited[i]++;
    counts.wait_s_total += waited;
    if (waited > counts.wait_s_max)
        counts.wait_s_max = waited;
}

/* Nothing can free a slot for this thread: it holds some, and every other holder is waiting too. */
static bool would_deadlock(const struct holder *me)
{
    if (!me || me->held == 0)
        return false;
    for (const struct holder *h = holders; h; h = h->hh.next)
        if (h != me && h->held > 0 && h->waiting == 0)
            return false;
    return true;
}

static void dequeue(struct waiter *w)
{
    struct waiter **p = &queue_head, *prev = NULL;
    for (; *p && *p != w; p = &(*p)->next)
        prev = *p;
    if (!*p)
        return;
    *p = w->next;
    if (queue_tail == w)
        queue_tail = prev;
}

/* Hands free slots to waiters, first come first served. Called with mu held. */
static void grant(void)
{
    for (struct waiter *w = queue_head, *next; w; w = next) {
        next = w->next;
        if (!fits(w->bucket))
            continue;
        struct pql_slot ignored;
        take(w->who, w->bucket, &ignored);
        w->granted = true;
        w->who->waiting--;
        dequeue(w);
        pthread_cond_signal(&w->cond);
    }
}

static void refusal(struct pql_refusal *why, enum pql_refusal_reason reason, double waited,
                    const struct bucket *b, const struct pql_target *t)
{
    memset(why, 0, sizeof(*why));
    why->reason = reason;
    why->waited = waited;
    if (b && cfg->max_conns_per_target > 0 && b->used >= cfg->max_conns_per_target) {
        why->per_target = true;
        why->cap = cfg->max_conns_per_target;
        why->open = b->used;
        why->bucket = b->id; /* a per-target refusal names the holders of that target only */
        why->target = *t;
    } else {
        why->cap = cfg->max_conns;
        why->open = used;
    }
}

bool pql_checkout_acquire(const struct pql_target *target, bool blocking, struct pql_slot *slot,
                          struct pql_refusal *why)
{
    const struct pql_settings *s = cfg;
    memset(slot, 0, sizeof(*slot));
    pid_t tid = pql_tid();
    enum pql_refusal_reason reason;
    double waited = 0;

    pthread_mutex_lock(&mu);
    struct holder *me = holder_for(tid);
    struct bucket *b = target ? bucket_for(target) : NULL;
    if (fits(b)) {
        take(me, b, slot);
        pthread_mutex_unlock(&mu);
        return true;
    }
    if (!blocking) {
        reason = PQL_REFUSED_NONBLOCKING;
    } else if (s->checkout_timeout <= 0) {
        reason = PQL_REFUSED_NO_WAIT;
    } else if (would_deadlock(me)) {
        reason = PQL_REFUSED_DEADLOCK;
    } else {
        struct waiter w = {.who = me, .bucket = b};
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w.cond, &ca);
        pthread_condattr_destroy(&ca);
        if (queue_tail)
            queue_tail->next = &w;
        else
            queue_head = &w;
        queue_tail = &w;
        if (me)
            me->waiting++;
        counts.waits_total++;
        counts.waiting++;
        if (s->trace)
            pql_log("wait: thread %d waits for a free slot (%ld open, cap %d)", (int)tid, used, s->max_conns);
        double start = mono_s();
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        double end = (double)deadline.tv_sec + (double)deadline.tv_nsec / 1e9 + s->checkout_timeout;
        deadline.tv_sec = (time_t)end;
        deadline.tv_nsec = (long)((end - (double)deadline.tv_sec) * 1e9);
        int rc = 0;
        while (!w.granted && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&w.cond, &mu, &deadline);
        waited = mono_s() - start;
        counts.waiting--;
        count_wait(waited);
        pthread_cond_destroy(&w.cond);
        if (w.granted) {
            /* grant() took the slot on our behalf. */
            slot->held = true;
            slot->tid = tid;
            slot->target = b ? b->id : 0;
            pthread_mutex_unlock(&mu);
            if (s->trace)
                pql_log("wait: thread %d got a slot after %.3f s", (int)tid, waited);
            return true;
        }
        dequeue(&w);
        if (me)
            me->waiting--;
        counts.timeouts_total++;
        reason = PQL_REFUSED_TIMEOUT;
    }
    counts.refused_total++;
    refusal(why, reason, waited, b, target);
    pthread_mutex_unlock(&mu);
    return false;
}

void pql_checkout_release(struct pql_slot *slot)
{
    if (!slot->held)
        return;
    pthread_mutex_lock(&mu);
    used--;
    struct holder *h;
    HASH_FIND(hh, holders, &slot->tid, sizeof(slot->tid), h);
    if (h && h->held > 0)
        h->held--;
    if (slot->target) {
        struct bucket *b;
        HASH_FIND(hh_id, buckets_by_id, &slot->target, sizeof(slot->target), b);
        if (b && b->used > 0)
            b->used--;
    }
    slot->held = false;
    if (cfg)
        check_levels();
    grant();
    pthread_mutex_unlock(&mu);
}

void pql_checkout_counters(struct pql_wait_counters *c)
{
    pthread_mutex_lock(&mu);
    *c = counts;
    pthread_mutex_unlock(&mu);
}

/* The parent's slots, holders and waiters are not the child's: forgotten (not freed: other threads of
 * the parent may have been using them), with the lock reset. */
static void fork_child(void)
{
    pthread_mutex_init(&mu, NULL);
    used = 0;
    /* The tables are the parent's; forget them without freeing what other threads were using. */
    buckets = buckets_by_id = NULL;
    holders = NULL;
    queue_head = queue_tail = NULL;
    memset(&counts, 0, sizeof(counts));
    warned_warn = warned_crit = false;
    last_warn_at = last_crit_at = 0;
}

bool pql_checkout_setup(const struct pql_settings *s)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    cfg = s;
    pql_atfork_once(&once, NULL, NULL, fork_child);
    return s->max_conns > 0 || s->max_conns_per_target > 0;
}
