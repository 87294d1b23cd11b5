/* The running test's name, as pytest publishes it in PYTEST_CURRENT_TEST for each phase of each test
 * ("tests/test_orders.py::test_checkout (call)"), read when a connection opens and when a transaction
 * begins, so that reports can say which test leaked. Names are interned once into a table that is never
 * freed and named by a small id. Any application thread (not signal-safe: it may allocate);
 * pql_testname is async-signal-safe (no lock, no allocation). */
#ifndef PQL_TESTNAME_H
#define PQL_TESTNAME_H

#include <stdint.h>

/* The environment variable read, and the longest name kept (longer ones are cut at a character
 * boundary and end in "..."; control characters are kept as '?', so a name is one line of text). */
#define PQL_TESTNAME_VAR "PYTEST_CURRENT_TEST"
#define PQL_TESTNAME_LEN 256
/* Ids are below this (a bitmap of it fits a stack frame). */
#define PQL_TESTNAME_MAX 8192

/* The id of the test running now, >= 1; 0 when none is (the variable is unset or empty), when the
 * process is neither a Python one nor started with the variable set (decided once, at the first call),
 * or when the table is full or memory ran out. */
uint16_t pql_testname_now(void);

/* The name of id, or NULL for 0 or an unknown id. The pointer stays valid for the life of the process. */
const char *pql_testname(uint16_t id);

#endif
