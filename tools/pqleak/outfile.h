/* Output files (--json, --junit) and the report directory: checked before the command runs, so a
 * typo does not cost a whole test suite, and written whole (temp file + rename) so no reader ever sees
 * half a file. "-" means standard output. */
#ifndef CLI_OUTFILE_H
#define CLI_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>

/* Returns true when path can be written; otherwise prints one line naming option and path and returns
 * false. Leaves nothing behind. */
bool cli_outfile_check(const char *option, const char *path);

struct cli_outfile {
    FILE *fp;
    char *path; /* NULL for standard output */
    char *tmp;  /* NULL when writing in place (standard output, devices, pipes) */
};

/* Opens path for writing. Returns false after printing one line. */
bool cli_outfile_open(struct cli_outfile *o, const char *option, const char *path);
/* Finishes the file (flush, rename into place). Returns false after printing one line; the old file,
 * if any, is then left as it was. Always releases o. */
bool cli_outfile_commit(struct cli_outfile *o, const char *option);

/* Makes dir (and missing parents) if needed, the last one mode 0700, and checks that files can be made
 * in it. Returns false after printing one line naming option and dir. */
bool cli_dir_prepare(const char *option, const char *dir);

#endif
