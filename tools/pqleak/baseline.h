/* `pqleak suppressions`: a suppressions file that covers every unsuppressed leak group of a merged
 * set, one rule per leak site in the user's own code, so later runs fail only on new sites. */
#ifndef CLI_BASELINE_H
#define CLI_BASELINE_H

#include "merge.h"

#include <stdio.h>

/* Writes the file to out. Returns the number of groups no rule can cover (no frames at all); each is
 * also named in a comment and on stderr. */
size_t cli_baseline_write(FILE *out, const struct cli_set *set);

#endif
