/* Connect sites for the sanitizer programs, in a shared library of their own. The programs link the
 * shim's core and interpose.c into their executable, and the shim drops every frame of its own object
 * from a captured stack, which there is the whole executable: connections opened from here get stacks
 * that start at these functions, as an application's would. Calls into libpq go through the PLT and so
 * reach the executable's interposers first. Any thread. */
#include "sites.h"

#include <libpq-fe.h>

volatile unsigned san_sites_sink;

PGconn *san_site_a(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    san_sites_sink++; /* no tail call: this frame must be on the stack */
    return c;
}

PGconn *san_site_b(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    san_sites_sink += 2;
    return c;
}

PGconn *san_site_params(const char *const *keywords, const char *const *values, int expand_dbname)
{
    PGconn *c = PQconnectdbParams(keywords, values, expand_dbname);
    san_sites_sink += 3;
    return c;
}

PGconn *san_site_start(const char *const *keywords, const char *const *values, int expand_dbname)
{
    PGconn *c = PQconnectStartParams(keywords, values, expand_dbname);
    san_sites_sink += 4;
    return c;
}

static PGconn *step(const char *conninfo, unsigned bits, int depth);

/* Two functions that differ (so that identical-code folding cannot merge them): each level of the
 * recursion goes through one of them, so depth levels give 2^depth distinct stacks. */
__attribute__((noinline)) static PGconn *left(const char *conninfo, unsigned bits, int depth)
{
    PGconn *c = step(conninfo, bits >> 1, depth - 1);
    san_sites_sink += 5;
    return c;
}

__attribute__((noinline)) static PGconn *right(const char *conninfo, unsigned bits, int depth)
{
    PGconn *c = step(conninfo, bits >> 1, depth - 1);
    san_sites_sink += 7;
    return c;
}

__attribute__((noinline)) static PGconn *step(const char *conninfo, unsigned bits, int depth)
{
    if (depth <= 0)
        return san_site_a(conninfo);
    PGconn *c = bits & 1 ? left(conninfo, bits, depth) : right(conninfo, bits, depth);
    san_sites_sink++;
    return c;
}

PGconn *san_site_deep(const char *conninfo, unsigned bits, int depth)
{
    PGconn *c = step(conninfo, bits, depth);
    san_sites_sink++;
    return c;
}
