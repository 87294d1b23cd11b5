/* Connect sites for the sanitizer programs, in a shared library of their own. The programs link the
 * shim's core and interpose.c into their executable, and the shim drops every frame of its own object
 * from a captured stack, which there is the whole executable: connections opened from here get stacks
 * that start at these functions, as an application's would. Calls into libpq go through the PLT and so
 * reach the executable's interposers first. Any thread. */
#include "sites.h"

#include <libpq-fe.h>
#include <stdatomic.h>

/* Touched after each call so that no call is a tail call (the caller's frame must stay on the stack);
 * atomic because every thread goes through here. */
static atomic_uint sink;

#define TOUCH(n) atomic_fetch_add_explicit(&sink, (n), memory_order_relaxed)

PGconn *san_site_a(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    TOUCH(1); /* no tail call: this frame must be on the stack */
    return c;
}

PGconn *san_site_b(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    TOUCH(2);
    return c;
}

PGconn *san_site_params(const char *const *keywords, const char *const *values, int expand_dbname)
{
    PGconn *c = PQconnectdbParams(keywords, values, expand_dbname);
    TOUCH(3);
    return c;
}

PGconn *san_site_start(const char *const *keywords, const char *const *values, int expand_dbname)
{
    PGconn *c = PQconnectStartParams(keywords, values, expand_dbname);
    TOUCH(4);
    return c;
}

static PGconn *step(const char *conninfo, unsigned bits, int depth);

/* Two functions that differ (so that identical-code folding cannot merge them): each level of the
 * recursion goes through one of them, so depth levels give 2^depth distinct stacks. */
__attribute__((noinline)) static PGconn *left(const char *conninfo, unsigned bits, int depth)
{
    PGconn *c = step(conninfo, bits >> 1, depth - 1);
    TOUCH(5);
    return c;
}

__attribute__((noinline)) static PGconn *right(const char *conninfo, unsigned bits, int depth)
{
    PGconn *c = step(conninfo, bits >> 1, depth - 1);
    TOUCH(7);
    return c;
}

__attribute__((noinline)) static PGconn *step(const char *conninfo, unsigned bits, int depth)
{
    if (depth <= 0)
        return san_site_a(conninfo);
    PGconn *c = bits & 1 ? left(conninfo, bits, depth) : right(conninfo, bits, depth);
    TOUCH(1);
    return c;
}

PGconn *san_site_deep(const char *conninfo, unsigned bits, int depth)
{
    PGconn *c = step(conninfo, bits, depth);
    TOUCH(1);
    return c;
}
