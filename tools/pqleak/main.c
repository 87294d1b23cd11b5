/* The pqleak command: dispatches to run, report, status and suppressions, and holds the usage text. One
 * process, single-threaded; only `run` forks. */
#include "args.h"
#include "baseline.h"
#include "findings.h"
#include "jsonout.h"
#include "junit.h"
#include "merge.h"
#include "outfile.h"
#include "print.h"
#include "reportio.h"
#include "run.h"
#include "names.h"
#include "status.h"
#include "suppress.h"
#include "top.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* The usage text: `pqleak --help` prints all of it, `pqleak SUBCOMMAND --help` its own part. The man
 * page docs/man/pqleak.1 says the same at length (tests/cli/man.sh checks that it names every option). */
static const char usage_head[] =
    "usage: pqleak run [options] -- COMMAND [ARGS...]\n"
    "       pqleak report [--json] [--suppressions FILE]... [--junit FILE] "
    "[--strict] [--full-stacks] PATH...\n"
    "       pqleak status [--json] [--timeout S] PID\n"
    "       pqleak top [--json] [--db CONNINFO] [--user U | --all-users] [--interval S]\n"
    "       pqleak suppressions PATH...\n"
    "       pqleak SUBCOMMAND --help\n"
    "       pqleak --help | --version\n";

static const char usage_run[] =
    "usage: pqleak run [options] -- COMMAND [ARGS...]\n"
    "Runs COMMAND with the libpq connection-leak tracker preloaded into it and into every process it\n"
    "starts, merges their reports, prints a summary to stderr and exits with COMMAND's status if that is\n"
    "not 0 (128+N if signal N killed it), else 23 (or --exitcode N) when connections leaked, else 0 (also\n"
    "when no process connected).\n"
    "  --report-dir DIR       keep the JSON reports in DIR (made if missing); default: a private\n"
    "                         temporary directory, removed afterwards\n"
    "  --json FILE            write the merged report (schema pqleak/1) to FILE (not -: stdout is\n"
    "                         COMMAND's)\n"
    "  --junit FILE           write JUnit XML: one test case per leak site\n"
    "  --suppressions FILE    leak:PATTERN rules, one a line; matching leaks do not fail the run; may be\n"
    "                         given several times: the files add up\n"
    "  --max-conns N          cap on connections open at once in each process (0: none)\n"
    "  --checkout-timeout S   seconds a connect waits for a free slot at the cap\n"
    "  --exitcode N           exit status when leaks are found (default 23)\n"
    "  --no-fail              always exit with COMMAND's status\n"
    "  --strict               connections held until exit (closed by a runtime's teardown) are leaks\n"
    "  --full-stacks          print every frame (default: library, runtime and test-runner frames\n"
    "                         folded into one line per run)\n"
    "  -h, --help             print this text\n"
    "Options other than --suppressions may be given once. A connection used by a forked child or by\n"
    "two threads at once (misuse) fails the run like a leak, unless the child took it over from a\n"
    "parent that never used it again (a fork hand-off).\n";

static const char usage_report[] =
    "usage: pqleak report [options] PATH...\n"
    "Prints saved reports (files, or directories of *.json files) merged. Exits 0 with no unsuppressed\n"
    "leak or misuse (also for a directory without reports), 23 with some, 2 when a report cannot be read.\n"
    "  --json                 print the merged report (schema pqleak/1) instead of the summary\n"
    "  --suppressions FILE    leak:PATTERN rules; may be given several times: the files add up\n"
    "  --junit FILE           write JUnit XML: one test case per leak site\n"
    "  --strict               connections held until exit are leaks\n"
    "  --full-stacks          print every frame\n"
    "  -h, --help             print this text\n";

static const char usage_status[] =
    "usage: pqleak status [--json] [--timeout S] PID\n"
    "Asks the running process PID (started with the shim preloaded) for a live report through the shim's\n"
    "own reporter thread (the program's threads see nothing), reads it where that process writes it, and\n"
    "prints utilization and open connections like a Nagios plugin. Exits 0 (OK) below PQLEAK_WARN_PCT of\n"
    "the cap (or with no cap) and no suspect, 1 (WARNING) at or above it or with a suspect, 2 (CRITICAL)\n"
    "at or above PQLEAK_CRIT_PCT, 3 (UNKNOWN) when no report could be had or on a usage error.\n"
    "  --json                 print the live report itself\n"
    "  --timeout S            seconds to wait for the report (default 10)\n"
    "  -h, --help             print this text\n";

static const char usage_suppressions[] =
    "usage: pqleak suppressions PATH...\n"
    "Prints a suppressions file covering every leak site in the reports (a baseline: runs with it fail\n"
    "only on new leak sites).\n"
    "  -h, --help             print this text\n";

static const char usage_tail[] =
    "PQLEAK_LIB=/path/libpqleak.so overrides where the shim is found (default: ../lib/libpqleak.so\n"
    "next to this program). The PQLEAK_* settings of the shim: pqleak(7). The command: pqleak(1).\n";

static void print_usage(void)
{
    const char *parts[] = {usage_head,    usage_run,          usage_report, usage_status,
                           cli_top_usage, usage_suppressions, usage_tail};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        printf("%s%s", i ? "\n" : "", parts[i]);
}

/* The status of a subcommand whose parse did not return CLI_PARSED_OK: its usage on stdout for --help. */
static int parse_end(enum cli_parsed p, const char *usage)
{
    if (p != CLI_PARSED_HELP)
        return CLI_EXIT_USAGE;
    printf("%s\n%s", usage, usage_tail);
    return CLI_EXIT_OK;
}

static int cmd_report(int argc, char **argv)
{
    struct cli_report_opts o;
    enum cli_parsed p = cli_args_report(argc, argv, &o);
    if (p != CLI_PARSED_OK)
        return parse_end(p, usage_report);
    struct pql_rules rules;
    bool loaded = cli_rules_load_all(&rules, o.suppressions.v, o.suppressions.n, NULL);
    cli_paths_free(&o.suppressions);
    if (!loaded)
        return CLI_EXIT_USAGE;
    if (o.junit && !cli_outfile_check("--junit", o.junit)) {
        pql_rules_free(&rules);
        return CLI_EXIT_USAGE;
    }
    struct cli_set set = {0};
    int rc = CLI_EXIT_USAGE;
    set.full_stacks = o.full_stacks;
    if (cli_report_load_paths(&set, o.paths) == 0) {
        cli_set_finish(&set);
        cli_rules_apply(&rules, &set);
        rc = cli_set_fails(&set, o.strict) ? CLI_EXIT_LEAKS : CLI_EXIT_OK;
        if (o.json) {
            if (cli_jsonout_write(stdout, &set) != 0 || fflush(stdout) != 0) {
                cli_err("cannot write the report to standard output");
                rc = CLI_EXIT_USAGE;
            }
        } else {
            cli_print_summary(stdout, &set, o.strict);
        }
        if (o.junit) {
            struct cli_outfile of;
            if (!cli_outfile_open(&of, "--junit", o.junit))
                rc = CLI_EXIT_USAGE;
            else {
                cli_junit_write(of.fp, &set, o.strict);
                if (!cli_outfile_commit(&of, "--junit"))
                    rc = CLI_EXIT_USAGE;
            }
        }
    }
    cli_set_free(&set);
    pql_rules_free(&rules);
    return rc;
}

static int cmd_suppressions(int argc, char **argv)
{
    struct cli_suppressions_opts o;
    enum cli_parsed p = cli_args_suppressions(argc, argv, &o);
    if (p != CLI_PARSED_OK)
        return parse_end(p, usage_suppressions);
    struct cli_set set = {0};
    int rc = CLI_EXIT_USAGE;
    if (cli_report_load_paths(&set, o.paths) == 0) {
        cli_set_finish(&set);
        cli_baseline_write(stdout, &set);
        rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        if (rc)
            cli_err("cannot write to standard output");
    }
    cli_set_free(&set);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    struct cli_run_opts o;
    enum cli_parsed p = cli_args_run(argc, argv, &o);
    if (p != CLI_PARSED_OK)
        return parse_end(p, usage_run);
    int rc = cli_run(&o);
    cli_paths_free(&o.suppressions);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    struct cli_status_opts o;
    enum cli_parsed p = cli_args_status(argc, argv, &o);
    if (p != CLI_PARSED_OK) /* a usage error is UNKNOWN, as a Nagios plugin's: never CRITICAL (2) */
        return p == CLI_PARSED_HELP ? parse_end(p, usage_status) : CLI_STATUS_UNKNOWN;
    return cli_status(&o);
}

static int cmd_top(int argc, char **argv)
{
    struct cli_top_opts o;
    enum cli_parsed p = cli_args_top(argc, argv, &o);
    if (p != CLI_PARSED_OK)
        return parse_end(p, cli_top_usage);
    return cli_top(&o);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_err("no subcommand given; see pqleak --help");
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_usage();
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("pqleak %s\n", PQL_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "suppressions") == 0)
        return cmd_suppressions(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(cmd, "top") == 0)
        return cmd_top(argc - 1, argv + 1);
    cli_err("unknown subcommand '%s'; see pqleak --help", cmd);
    return CLI_EXIT_USAGE;
}
