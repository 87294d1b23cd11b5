/* Reading saved JSON reports ("schema": "pqleak/1") into a merged set. Every file is validated whole
 * before anything of it is merged: a gate must never pass because a report could not be read, so a
 * bad file is an error naming it, never a silent skip. Command-line process only. */
#ifndef CLI_REPORTIO_H
#define CLI_REPORTIO_H

#include "merge.h"
#include "util.h"

#include <stdbool.h>
#include <stddef.h>

/* The files a directory held at one moment, to tell them from files written later. */
struct cli_dirsnap {
    struct cli_vec ids; /* char *: "name/inode/mtime" */
};

/* Records the report files now in dir; an unreadable or missing dir gives an empty snapshot. */
void cli_dirsnap_take(struct cli_dirsnap *snap, const char *dir);
void cli_dirsnap_free(struct cli_dirsnap *snap);

/* Appends to paths (as owned "dir/name" strings, sorted by name) every report file in dir: entries
 * named *.json whose name does not start with '.' (the shim's temp files do), leaving out those in
 * skip (may be NULL); not subdirectories. Entries that are no regular file (links, FIFOs) are listed
 * too, so that loading them with cli_report_load_listed fails, naming them. Returns false after printing one
 * line when dir cannot be read. */
bool cli_report_list_dir(const char *dir, const struct cli_dirsnap *skip, struct cli_vec *paths);

/* Reads, validates and merges one report file into set. Returns false after printing one line naming
 * path and what is wrong with it (unreadable, empty, truncated, corrupt, not a pqleak report); then
 * nothing of the file was merged. */
bool cli_report_load(struct cli_set *set, const char *path);

/* As cli_report_load, for a path found by cli_report_list_dir: a symbolic link is refused, never
 * followed. Any file is opened without blocking and read only when it is a regular file. */
bool cli_report_load_listed(struct cli_set *set, const char *path);

/* Validates a parsed document as a pqleak/1 report without merging it (for callers that read the
 * document themselves, like `status`). Returns false after writing into msg what is wrong, worded as
 * cli_report_load words it after the file name. */
bool cli_report_check(const json_t *root, char *msg, size_t len);

/* Loads every path of the NULL-terminated list: a file whatever its name, a directory as its report
 * files (cli_report_list_dir). A directory without reports is no failure (one line says so), as a
 * run whose processes never connected is none. Returns the number of failures, each named in one line. */
size_t cli_report_load_paths(struct cli_set *set, char *const *paths);

#endif
