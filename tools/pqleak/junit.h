/* JUnit XML for CI systems: one test case per leak group (failing; suppressed ones skipped; held ones
 * passing unless strict) with the site's file and line and a time, named by the pytest test that
 * opened its connections when the reports say; or one passing test case when nothing leaked. */
#ifndef CLI_JUNIT_H
#define CLI_JUNIT_H

#include "merge.h"

#include <stdbool.h>
#include <stdio.h>

/* Writes the whole document to out. */
void cli_junit_write(FILE *out, const struct cli_set *set, bool strict);

#endif
