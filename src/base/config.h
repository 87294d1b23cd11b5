/* The PQLEAK_* settings: one table drives defaults, parsing, warnings and the JSON "settings" object.
 * Loaded once, at the first connection, then read-only: any thread may read it without a lock. */
#ifndef PQL_CONFIG_H
#define PQL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define PQL_PATH_MAX 1024

struct pql_settings {
    char log[PQL_PATH_MAX];        /* "stderr" or a path; %p becomes the pid */
    char report_dir[PQL_PATH_MAX]; /* "" when unset */
    int exitcode;                  /* > 0: exit status when leaks are found */
    char suppressions[PQL_PATH_MAX];
    int stack_depth;
    int max_conns;           /* 0: no cap */
    double checkout_timeout; /* seconds */
    int max_conns_per_target;
    int warn_pct, crit_pct;
    int signal; /* signal number, 0 for none */
    double suspect_age, suspect_idle_tx;
    char metrics[PQL_PATH_MAX];
    char strip_path_prefix[PQL_PATH_MAX]; /* cut from paths in text reports; "" unset */
    double metrics_interval;
    char service[PQL_PATH_MAX]; /* the metrics' service label, "" for the program's name */
    bool python;                /* auto (true) or off */
    bool strict, trace, disable;
    bool text_report;   /* print the exit text report to the log */
    bool signal_set;    /* PQLEAK_SIGNAL was given (not the default) */
    bool full_stacks;   /* text stacks with every frame, none folded */
    bool hook_dlsym;    /* answer dlsym/dlopen for libpq (psycopg 3, PHP) */
    bool track_queries; /* follow every command (query.h); false: connects and closes only */
};

/* Reads one variable; returns NULL when unset. getenv in the shim, a table in tests. */
typedef const char *(*pql_getenv_fn)(const char *name);
/* Receives one complete warning line (without newline). */
typedef void (*pql_warn_fn)(const char *line);

/* Fills *s from the environment: defaults, then PQLEAK_OPTIONS's name=value items, then the PQLEAK_*
 * variables (a variable wins over an item). Every malformed value gives one call to warn naming the
 * variable or item, the bad value and the value used instead; so do a malformed PQLEAK_OPTIONS (ignored
 * whole), an item naming no setting, and a variable of environ that get reports set whose name is a
 * near miss of a setting's. With help=1 among the items, the settings table is printed to stderr and
 * s->disable is set. Loading never fails. */
void pql_settings_load(struct pql_settings *s, pql_getenv_fn get, pql_warn_fn warn);

/* The environment's PQLEAK_* entries, gathered in one pass over environ for pql_settings_load, whose
 * ~25 lookups would each pass over the whole environment with getenv (a fixed cost of every process
 * that connects). Past PQL_ENV_VIEW_MAX entries the view is not whole and lookups go to getenv. */
#define PQL_ENV_VIEW_MAX 64
struct pql_env_view {
    const char *entry[PQL_ENV_VIEW_MAX]; /* "PQLEAK_NAME=value", in environ's order */
    int n;                               /* -1: not whole */
};

/* Fills *v from env (environ's layout: NULL-terminated "NAME=value" strings). */
void pql_env_view_take(struct pql_env_view *v, char *const *env);

/* getenv(name) as it was when the view was taken: the first entry named name, its value; NULL when
 * none. A name without the PQLEAK_ prefix, or a view that is not whole, asks getenv itself. */
const char *pql_env_view_get(const struct pql_env_view *v, const char *name);

struct pql_buf;

/* Appends the settings as JSON object members ("max_conns": 0, ...) to b. */
void pql_settings_json(const struct pql_settings *s, struct pql_buf *b);

/* The value of one boolean setting (PQLEAK_DISABLE, PQLEAK_HOOK_DLSYM) before the settings are loaded:
 * the variable, else its PQLEAK_OPTIONS item, parsed as pql_settings_load would; its default when unset
 * or malformed (the warning comes with the full load). No allocation, no output: safe in library
 * constructors. */
bool pql_settings_early_bool(const char *name, pql_getenv_fn get);

/* Writes "NAME  default  help" lines for every setting to fd (for documentation and --help). */
void pql_settings_help(int fd);

#endif
