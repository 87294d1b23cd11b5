/* Connect sites in a shared library of their own (sites.c): stacks captured there name these functions. */
#ifndef SAN_SITES_H
#define SAN_SITES_H

#include <libpq-fe.h>

PGconn *san_site_a(const char *conninfo);
PGconn *san_site_b(const char *conninfo);
PGconn *san_site_params(const char *const *keywords, const char *const *values, int expand_dbname);
PGconn *san_site_start(const char *const *keywords, const char *const *values, int expand_dbname);
/* PQconnectdb through depth levels of recursion chosen by the low bits of bits: a distinct stack for
 * each pattern. */
PGconn *san_site_deep(const char *conninfo, unsigned bits, int depth);

#endif
