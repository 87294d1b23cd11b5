/* The one table of PQLEAK_* settings: name, JSON key, type, default, range and help text; each setting
 * is a PQLEAK_NAME variable or a name=value item of PQLEAK_OPTIONS (the variable wins). Nothing else in
 * the shim reads a PQLEAK_* variable. pql_settings_load() runs once at the first connection, on the
 * connecting thread, never in signal context; pql_settings_early_bool() serves the two switches needed
 * before that (library constructors); tests call both with their own getenv and warning sink. */
#include "config.h"

#include "buf.h"
#include "escape.h"
#include "names.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum kind { K_STR, K_INT, K_SECONDS, K_BOOL, K_SIGNAL, K_PYTHON };

struct setting {
    const char *name;
    const char *json; /* key in the report's "settings" object */
    enum kind kind;
    size_t off;
    const char *def;
    double min, max;
    const char *help;
};

#define F(field) offsetof(struct pql_settings, field)
static const struct setting table[] = {
    {"PQLEAK_LOG", PQL_F_LOG, K_STR, F(log), "stderr", 0, 0,
     "where text goes: stderr, or a file path in which %p becomes the pid"},
    {"PQLEAK_REPORT_DIR", PQL_F_REPORT_DIR, K_STR, F(report_dir), "", 0, 0,
     "directory for JSON reports (one file per report, mode 0600)"},
    {"PQLEAK_EXITCODE", PQL_F_EXITCODE, K_INT, F(exitcode), "0", 0, 255,
     "if > 0 and leaks are found at exit, the process exits with this status"},
    {"PQLEAK_SUPPRESSIONS", PQL_F_SUPPRESSIONS, K_STR, F(suppressions), "", 0, 0,
     "suppressions file: one leak:PATTERN or tx:PATTERN rule a line"},
    {"PQLEAK_STACK_DEPTH", PQL_F_STACK_DEPTH, K_INT, F(stack_depth), "32", 1, 256, "frames kept per stack"},
    {"PQLEAK_MAX_CONNS", PQL_F_MAX_CONNS, K_INT, F(max_conns), "0", 0, 1000000,
     "cap on connections open at once in the process; 0 = no cap"},
    {"PQLEAK_CHECKOUT_TIMEOUT", PQL_F_CHECKOUT_TIMEOUT_S, K_SECONDS, F(checkout_timeout), "30", 0, 86400,
     "seconds a blocking connect waits for a free slot at the cap; 0 = refuse at once"},
    {"PQLEAK_MAX_CONNS_PER_TARGET", PQL_F_MAX_CONNS_PER_TARGET, K_INT, F(max_conns_per_target), "0", 0,
     1000000, "cap per host+port+dbname+user; 0 = none"},
    {"PQLEAK_WARN_PCT", PQL_F_WARN_PCT, K_INT, F(warn_pct), "80", 1, 100,
     "utilization warning level, percent of the cap"},
    {"PQLEAK_CRIT_PCT", PQL_F_CRIT_PCT, K_INT, F(crit_pct), "95", 1, 100,
     "utilization critical level, percent of the cap"},
    {"PQLEAK_SIGNAL", PQL_F_SIGNAL, K_SIGNAL, F(signal), "USR1", 0, 0,
     "signal that asks for a live report: USR1, USR2 or none"},
    {"PQLEAK_TRACK_QUERIES", PQL_F_TRACK_QUERIES, K_BOOL, F(track_queries), "1", 0, 0,
     "0: follow connects and closes only, not each command (the cheapest: no transaction stacks, idle "
     "times, idle-in-transaction suspects or misuse findings)"},
    {"PQLEAK_SUSPECT_AGE", PQL_F_SUSPECT_AGE_S, K_SECONDS, F(suspect_age), "0", 0, 1e9,
     "seconds open after which a connection is reported as a suspect; 0 = off"},
    {"PQLEAK_SUSPECT_IDLE_TX", PQL_F_SUSPECT_IDLE_TX_S, K_SECONDS, F(suspect_idle_tx), "0", 0, 1e9,
     "seconds idle inside a transaction after which a connection is a suspect; 0 = off"},
    {"PQLEAK_METRICS", PQL_F_METRICS, K_STR, F(metrics), "", 0, 0,
     "Prometheus text-format file (%p becomes the pid), rewritten every PQLEAK_METRICS_INTERVAL seconds, "
     "removed at exit"},
    {"PQLEAK_METRICS_INTERVAL", PQL_F_METRICS_INTERVAL_S, K_SECONDS, F(metrics_interval), "10", 0.1, 86400,
     "seconds between metrics rewrites"},
    {"PQLEAK_SERVICE", PQL_F_SERVICE, K_STR, F(service), "", 0, 0,
     "the metrics' service label; unset: the program's base name (an interpreter's: the script's)"},
    {"PQLEAK_PYTHON", PQL_F_PYTHON, K_PYTHON, F(python), "auto", 0, 0,
     "auto: add Python frames to stacks in a CPython process; off"},
    {"PQLEAK_STRICT", PQL_F_STRICT, K_BOOL, F(strict), "0", 0, 0,
     "1: connections held until exit count as leaks"},
    {"PQLEAK_TRACE", PQL_F_TRACE, K_BOOL, F(trace), "0", 0, 0,
     "1: one log line per open, close, wait, refusal"},
    {"PQLEAK_DISABLE", PQL_F_DISABLE, K_BOOL, F(disable), "0", 0, 0,
     "1: pass everything through and do nothing else"},
    {"PQLEAK_TEXT_REPORT", PQL_F_TEXT_REPORT, K_BOOL, F(text_report), "1", 0, 0,
     "0: no text leak report at exit, JSON only (pqleak run sets this)"},
    {"PQLEAK_FULL_STACKS", PQL_F_FULL_STACKS, K_BOOL, F(full_stacks), "0", 0, 0,
     "1: print every frame of text stacks (by default runs of library and runtime frames are folded)"},
    {"PQLEAK_HOOK_DLSYM", PQL_F_HOOK_DLSYM, K_BOOL, F(hook_dlsym), "1", 0, 0,
     "0: do not answer dlsym/dlopen for libpq (psycopg 3 and PHP connections then go unseen)"},
    {"PQLEAK_STRIP_PATH_PREFIX", PQL_F_STRIP_PATH_PREFIX, K_STR, F(strip_path_prefix), "", 0, 0,
     "text reports print file and module paths without everything up to and including this prefix"},
};
#undef F

#define NSETTINGS (sizeof(table) / sizeof(table[0]))

/* Parses raw into the field; returns false when malformed. Does not touch the field on failure. */
static bool parse(const struct setting *t, const char *raw, void *field)
{
    char *end;
    switch (t->kind) {
    case K_STR:
        if (strlen(raw) >= PQL_PATH_MAX)
            return false;
        strcpy(field, raw);
        return true;
    case K_INT: {
        errno = 0;
        long v = strtol(raw, &end, 10);
        if (errno || end == raw || *end || v < t->min || v > t->max)
            return false;
        *(int *)field = (int)v;
        return true;
    }
    case K_SECONDS: {
        errno = 0;
        double v = strtod(raw, &end);
        if (errno || end == raw || *end || !isfinite(v) || v < t->min || v > t->max)
            return false;
        *(double *)field = v;
        return true;
    }
    case K_BOOL:
        if (!strcmp(raw, "1") || !strcasecmp(raw, "true") || !strcasecmp(raw, "yes") ||
            !strcasecmp(raw, "on")) {
            *(bool *)field = true;
            return true;
        }
        if (!strcmp(raw, "0") || !strcasecmp(raw, "false") || !strcasecmp(raw, "no") ||
            !strcasecmp(raw, "off") || !*raw) {
            *(bool *)field = false;
            return true;
        }
        return false;
    case K_SIGNAL:
        return pql_signal_parse(raw, (int *)field);
    case K_PYTHON:
        if (!strcasecmp(raw, "auto") || !strcmp(raw, "1") || !strcasecmp(raw, "on"))
            *(bool *)field = true;
        else if (!strcasecmp(raw, "off") || !strcmp(raw, "0"))
            *(bool *)field = false;
        else
            return false;
        return true;
    }
    return false;
}

static const char *expected(const struct setting *t, char *buf, size_t len)
{
    switch (t->kind) {
    case K_STR:
        snprintf(buf, len, "a path shorter than %d bytes", PQL_PATH_MAX);
        break;
    case K_INT:
        snprintf(buf, len, "a whole number from %.0f to %.0f", t->min, t->max);
        break;
    case K_SECONDS:
        snprintf(buf, len, "seconds from %g to %g", t->min, t->max);
        break;
    case K_BOOL:
        snprintf(buf, len, "0 or 1");
        break;
    case K_SIGNAL:
        snprintf(buf, len, "USR1, USR2 or none");
        break;
    case K_PYTHON:
        snprintf(buf, len, "auto or off");
        break;
    }
    return buf;
}

/* raw escaped (common/escape.h: control bytes as \xNN), so that a value cannot break or forge a log
 * line; cut at a whole escape to fit len. */
static const char *escaped(const char *raw, char *buf, size_t len)
{
    return pql_escape_str(buf, len, raw);
}

/* The value in effect, as a user would write it ("unset" for an empty path), for "using ..." */
static const char *shown(const struct setting *t, const void *field, char *buf, size_t len)
{
    switch (t->kind) {
    case K_STR:
        return *(const char *)field ? escaped(field, buf, len) : "unset";
    case K_INT:
        snprintf(buf, len, "%d", *(const int *)field);
        return buf;
    case K_SECONDS:
        snprintf(buf, len, "%g", *(const double *)field);
        return buf;
    case K_BOOL:
        return *(const bool *)field ? "1" : "0";
    case K_SIGNAL:
        return pql_signal_name(*(const int *)field);
    case K_PYTHON:
        return *(const bool *)field ? "auto" : "off";
    }
    return "";
}

/* One warning line to warn, formatted; nothing when warn is NULL (a caller that wants none). */
static __attribute__((format(printf, 2, 3))) void warnf(pql_warn_fn warn, const char *fmt, ...)
{
    if (!warn)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    warn(line);
}

/* Parses raw into the setting's field; on failure warns "WHO='raw' is not EXPECTED; using IN-EFFECT"
 * (who: the variable, or "PQLEAK_OPTIONS name") and keeps the field. */
static void apply(const struct setting *t, const char *who, const char *raw, struct pql_settings *s,
                  pql_warn_fn warn)
{
    void *field = (char *)s + t->off;
    if (parse(t, raw, field) || !warn)
        return;
    char exp[64], value[201], now[201];
    warnf(warn, "%s='%s' is not %s; using %s", who, escaped(raw, value, sizeof(value)),
          expected(t, exp, sizeof(exp)), shown(t, field, now, sizeof(now)));
}

/* ---- PQLEAK_OPTIONS: name=value items separated by ':', as LSAN_OPTIONS ----
 * A value may be quoted with ' or " to hold a ':' (a path). Read without copying or allocating, so that
 * the early path (library constructors) can use it too. */

#define OPTIONS_VAR   "PQLEAK_OPTIONS"
#define OPTIONS_MAX   8192 /* bytes; longer is malformed */
#define PREFIX_LEN    7    /* strlen("PQLEAK_") */
#define NEAR_DISTANCE 2    /* an unknown PQLEAK_* variable this close to a setting's name is a misspelling */

struct option {
    const char *name, *value;
    size_t name_len, value_len;
};

/* Reads the item at *p into *o and moves *p past it (and its ':'). Returns 1 for an item, 0 at the end,
 * -1 when malformed (*why says how). Empty items (a doubled or trailing ':') are skipped. */
static int option_next(const char **p, struct option *o, const char **why)
{
    const char *c = *p;
    while (*c == ':')
        c++;
    if (!*c)
        return 0;
    o->name = c;
    while ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')
        c++;
    o->name_len = (size_t)(c - o->name);
    if (*c != '=' || !o->name_len) {
        *why = o->name_len ? "a name must be followed by '='"
                           : "an item must start with a name (letters, digits, _)";
        return -1;
    }
    c++;
    if (*c == '\'' || *c == '"') {
        char q = *c++;
        o->value = c;
        while (*c && *c != q)
            c++;
        if (!*c) {
            *why = "a quote is not closed";
            return -1;
        }
        o->value_len = (size_t)(c - o->value);
        c++;
        if (*c && *c != ':') {
            *why = "a quoted value must be followed by ':' or the end";
            return -1;
        }
    } else {
        o->value = c;
        while (*c && *c != ':')
            c++;
        o->value_len = (size_t)(c - o->value);
    }
    *p = c;
    return 1;
}

/* True when PQLEAK_OPTIONS's value opts is well formed; else *why and *item (1-based) say where. */
static bool options_valid(const char *opts, const char **why, int *item)
{
    struct option o;
    int r;
    *item = 0;
    if (strnlen(opts, OPTIONS_MAX + 1) > OPTIONS_MAX) {
        *why = "it is longer than 8192 bytes";
        return false;
    }
    do {
        ++*item;
        r = option_next(&opts, &o, why);
    } while (r > 0);
    return r == 0;
}

/* The setting an option names: its variable's name without "PQLEAK_", in any case. */
static const struct setting *setting_for(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(table[i].name) == PREFIX_LEN + len && !strncasecmp(table[i].name + PREFIX_LEN, name, len))
            return &table[i];
    return NULL;
}

/* Levenshtein distance between a and b (letters in any case), both at most 63 bytes. */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t row[64];
    if (la > 63 || lb > 63)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The setting whose name (without "PQLEAK_") is nearest to name; *d gets the distance. */
static const struct setting *nearest(const char *name, size_t len, size_t *d)
{
    const struct setting *best = &table[0];
    *d = (size_t)-1;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *n = table[i].name + PREFIX_LEN;
        size_t di = distance(name, len, n, strlen(n));
        if (di < *d) {
            *d = di;
            best = &table[i];
        }
    }
    return best;
}

/* Applies PQLEAK_OPTIONS's items in order (a later item wins); returns true when help=1 was among them.
 * A malformed value is ignored whole, with one warning. */
static bool load_options(const char *opts, struct pql_settings *s, pql_warn_fn warn)
{
    const char *why;
    int item;
    char value[201];
    if (!options_valid(opts, &why, &item)) {
        warnf(warn, "%s='%s' is malformed at item %d (%s); expected name=value:name=value; ignored",
              OPTIONS_VAR, escaped(opts, value, sizeof(value)), item, why);
        return false;
    }
    bool help = false;
    struct option o;
    char raw[PQL_PATH_MAX + 1], who[96];
    while (option_next(&opts, &o, &why) > 0) {
        /* A value too long for any setting is kept too long, so that parse() refuses it. */
        size_t n = o.value_len < sizeof(raw) - 1 ? o.value_len : sizeof(raw) - 1;
        memcpy(raw, o.value, n);
        raw[n] = '\0';
        const struct setting *t = setting_for(o.name, o.name_len);
        snprintf(who, sizeof(who), "%s %.*s", OPTIONS_VAR, (int)(o.name_len < 64 ? o.name_len : 64), o.name);
        if (t) {
            s->signal_set |= t->kind == K_SIGNAL;
            apply(t, who, raw, s, warn);
        } else if (o.name_len == 4 && !strncasecmp(o.name, "help", 4)) {
            bool want;
            static const struct setting help_option = {"help", "", K_BOOL, 0, "0", 0, 0, ""};
            if (parse(&help_option, raw, &want))
                help = want;
            else
                warnf(warn, "%s help='%s' is not 0 or 1; using 0", OPTIONS_VAR,
                      escaped(raw, value, sizeof(value)));
        } else if (warn) {
            size_t d;
            const struct setting *near = nearest(o.name, o.name_len, &d);
            char lower[64];
            size_t k = 0;
            for (const char *c = near->name + PREFIX_LEN; *c && k + 1 < sizeof(lower); c++)
                lower[k++] = (char)tolower((unsigned char)*c);
            lower[k] = '\0';
            warnf(warn, "%s: '%.*s' is not a setting (the nearest is %s, PQLEAK_%s); ignored", OPTIONS_VAR,
                  (int)(o.name_len < 64 ? o.name_len : 64), o.name, lower, near->name + PREFIX_LEN);
        }
    }
    return help;
}

/* The option named key (without "PQLEAK_", any case) in PQLEAK_OPTIONS's value, copied into buf; false
 * when absent, when opts is malformed or when the value does not fit. The last item of that name wins. */
static bool option_value(const char *opts, const char *key, char *buf, size_t len)
{
    const char *why;
    int item;
    bool found = false;
    if (!opts || !options_valid(opts, &why, &item))
        return false;
    struct option o;
    size_t klen = strlen(key);
    while (option_next(&opts, &o, &why) > 0) {
        if (o.name_len != klen || strncasecmp(o.name, key, klen))
            continue;
        found = o.value_len < len;
        if (found) {
            memcpy(buf, o.value, o.value_len);
            buf[o.value_len] = '\0';
        }
    }
    return found;
}

extern char **environ;

/* One warning for each PQLEAK_* variable of the environment that is set (as get sees it) and is not a
 * setting but is within NEAR_DISTANCE edits of one: a misspelling. Other PQLEAK_* names are left alone:
 * scripts, pqleak's own tests among them, use the prefix for their own variables. */
static void warn_unknown(pql_getenv_fn get, pql_warn_fn warn)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "PQLEAK_", PREFIX_LEN) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        char name[72];
        if (len >= sizeof(name))
            continue;
        memcpy(name, *e, len);
        name[len] = '\0';
        /* PQLEAK_LIB: the command's variable, which `pqleak run` passes on to every process. */
        if (!strcmp(name, OPTIONS_VAR) || !strcmp(name, "PQLEAK_LIB") ||
            setting_for(name + PREFIX_LEN, len - PREFIX_LEN))
            continue;
        size_t d;
        const struct setting *near = nearest(name + PREFIX_LEN, len - PREFIX_LEN, &d);
        if (d > NEAR_DISTANCE || !get(name))
            continue;
        char shown_name[72 * 4];
        warnf(warn, "%s is not a setting (the nearest is %s); ignored",
              escaped(name, shown_name, sizeof(shown_name)), near->name);
    }
}

void pql_settings_load(struct pql_settings *s, pql_getenv_fn get, pql_warn_fn warn)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < NSETTINGS; i++)
        parse(&table[i], table[i].def, (char *)s + table[i].off); /* defaults: checked by the unit tests */
    const char *opts = get ? get(OPTIONS_VAR) : NULL;
    bool help = opts && load_options(opts, s, warn);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *t = &table[i];
        const char *raw = get ? get(t->name) : NULL;
        if (!raw)
            continue;
        if (t->kind == K_SIGNAL)
            s->signal_set = true;
        apply(t, t->name, raw, s, warn);
    }
    if (get && warn)
        warn_unknown(get, warn);
    /* A critical level below the warning level would warn in the wrong order. */
    if (s->crit_pct < s->warn_pct) {
        warnf(warn, "PQLEAK_CRIT_PCT=%d is below PQLEAK_WARN_PCT=%d; using %d", s->crit_pct, s->warn_pct,
              s->warn_pct);
        s->crit_pct = s->warn_pct;
    }
    /* Idle in a transaction is known only from the commands. */
    if (!s->track_queries && s->suspect_idle_tx > 0) {
        warnf(
            warn,
            "PQLEAK_SUSPECT_IDLE_TX=%g needs the commands followed, which PQLEAK_TRACK_QUERIES=0 turns off; "
            "using 0",
            s->suspect_idle_tx);
        s->suspect_idle_tx = 0;
    }
    if (help) {
        dprintf(2,
                "pqleak: the settings, as PQLEAK_NAME=VALUE variables or as %s=name=value:name=value (names "
                "in lower case without PQLEAK_; a variable wins over an option). NAME, default, meaning:\n",
                OPTIONS_VAR);
        pql_settings_help(2);
        dprintf(2, "pqleak: %s help=1: pqleak does nothing else in this process (as PQLEAK_DISABLE=1)\n",
                OPTIONS_VAR);
        s->disable = true;
    }
}
void pql_settings_json(const struct pql_settings *s, struct pql_buf *b)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *t = &table[i];
        const void *field = (const char *)s + t->off;
        pql_buf_printf(b, "%s\"%s\": ", i ? ", " : "", t->json);
        switch (t->kind) {
        case K_STR:
            pql_buf_json_str(b, *(const char *)field ? field : NULL);
            break;
        case K_INT:
            pql_buf_printf(b, "%d", *(const int *)field);
            break;
        case K_SECONDS:
            pql_buf_json_num(b, *(const double *)field);
            break;
        case K_BOOL:
            pql_buf_puts(b, *(const bool *)field ? "true" : "false");
            break;
        case K_SIGNAL:
            pql_buf_json_str(b, pql_signal_name(*(const int *)field));
            break;
        case K_PYTHON:
            pql_buf_json_str(b, *(const bool *)field ? "auto" : "off");
            break;
        }
    }
}

void pql_env_view_take(struct pql_env_view *v, char *const *env)
{
    v->n = 0;
    for (char *const *e = env; e && *e; e++) {
        if (strncmp(*e, "PQLEAK_", PREFIX_LEN) != 0)
            continue;
        if (v->n == PQL_ENV_VIEW_MAX) {
            v->n = -1;
            return;
        }
        v->entry[v->n++] = *e;
    }
}

const char *pql_env_view_get(const struct pql_env_view *v, const char *name)
{
    if (v->n < 0 || strncmp(name, "PQLEAK_", PREFIX_LEN) != 0)
        return getenv(name);
    size_t len = strlen(name);
    for (int i = 0; i < v->n; i++)
        if (!strncmp(v->entry[i], name, len) && v->entry[i][len] == '=')
            return v->entry[i] + len + 1;
    return NULL;
}

bool pql_settings_early_bool(const char *name, pql_getenv_fn get)
{
    /* The switch alone, not a whole settings struct (kilobytes of paths): a dlsym hook may run on a
     * thread with a small stack. */
    bool value = false;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *t = &table[i];
        if (t->kind != K_BOOL || strcmp(t->name, name) != 0)
            continue;
        void *field = &value;
        const char *raw = get ? get(t->name) : NULL;
        char opt[16];
        /* PQLEAK_OPTIONS is read only when the variable is unset: one getenv more, nothing when unset. */
        if (!raw && get && option_value(get(OPTIONS_VAR), t->name + PREFIX_LEN, opt, sizeof(opt)))
            raw = opt;
        if (!raw || !parse(t, raw, field))
            parse(t, t->def, field);
        return value;
    }
    return false;
}

void pql_settings_help(int fd)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        dprintf(fd, "%-28s %-8s %s\n", table[i].name, *table[i].def ? table[i].def : "unset", table[i].help);
}
