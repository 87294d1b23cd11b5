/* Option parsing for the subcommands (args.h), with getopt_long: "--opt VALUE", "--opt=VALUE" and
 * unambiguous abbreviations ("--report" for "--report-dir") work as in other GNU-style tools; options
 * and operands may mix except in `run`, whose options end at "--". A bad command line gives exactly one
 * line saying what is wrong and naming the subcommand's --help. Command-line process only. */
#include "args.h"

#include "util.h"

#include <getopt.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The limits the shim itself accepts (src/config.c), so a value the shim would replace with its
 * default is refused here, before anything runs. */
#define MAX_CONNS_LIMIT        1000000
#define CHECKOUT_TIMEOUT_LIMIT 86400.0

/* How long `status` waits for a live report by default, and at most. */
#define STATUS_TIMEOUT_DEFAULT 10.0
#define STATUS_TIMEOUT_LIMIT   3600.0
/* Linux's PID_MAX_LIMIT: no process id is larger. */
#define PID_LIMIT 4194304L

/* How long each process has to answer `top` by default (all are asked at once), and at most; the
 * longest --interval. */
#define TOP_TIMEOUT_DEFAULT 2.0
#define TOP_TIMEOUT_LIMIT   3600.0
#define TOP_INTERVAL_LIMIT  86400.0

/* Long options have codes above any character, so an error about one is told from one about -h. */
enum {
    OPT_HELP = 'h',
    OPT_REPORT_DIR = 256,
    OPT_JSON,
    OPT_JUNIT,
    OPT_SUPPRESSIONS,
    OPT_MAX_CONNS,
    OPT_CHECKOUT_TIMEOUT,
    OPT_EXITCODE,
    OPT_NO_FAIL,
    OPT_STRICT,
    OPT_FULL_STACKS,
    OPT_TIMEOUT,
    OPT_DB,
    OPT_USER,
    OPT_ALL_USERS,
    OPT_INTERVAL,
    OPT_SORT,
};

#define HELP_OPTION                                                                                          \
    {                                                                                                        \
        "help", no_argument, NULL, OPT_HELP                                                                  \
    }
#define END_OPTIONS                                                                                          \
    {                                                                                                        \
        NULL, 0, NULL, 0                                                                                     \
    }

static const struct option run_options[] = {
    HELP_OPTION,
    {"report-dir", required_argument, NULL, OPT_REPORT_DIR},
    {"json", required_argument, NULL, OPT_JSON},
    {"junit", required_argument, NULL, OPT_JUNIT},
    {"suppressions", required_argument, NULL, OPT_SUPPRESSIONS},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"checkout-timeout", required_argument, NULL, OPT_CHECKOUT_TIMEOUT},
    {"exitcode", required_argument, NULL, OPT_EXITCODE},
    {"no-fail", no_argument, NULL, OPT_NO_FAIL},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"full-stacks", no_argument, NULL, OPT_FULL_STACKS},
    END_OPTIONS,
};

static const struct option report_options[] = {
    HELP_OPTION,
    {"json", no_argument, NULL, OPT_JSON},
    {"junit", required_argument, NULL, OPT_JUNIT},
    {"suppressions", required_argument, NULL, OPT_SUPPRESSIONS},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"full-stacks", no_argument, NULL, OPT_FULL_STACKS},
    END_OPTIONS,
};

static const struct option status_options[] = {
    HELP_OPTION,
    {"json", no_argument, NULL, OPT_JSON},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    END_OPTIONS,
};

static const struct option top_options[] = {
    HELP_OPTION,
    {"json", no_argument, NULL, OPT_JSON},
    {"db", required_argument, NULL, OPT_DB},
    {"user", required_argument, NULL, OPT_USER},
    {"all-users", no_argument, NULL, OPT_ALL_USERS},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"sort", required_argument, NULL, OPT_SORT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    END_OPTIONS,
};

static const struct option help_only_options[] = {HELP_OPTION, END_OPTIONS};

/* One subcommand's parse: getopt_long's state is global, so one parser runs at a time. */
struct parser {
    int argc;
    char **argv;
    const char *cmd;           /* for messages */
    const char *shortopts;     /* "+" stops at the first operand (run); ":" reports a missing value */
    const struct option *opts; /* the subcommand's table */
};

static const char *long_name(const struct parser *p, int code)
{
    for (const struct option *o = p->opts; o->name; o++)
        if (o->val == code)
            return o->name;
    return "?";
}

/* True when "--word" abbreviates more than one of the subcommand's options. */
static bool is_ambiguous(const struct parser *p, const char *word)
{
    if (strncmp(word, "--", 2) != 0)
        return false;
    size_t len = strcspn(word + 2, "=");
    int n = 0;
    for (const struct option *o = p->opts; o->name; o++)
        n += strncmp(o->name, word + 2, len) == 0;
    return n > 1;
}

/* Reports a getopt_long error ('?' or ':') in one line. */
static void option_error(const struct parser *p, int c)
{
    const char *word = p->argv[optind - 1];
    if (c == ':' && optopt >= 256)
        cli_err("%s: --%s needs a value; see pqleak %s --help", p->cmd, long_name(p, optopt), p->cmd);
    else if (optopt >= 256)
        cli_err("%s: --%s takes no value, got '%s'; see pqleak %s --help", p->cmd, long_name(p, optopt), word,
                p->cmd);
    else if (optopt != 0)
        cli_err("%s: unknown option '-%c'; see pqleak %s --help", p->cmd, optopt, p->cmd);
    else if (is_ambiguous(p, word))
        cli_err("%s: ambiguous option '%.*s' (more than one option starts so); see pqleak %s --help", p->cmd,
                (int)strcspn(word, "="), word, p->cmd);
    else
        cli_err("%s: unknown option '%.*s'; see pqleak %s --help", p->cmd, (int)strcspn(word, "="), word,
                p->cmd);
}

/* The next option's code, -1 after the last one, OPT_HELP for --help or -h, or 0 after printing one
 * line about a bad option. *value_at gets the index of the word that held a separate value. */
static int next_option(const struct parser *p, int *value_at)
{
    opterr = 0; /* our own messages, one line each */
    int c = getopt_long(p->argc, p->argv, p->shortopts, p->opts, NULL);
    if (c == '?' || c == ':') {
        option_error(p, c);
        return 0;
    }
    if (optarg && optind > 1 && optarg == p->argv[optind - 1])
        *value_at = optind - 1;
    return c;
}

static void start(struct parser *p, int argc, char **argv, const char *cmd, const char *shortopts,
                  const struct option *opts)
{
    *p = (struct parser){argc, argv, cmd, shortopts, opts};
    optind = 0; /* glibc: start over, forgetting any earlier parse */
}

/* Stores a single-value option; giving one twice is a usage error (the last one winning silently
 * hides a mistake in a CI script). */
static bool set_once(const struct parser *p, int code, const char **slot, const char *value)
{
    if (*slot) {
        cli_err("%s: --%s given twice ('%s', then '%s'); it takes one value; see pqleak %s --help", p->cmd,
                long_name(p, code), *slot, value, p->cmd);
        return false;
    }
    *slot = value;
    return true;
}

void cli_paths_free(struct cli_paths *p)
{
    free(p->v);
    *p = (struct cli_paths){0};
}

static void paths_add(struct cli_paths *p, const char *path)
{
    p->v = cli_xrealloc(p->v, (p->n + 1) * sizeof *p->v);
    p->v[p->n++] = path;
}

/* Where an option's value goes: exactly one of the pointers is set. */
struct slot {
    int code;
    const char **value;     /* a single-value option: given at most once */
    bool *flag;             /* an option without value */
    struct cli_paths *list; /* an option that may be repeated, its values adding up */
};

/* Runs getopt_long over the subcommand's options, storing each through its slot (the list ends with
 * code 0). Returns CLI_PARSED_HELP at --help, CLI_PARSED_BAD after one line. */
static enum cli_parsed parse_options(const struct parser *p, const struct slot *slots, int *value_at)
{
    int c;
    while ((c = next_option(p, value_at)) != -1) {
        if (c == OPT_HELP)
            return CLI_PARSED_HELP;
        const struct slot *s = slots;
        while (s->code && s->code != c)
            s++;
        if (!s->code) /* 0: next_option said what is wrong */
            return CLI_PARSED_BAD;
        if (s->flag)
            *s->flag = true;
        else if (s->list)
            paths_add(s->list, optarg);
        else if (!set_once(p, c, s->value, optarg))
            return CLI_PARSED_BAD;
    }
    return CLI_PARSED_OK;
}

/* Checks the values run's options hold (numbers only; files are the run's to check). */
static bool run_values_ok(struct cli_run_opts *o, const char *exitcode)
{
    /* Standard output is the command's: a report there would be mixed into whatever it prints. */
    const char *dash = o->json && !strcmp(o->json, "-")     ? "--json"
                       : o->junit && !strcmp(o->junit, "-") ? "--junit"
                                                            : NULL;
    if (dash) {
        cli_err("run: %s -: standard output belongs to the command; give a file name; see pqleak run --help",
                dash);
        return false;
    }
    long n;
    double s;
    if (o->max_conns && !cli_parse_long(o->max_conns, 0, MAX_CONNS_LIMIT, &n)) {
        cli_err("run: --max-conns '%s' is not a whole number from 0 to %d", o->max_conns, MAX_CONNS_LIMIT);
        return false;
    }
    if (o->checkout_timeout && !cli_parse_seconds(o->checkout_timeout, CHECKOUT_TIMEOUT_LIMIT, &s)) {
        cli_err("run: --checkout-timeout '%s' is not a number of seconds from 0 to %.0f", o->checkout_timeout,
                CHECKOUT_TIMEOUT_LIMIT);
        return false;
    }
    if (exitcode) {
        if (!cli_parse_long(exitcode, 0, 255, &n)) {
            cli_err("run: --exitcode '%s' is not an exit status from 0 to 255", exitcode);
            return false;
        }
        o->exitcode = (int)n;
    }
    return true;
}

/* Finds run's COMMAND after the options: only after a "--" that was not an option's value. */
static bool run_command(const struct parser *p, int value_at, struct cli_run_opts *o)
{
    bool dashdash = optind > 1 && optind - 1 != value_at && strcmp(p->argv[optind - 1], "--") == 0;
    if (optind < p->argc && !dashdash) {
        cli_err("run: expected -- before the command, got '%s'; see pqleak run --help", p->argv[optind]);
        return false;
    }
    if (optind >= p->argc) {
        if (dashdash)
            cli_err("run: no command after --; see pqleak run --help");
        else
            cli_err("run: missing -- COMMAND; see pqleak run --help");
        return false;
    }
    o->command = p->argv + optind;
    return true;
}

enum cli_parsed cli_args_run(int argc, char **argv, struct cli_run_opts *o)
{
    *o = (struct cli_run_opts){.exitcode = CLI_EXIT_LEAKS};
    struct parser p;
    /* "+": the first operand ends the options, so the command's own options are never ours. */
    start(&p, argc, argv, "run", "+:h", run_options);
    const char *exitcode = NULL;
    const struct slot slots[] = {
        {OPT_REPORT_DIR, .value = &o->report_dir},
        {OPT_JSON, .value = &o->json},
        {OPT_JUNIT, .value = &o->junit},
        {OPT_SUPPRESSIONS, .list = &o->suppressions},
        {OPT_MAX_CONNS, .value = &o->max_conns},
        {OPT_CHECKOUT_TIMEOUT, .value = &o->checkout_timeout},
        {OPT_EXITCODE, .value = &exitcode},
        {OPT_NO_FAIL, .flag = &o->no_fail},
        {OPT_STRICT, .flag = &o->strict},
        {OPT_FULL_STACKS, .flag = &o->full_stacks},
        {0},
    };
    int value_at = -1;
    enum cli_parsed r = parse_options(&p, slots, &value_at);
    if (r == CLI_PARSED_OK && !(run_command(&p, value_at, o) && run_values_ok(o, exitcode)))
        r = CLI_PARSED_BAD;
    if (r != CLI_PARSED_OK)
        cli_paths_free(&o->suppressions);
    return r;
}

/* The operands left after the options, NULL-terminated (argv is); none at all is a usage error. */
static char **operands(const struct parser *p, const char *what)
{
    if (optind >= p->argc) {
        cli_err("%s: no %s given; see pqleak %s --help", p->cmd, what, p->cmd);
        return NULL;
    }
    return p->argv + optind;
}

enum cli_parsed cli_args_report(int argc, char **argv, struct cli_report_opts *o)
{
    *o = (struct cli_report_opts){0};
    struct parser p;
    start(&p, argc, argv, "report", ":h", report_options);
    const struct slot slots[] = {
        {OPT_JSON, .flag = &o->json},
        {OPT_JUNIT, .value = &o->junit},
        {OPT_SUPPRESSIONS, .list = &o->suppressions},
        {OPT_STRICT, .flag = &o->strict},
        {OPT_FULL_STACKS, .flag = &o->full_stacks},
        {0},
    };
    int value_at = -1;
    enum cli_parsed r = parse_options(&p, slots, &value_at);
    if (r == CLI_PARSED_OK && o->junit && !strcmp(o->junit, "-")) {
        cli_err("report: --junit -: standard output carries the summary; give a file name; see pqleak "
                "report --help");
        r = CLI_PARSED_BAD;
    }
    if (r == CLI_PARSED_OK && !(o->paths = operands(&p, "report files or directories")))
        r = CLI_PARSED_BAD;
    if (r != CLI_PARSED_OK)
        cli_paths_free(&o->suppressions);
    return r;
}

enum cli_parsed cli_args_suppressions(int argc, char **argv, struct cli_suppressions_opts *o)
{
    *o = (struct cli_suppressions_opts){0};
    struct parser p;
    start(&p, argc, argv, "suppressions", ":h", help_only_options);
    int value_at = -1;
    enum cli_parsed r = parse_options(&p, (const struct slot[]){{0}}, &value_at);
    if (r == CLI_PARSED_OK && !(o->paths = operands(&p, "report files or directories")))
        r = CLI_PARSED_BAD;
    return r;
}
/* Checks status's operand (one pid) and --timeout. */
static bool status_values_ok(const struct parser *p, struct cli_status_opts *o, const char *timeout)
{
    char **pids = operands(p, "process id");
    if (!pids)
        return false;
    if (pids[1]) {
        cli_err("status: one process id only, got '%s' and '%s'; see pqleak status --help", pids[0], pids[1]);
        return false;
    }
    long n;
    if (!cli_parse_long(pids[0], 1, PID_LIMIT, &n)) {
        cli_err("status: '%s' is not a process id (a whole number from 1 to %ld)", pids[0], PID_LIMIT);
        return false;
    }
    o->pid = (int)n;
    if (timeout && (!cli_parse_seconds(timeout, STATUS_TIMEOUT_LIMIT, &o->timeout) || o->timeout <= 0)) {
        cli_err("status: --timeout '%s' is not a number of seconds above 0 and up to %.0f", timeout,
                STATUS_TIMEOUT_LIMIT);
        return false;
    }
    return true;
}

enum cli_parsed cli_args_status(int argc, char **argv, struct cli_status_opts *o)
{
    *o = (struct cli_status_opts){.timeout = STATUS_TIMEOUT_DEFAULT};
    struct parser p;
    start(&p, argc, argv, "status", ":h", status_options);
    const char *timeout = NULL;
    const struct slot slots[] = {{OPT_JSON, .flag = &o->json}, {OPT_TIMEOUT, .value = &timeout}, {0}};
    int value_at = -1;
    enum cli_parsed r = parse_options(&p, slots, &value_at);
    if (r == CLI_PARSED_OK && !status_values_ok(&p, o, timeout))
        r = CLI_PARSED_BAD;
    return r;
}

/* top's values as written, checked by top_values_ok. */
struct top_values {
    const char *user, *interval, *timeout, *sort;
    bool all_users;
};

/* A user name, else a uid in digits. */
static bool parse_user(const char *s, unsigned *out)
{
    long n;
    struct passwd *pw = getpwnam(s);
    if (pw)
        *out = pw->pw_uid;
    else if (cli_parse_long(s, 0, 0x7fffffffL, &n))
        *out = (unsigned)n;
    else
        return false;
    return true;
}

/* Checks top's values (no operand at all) into o. */
static bool top_values_ok(const struct parser *p, const struct top_values *v, struct cli_top_opts *o)
{
    static const char *const sorts[] = {
        [TOP_SORT_TX] = "tx", [TOP_SORT_AGE] = "age", [TOP_SORT_IDLE] = "idle"};
    if (optind < p->argc) {
        cli_err("top: unexpected argument '%s'; see pqleak top --help", p->argv[optind]);
        return false;
    }
    if (v->user && !parse_user(v->user, &o->user)) {
        cli_err("top: --user '%s' is no user name or uid", v->user);
        return false;
    }
    if (v->interval &&
        (!cli_parse_seconds(v->interval, TOP_INTERVAL_LIMIT, &o->interval) || o->interval <= 0)) {
        cli_err("top: --interval '%s' is not a number of seconds above 0 and up to %.0f", v->interval,
                TOP_INTERVAL_LIMIT);
        return false;
    }
    if (v->timeout && (!cli_parse_seconds(v->timeout, TOP_TIMEOUT_LIMIT, &o->timeout) || o->timeout <= 0)) {
        cli_err("top: --timeout '%s' is not a number of seconds above 0 and up to %.0f", v->timeout,
                TOP_TIMEOUT_LIMIT);
        return false;
    }
    if (v->sort) {
        size_t i = 0;
        while (i < sizeof sorts / sizeof sorts[0] && strcmp(v->sort, sorts[i]) != 0)
            i++;
        if (i == sizeof sorts / sizeof sorts[0]) {
            cli_err("top: --sort '%s' is not one of tx, age, idle", v->sort);
            return false;
        }
        o->sort = (enum top_sort)i;
    }
    if (v->user && v->all_users) {
        cli_err("top: --user and --all-users exclude each other");
        return false;
    }
    o->user_given = v->user != NULL;
    /* Root sees every user's processes unless --user names one. */
    o->all_users = v->all_users || (!v->user && geteuid() == 0);
    return true;
}

enum cli_parsed cli_args_top(int argc, char **argv, struct cli_top_opts *o)
{
    *o = (struct cli_top_opts){.timeout = TOP_TIMEOUT_DEFAULT, .sort = TOP_SORT_TX};
    struct parser p;
    start(&p, argc, argv, "top", ":h", top_options);
    struct top_values v = {0};
    const struct slot slots[] = {
        {OPT_JSON, .flag = &o->json},         {OPT_DB, .value = &o->db},
        {OPT_USER, .value = &v.user},         {OPT_ALL_USERS, .flag = &v.all_users},
        {OPT_INTERVAL, .value = &v.interval}, {OPT_SORT, .value = &v.sort},
        {OPT_TIMEOUT, .value = &v.timeout},   {0},
    };
    int value_at = -1;
    enum cli_parsed r = parse_options(&p, slots, &value_at);
    if (r == CLI_PARSED_OK && !top_values_ok(&p, &v, o))
        r = CLI_PARSED_BAD;
    return r;
}
