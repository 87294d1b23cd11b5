/* Option parsing for the subcommands (args.h). Options take "--opt VALUE" or "--opt=VALUE"; a bad one
 * gives exactly one line saying what is wrong. Command-line process only. */
#include "args.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define SEE_HELP "; see pqleak --help"

/* The limits the shim itself accepts (src/config.c), so a value the shim would replace with its
 * default is refused here, before anything runs. */
#define MAX_CONNS_LIMIT        1000000
#define CHECKOUT_TIMEOUT_LIMIT 86400.0

struct cursor {
    int argc, i;
    char **argv;
    const char *cmd;
};

/* Matches argv[i] against the option name; on a match stores its value (the next word, or what follows
 * '='), advances, and returns 1; returns 0 when it is another option and -1 when the value is missing. */
static int take_value(struct cursor *c, const char *name, const char **value)
{
    const char *a = c->argv[c->i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        c->i++;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (c->i + 1 >= c->argc) {
        cli_err("%s: %s needs a value" SEE_HELP, c->cmd, name);
        return -1;
    }
    *value = c->argv[c->i + 1];
    c->i += 2;
    return 1;
}

static bool is_flag(struct cursor *c, const char *name)
{
    if (strcmp(c->argv[c->i], name) != 0)
        return false;
    c->i++;
    return true;
}

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Handles a word that is no known option: "--" ends options (returns 1), other dashes are errors (-1),
 * anything else is an operand (0). */
static int other_word(struct cursor *c)
{
    const char *a = c->argv[c->i];
    if (strcmp(a, "--") == 0) {
        c->i++;
        return 1;
    }
    if (a[0] == '-' && a[1] != '\0') {
        cli_err("%s: unknown option '%s'" SEE_HELP, c->cmd, a);
        return -1;
    }
    return 0;
}

enum cli_parsed cli_args_run(int argc, char **argv, struct cli_run_opts *o)
{
    *o = (struct cli_run_opts){.exitcode = CLI_EXIT_LEAKS};
    struct cursor c = {argc, 1, argv, "run"};
    const char *exitcode = NULL;
    while (c.i < argc) {
        const char *a = argv[c.i];
        if (is_help(a))
            return CLI_PARSED_HELP;
        int r;
        if ((r = take_value(&c, "--report-dir", &o->report_dir)) ||
            (r = take_value(&c, "--json", &o->json)) || (r = take_value(&c, "--junit", &o->junit)) ||
            (r = take_value(&c, "--suppressions", &o->suppressions)) ||
            (r = take_value(&c, "--max-conns", &o->max_conns)) ||
            (r = take_value(&c, "--checkout-timeout", &o->checkout_timeout)) ||
            (r = take_value(&c, "--exitcode", &exitcode))) {
            if (r < 0)
                return CLI_PARSED_BAD;
            continue;
        }
        if (is_flag(&c, "--no-fail")) {
            o->no_fail = true;
            continue;
        }
        if (is_flag(&c, "--strict")) {
            o->strict = true;
            continue;
        }
        if (is_flag(&c, "--full-stacks")) {
            o->full_stacks = true;
            continue;
        }
        r = other_word(&c);
        if (r < 0)
            return CLI_PARSED_BAD;
        if (r == 0) {
            cli_err("run: expected -- before the command, got '%s'" SEE_HELP, a);
            return CLI_PARSED_BAD;
        }
        break; /* after "--" */
    }
    if (c.i >= argc) {
        if (c.i > 1 && strcmp(argv[c.i - 1], "--") == 0)
            cli_err("run: no command after --" SEE_HELP);
        else
            cli_err("run: missing -- COMMAND" SEE_HELP);
        return CLI_PARSED_BAD;
    }
    o->command = argv + c.i;
    long n;
    double s;
    if (o->max_conns && !cli_parse_long(o->max_conns, 0, MAX_CONNS_LIMIT, &n)) {
        cli_err("run: --max-conns '%s' is not a whole number from 0 to %d", o->max_conns, MAX_CONNS_LIMIT);
        return CLI_PARSED_BAD;
    }
    if (o->checkout_timeout && !cli_parse_seconds(o->checkout_timeout, CHECKOUT_TIMEOUT_LIMIT, &s)) {
        cli_err("run: --checkout-timeout '%s' is not a number of seconds from 0 to %.0f", o->checkout_timeout,
                CHECKOUT_TIMEOUT_LIMIT);
        return CLI_PARSED_BAD;
    }
    if (exitcode) {
        if (!cli_parse_long(exitcode, 0, 255, &n)) {
            cli_err("run: --exitcode '%s' is not an exit status from 0 to 255", exitcode);
            return CLI_PARSED_BAD;
        }
        o->exitcode = (int)n;
    }
    return CLI_PARSED_OK;
}

/* Ends the PATH... list kept in argv[1..out): NULL-terminated; none at all is a usage error. */
static enum cli_parsed end_paths(char **argv, int out, const char *cmd)
{
    if (out == 1) {
        cli_err("%s: no report files or directories given" SEE_HELP, cmd);
        return CLI_PARSED_BAD;
    }
    argv[out] = NULL;
    return CLI_PARSED_OK;
}

enum cli_parsed cli_args_report(int argc, char **argv, struct cli_report_opts *o)
{
    *o = (struct cli_report_opts){0};
    struct cursor c = {argc, 1, argv, "report"};
    /* Operands are compacted in place into argv[1..]; argv stays NULL-terminated at the end. */
    int out = 1;
    bool options = true;
    while (c.i < argc) {
        const char *a = argv[c.i];
        if (options) {
            if (is_help(a))
                return CLI_PARSED_HELP;
            int r;
            if ((r = take_value(&c, "--suppressions", &o->suppressions)) ||
                (r = take_value(&c, "--junit", &o->junit))) {
                if (r < 0)
                    return CLI_PARSED_BAD;
                continue;
            }
            if (is_flag(&c, "--json")) {
                o->json = true;
                continue;
            }
            if (is_flag(&c, "--strict")) {
                o->strict = true;
                continue;
            }
            if (is_flag(&c, "--full-stacks")) {
                o->full_stacks = true;
                continue;
            }
            int w = other_word(&c);
            if (w < 0)
                return CLI_PARSED_BAD;
            if (w > 0) {
                options = false;
                continue;
            }
        }
        argv[out++] = argv[c.i++];
    }
    o->paths = argv + 1;
    return end_paths(argv, out, "report");
}

enum cli_parsed cli_args_suppressions(int argc, char **argv, struct cli_suppressions_opts *o)
{
    *o = (struct cli_suppressions_opts){0};
    struct cursor c = {argc, 1, argv, "suppressions"};
    int out = 1;
    bool options = true;
    while (c.i < argc) {
        if (options) {
            if (is_help(argv[c.i]))
                return CLI_PARSED_HELP;
            int w = other_word(&c);
            if (w < 0)
                return CLI_PARSED_BAD;
            if (w > 0) {
                options = false;
                continue;
            }
        }
        argv[out++] = argv[c.i++];
    }
    o->paths = argv + 1;
    return end_paths(argv, out, "suppressions");
}

/* How long `status` waits for a live report by default, and at most. */
#define STATUS_TIMEOUT_DEFAULT 10.0
#define STATUS_TIMEOUT_LIMIT   3600.0
/* Linux's PID_MAX_LIMIT: no process id is larger. */
#define PID_LIMIT 4194304L

enum cli_parsed cli_args_status(int argc, char **argv, struct cli_status_opts *o)
{
    *o = (struct cli_status_opts){.timeout = STATUS_TIMEOUT_DEFAULT};
    struct cursor c = {argc, 1, argv, "status"};
    const char *timeout = NULL, *pid = NULL;
    bool options = true;
    while (c.i < argc) {
        const char *a = argv[c.i];
        if (options) {
            if (is_help(a))
                return CLI_PARSED_HELP;
            int r = take_value(&c, "--timeout", &timeout);
            if (r < 0)
                return CLI_PARSED_BAD;
            if (r > 0)
                continue;
            if (is_flag(&c, "--json")) {
                o->json = true;
                continue;
            }
            int w = other_word(&c);
            if (w < 0)
                return CLI_PARSED_BAD;
            if (w > 0) {
                options = false;
                continue;
            }
        }
        if (pid) {
            cli_err("status: one process id only, got '%s' and '%s'" SEE_HELP, pid, a);
            return CLI_PARSED_BAD;
        }
        pid = a;
        c.i++;
    }
    if (!pid) {
        cli_err("status: no process id given" SEE_HELP);
        return CLI_PARSED_BAD;
    }
    long n;
    if (!cli_parse_long(pid, 1, PID_LIMIT, &n)) {
        cli_err("status: '%s' is not a process id (a whole number from 1 to %ld)", pid, PID_LIMIT);
        return CLI_PARSED_BAD;
    }
    o->pid = (int)n;
    if (timeout && (!cli_parse_seconds(timeout, STATUS_TIMEOUT_LIMIT, &o->timeout) || o->timeout <= 0)) {
        cli_err("status: --timeout '%s' is not a number of seconds above 0 and up to %.0f", timeout,
                STATUS_TIMEOUT_LIMIT);
        return CLI_PARSED_BAD;
    }
    return CLI_PARSED_OK;
}
