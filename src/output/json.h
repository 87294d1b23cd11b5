/* The JSON writer of reports ("schema": "pqleak/1", docs/report-schema.md): exit reports with their leak
 * groups, live reports without. Reporting thread; not signal-safe. */
#ifndef PQL_JSON_H
#define PQL_JSON_H

#include <stdbool.h>

#include "buf.h"
#include "rmodel.h"

/* Appends the report r to b; with_leaks adds the "leaks" array (exit reports, grouped). On out of
 * memory b is marked failed. */
void pql_json_report(struct pql_buf *b, const struct pql_report *r, bool with_leaks);

#endif
