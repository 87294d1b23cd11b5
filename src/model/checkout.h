/* Pool-style caps on connections open at once (PQLEAK_MAX_CONNS, PQLEAK_MAX_CONNS_PER_TARGET):
 * blocking connects wait first come first served up to PQLEAK_CHECKOUT_TIMEOUT, non-blocking ones
 * never wait, and a wait that could never end is refused at once. A refusal is returned as data; its
 * wording is the output layer's. Application threads; never signal context. */
#ifndef PQL_CHECKOUT_H
#define PQL_CHECKOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "target.h"

/* A checkout slot, kept in the record of the connection that holds it. */
struct pql_slot {
    bool held;
    pid_t tid;       /* the thread that took it */
    uint32_t target; /* per-target cap bucket, 0 when none */
};

/* Upper bounds (seconds) of the wait-time histogram's buckets; a last bucket counts longer waits. */
#define PQL_WAIT_BUCKETS 12
extern const double pql_wait_bounds[PQL_WAIT_BUCKETS];

/* Counters of the checkout: waits, their seconds, timeouts, refusals; threads waiting now; each ended
 * wait counted once in the bucket of its length (waited[i]: at most pql_wait_bounds[i] seconds and more
 * than the bound before; waited[PQL_WAIT_BUCKETS]: longer). */
struct pql_wait_counters {
    long waits_total, timeouts_total, refused_total;
    double wait_s_total, wait_s_max;
    long waiting;
    long waited[PQL_WAIT_BUCKETS + 1];
};

enum pql_refusal_reason {
    PQL_REFUSED_NONBLOCKING, /* a non-blocking connect found no free slot */
    PQL_REFUSED_NO_WAIT,     /* PQLEAK_CHECKOUT_TIMEOUT=0 */
    PQL_REFUSED_DEADLOCK,    /* this thread holds slots and every other holder is waiting */
    PQL_REFUSED_TIMEOUT,     /* waited PQLEAK_CHECKOUT_TIMEOUT seconds */
};

/* Why a connect was refused, as data. */
struct pql_refusal {
    enum pql_refusal_reason reason;
    bool per_target;          /* the per-target cap was the one reached */
    int cap;                  /* the cap reached */
    long open;                /* connections open under that cap */
    double waited;            /* seconds waited */
    uint32_t bucket;          /* per-target: the bucket whose holders are to be named; 0: every holder */
    struct pql_target target; /* per-target: where the connect was going */
};

/* Takes the caps from the settings (kept; they must outlive the module) and registers the fork
 * handler. True when a cap is set: otherwise the connect path skips this module entirely. */
bool pql_checkout_setup(const struct pql_settings *s);

/* Takes a slot for a connect by this thread to target (target may be NULL when no per-target cap is
 * set), waiting if blocking. Returns true and fills *slot when the connect may go ahead; false when
 * refused, with the reason in *why. */
bool pql_checkout_acquire(const struct pql_target *target, bool blocking, struct pql_slot *slot,
                          struct pql_refusal *why);

/* Gives a slot back (a failed connect or PQfinish) and hands it to the first waiter that can use it.
 * Does nothing for a slot not held. */
void pql_checkout_release(struct pql_slot *slot);

/* Copies the checkout's counters. */
void pql_checkout_counters(struct pql_wait_counters *c);

#endif
