/* Command-line options of each pqleak subcommand, parsed with getopt_long into plain structs. Parsing
 * only checks syntax, numbers and repetition; files are checked by the subcommands. */
#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* What a parser returns. */
enum cli_parsed {
    CLI_PARSED_OK,
    CLI_PARSED_HELP, /* --help or -h: print the subcommand's usage on stdout, exit 0 */
    CLI_PARSED_BAD,  /* one line already printed: a usage error */
};

/* --suppressions FILE, which may be given several times: the files add up, in order. */
struct cli_paths {
    const char **v; /* points into argv; the array is owned (cli_paths_free) */
    size_t n;
};
void cli_paths_free(struct cli_paths *p);

struct cli_run_opts {
    const char *report_dir, *json, *junit;
    struct cli_paths suppressions;
    const char *max_conns, *checkout_timeout; /* validated, passed on as written */
    int exitcode;
    bool no_fail, strict;
    bool full_stacks; /* print every frame, none folded */
    char **command;   /* NULL-terminated, at least one word */
};

struct cli_report_opts {
    bool json, strict, full_stacks;
    struct cli_paths suppressions;
    const char *junit;
    char **paths; /* NULL-terminated, at least one */
};

struct cli_suppressions_opts {
    char **paths;
};

struct cli_status_opts {
    bool json;
    double timeout; /* seconds to wait for the live report, > 0 */
    int pid;
};

/* Which order `top` prints connections in. */
enum top_sort { TOP_SORT_TX, TOP_SORT_AGE, TOP_SORT_IDLE };

struct cli_top_opts {
    bool json;
    bool all_users;  /* --all-users, or root without --user */
    bool user_given; /* --user: only user's processes */
    unsigned user;   /* a uid */
    const char *db;
    double interval; /* seconds between rounds; 0: one round */
    double timeout;  /* seconds each process has to answer, > 0 */
    enum top_sort sort;
};

/* argv[0] is the subcommand's name; argv is NULL-terminated and may be permuted (operands last). */
enum cli_parsed cli_args_run(int argc, char **argv, struct cli_run_opts *o);
enum cli_parsed cli_args_report(int argc, char **argv, struct cli_report_opts *o);
enum cli_parsed cli_args_suppressions(int argc, char **argv, struct cli_suppressions_opts *o);
enum cli_parsed cli_args_status(int argc, char **argv, struct cli_status_opts *o);
enum cli_parsed cli_args_top(int argc, char **argv, struct cli_top_opts *o);

#endif
