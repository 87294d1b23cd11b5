/* Pool-style caps on connections open at once (PQLEAK_MAX_CONNS, PQLEAK_MAX_CONNS_PER_TARGET):
 * blocking connects wait first come first served up to PQLEAK_CHECKOUT_TIMEOUT, non-blocking ones
 * never wait, and a wait that could never end is refused at once. Application threads only. */
#ifndef PQL_CHECKOUT_H
#define PQL_CHECKOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "registry.h"
#include "target.h"

/* True when a cap is set: otherwise the connect path skips this module entirely. */
bool pql_checkout_enabled(const struct pql_settings *s);

/* Takes a slot for a connect by this thread to target (target may be NULL when no per-target cap is
 * set), waiting if blocking. Returns true and fills *slot when the connect may go ahead; false when
 * refused, with the reason (cap, open count, seconds waited, who holds the connections) in msg. */
bool pql_checkout_acquire(const struct pql_settings *s, const struct pql_target *target, bool blocking,
                          struct pql_slot *slot, char *msg, size_t msglen);

/* Gives a slot back (a failed connect or PQfinish) and hands it to the first waiter that can use it.
 * Does nothing for a slot not held. */
void pql_checkout_release(struct pql_slot *slot);

/* Adds the checkout counters (waits, wait seconds, timeouts, refusals) to *c. */
void pql_checkout_counters(struct pql_counters *c);

/* In a forked child: the parent's slots and waiters are not the child's. */
void pql_checkout_fork_child(void);

#endif
