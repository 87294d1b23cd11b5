/* Unit tests of the connection registry's table: every record stays findable through growth and through
 * removals in any order (the probe chains closed up behind each removal), a removed record is gone, a
 * reused entry carries nothing of its previous connection, and the counters follow. The PGconn pointers
 * are addresses inside an array: the registry only uses them as keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

#define N     3000
#define SPOTS 65536

/* Fake PGconn addresses: N of the SPOTS 16-byte spots of an area, picked at random, so that some keys
 * share a probe chain (evenly spaced ones would each find a slot of their own). */
static char area[SPOTS][16];
static int spot[SPOTS];

static const PGconn *conn(int i)
{
    return (const PGconn *)area[spot[i]];
}

static struct pql_conn record(int i)
{
    struct pql_conn r;
    memset(&r, 0, sizeof(r));
    r.pid = getpid();
    r.state = i % 7 == 0 ? PQL_BAD : PQL_OK;
    r.server_pid = 100000 + i;
    r.stack = (uint32_t)i + 1;
    r.target = pql_target_empty();
    return r;
}

static void shuffle(int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static long open_ones(int from, int to)
{
    long n = 0;
    for (int i = from; i < to; i++)
        n += i % 7 != 0;
    return n;
}

static void test_add_find_remove(void **state)
{
    (void)state;
    struct pql_counters c0, c;
    pql_registry_counters(&c0);
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        struct pql_conn r = record(i);
        ids[i] = pql_registry_add(conn(i), &r);
        assert_true(ids[i] > 0);
    }
    pql_registry_counters(&c);
    assert_int_equal(c.open - c0.open, open_ones(0, N));
    struct pql_conn *snap;
    assert_int_equal(pql_registry_snapshot(&snap, &c), N);
    for (int i = 0; i < N; i++) /* in opening order */
        assert_int_equal(snap[i].server_pid, 100000 + i);
    free(snap);

    /* Removed in a random order: each removal finds its own record, and the others stay findable. */
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    shuffle(order, N);
    for (int k = 0; k < N; k++) {
        int i = order[k];
        struct pql_conn out;
        assert_true(pql_registry_remove(conn(i), &out, PQL_LEAK_UNCLOSED));
        assert_int_equal(out.id, ids[i]);
        assert_int_equal(out.server_pid, 100000 + i);
        assert_false(pql_registry_get(conn(i), &out));
        assert_false(pql_registry_remove(conn(i), &out, PQL_LEAK_UNCLOSED));
        if (k % 97 == 0) {
            for (int m = k + 1; m < N; m++) {
                assert_true(pql_registry_get(conn(order[m]), &out));
                assert_int_equal(out.server_pid, 100000 + order[m]);
            }
        }
    }
    pql_registry_counters(&c);
    assert_int_equal(c.open, c0.open);
    assert_int_equal(pql_registry_snapshot(&snap, &c), 0);
    free(snap);
}

/* Entries are reused: a new connection at a freed PGconn's address gets a record of its own. */
static void test_reuse(void **state)
{
    (void)state;
    struct pql_conn r = record(1), out;
    r.refused = true;
    r.client_port = 5555;
    uint64_t first = pql_registry_add(conn(1), &r);
    assert_true(pql_registry_remove(conn(1), NULL, PQL_LEAK_UNCLOSED));
    r = record(2);
    uint64_t second = pql_registry_add(conn(1), &r);
    assert_true(second > first);
    assert_true(pql_registry_get(conn(1), &out));
    assert_int_equal(out.id, second);
    assert_false(out.refused);
    assert_int_equal(out.client_port, 0);
    assert_int_equal(out.server_pid, 100002);
    assert_true(pql_registry_remove(conn(1), NULL, PQL_LEAK_UNCLOSED));
}

/* A record's live state is kept with its entry when it is removed: stopped then (a query cache still
 * holding it misses), and started again, all of it reset, for the entry's next connection. */
static void test_live_reuse(void **state)
{
    (void)state;
    struct pql_conn r = record(5), out;
    pql_registry_add(conn(5), &r);
    struct pql_live *l = pql_registry_live(conn(5));
    assert_non_null(l);
    assert_int_equal(atomic_load(&l->key), pql_registry_key(conn(5)));
    atomic_store(&l->tx, PQTRANS_INTRANS);
    atomic_store(&l->settled, PQTRANS_INTRANS);
    atomic_store(&l->tx_stack, 7);
    atomic_store(&l->busy_tid, 99);
    atomic_store(&l->warned_threads, true);
    assert_true(pql_registry_remove(conn(5), &out, PQL_LEAK_UNCLOSED));
    assert_int_equal(out.tx_status, PQTRANS_INTRANS);
    assert_int_equal(atomic_load(&l->key), 0);

    for (int i = 6; i < 8; i++) { /* another connection, then the same address again */
        const PGconn *c = i == 6 ? conn(6) : conn(5);
        r = record(i);
        /* The record's status starts the live state's: unknown when no query hook will follow it. */
        int tx = i == 6 ? PQTRANS_IDLE : PQTRANS_UNKNOWN;
        r.tx_status = tx;
        pql_registry_add(c, &r);
        struct pql_live *m = pql_registry_live(c);
        assert_ptr_equal(m, l); /* the entry, and its live state, came back from the free list */
        assert_int_equal(atomic_load(&m->key), pql_registry_key(c));
        assert_int_equal(atomic_load(&m->tx), tx);
        assert_int_equal(atomic_load(&m->settled), tx);
        assert_int_equal(atomic_load(&m->tx_stack), 0);
        assert_int_equal(atomic_load(&m->busy_tid), 0);
        assert_false(atomic_load(&m->warned_threads));
        assert_true(pql_registry_get(c, &out));
        assert_int_equal(out.tx_status, tx);
        assert_false(out.active);
        atomic_store(&m->tx, PQTRANS_INERROR);
        atomic_store(&m->busy_tid, 98);
        assert_true(pql_registry_remove(c, NULL, PQL_LEAK_UNCLOSED));
        assert_int_equal(atomic_load(&m->key), 0);
    }
}

/* libpq reused the address of a PGconn freed behind the shim's back: the stale record is replaced, and
 * the open count drops for it. */
static void test_stale_replaced(void **state)
{
    (void)state;
    struct pql_counters c0, c;
    pql_registry_counters(&c0);
    struct pql_conn r = record(3), out;
    pql_registry_add(conn(3), &r);
    r = record(4);
    uint64_t id = pql_registry_add(conn(3), &r);
    pql_registry_counters(&c);
    assert_int_equal(c.open, c0.open + 1);
    struct pql_conn *snap;
    assert_int_equal(pql_registry_snapshot(&snap, &c), 1);
    assert_int_equal(snap[0].id, id);
    free(snap);
    assert_true(pql_registry_remove(conn(3), &out, PQL_LEAK_UNCLOSED));
    assert_int_equal(out.server_pid, 100004);
    assert_false(pql_registry_get(conn(3), &out));
}

int main(void)
{
    srand(14);
    for (int i = 0; i < SPOTS; i++)
        spot[i] = i;
    shuffle(spot, SPOTS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_remove),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_live_reuse),
        cmocka_unit_test(test_stale_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
