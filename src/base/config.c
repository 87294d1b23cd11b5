/* The one table of PQLEAK_* settings: name, JSON key, type, default, range and help text. Nothing else
 * in the shim reads a PQLEAK_* variable. pql_settings_load() runs once at the first connection, on the
 * connecting thread, never in signal context; pql_settings_early_bool() serves the two switches needed
 * before that (library constructors); tests call both with their own getenv and warning sink. */
#include "config.h"

#include "buf.h"
#include "names.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
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
    {"PQLEAK_SUSPECT_AGE", PQL_F_SUSPECT_AGE_S, K_SECONDS, F(suspect_age), "0", 0, 1e9,
     "seconds open after which a connection is reported as a suspect; 0 = off"},
    {"PQLEAK_SUSPECT_IDLE_TX", PQL_F_SUSPECT_IDLE_TX_S, K_SECONDS, F(suspect_idle_tx), "0", 0, 1e9,
     "seconds idle inside a transaction after which a connection is a suspect; 0 = off"},
    {"PQLEAK_METRICS", PQL_F_METRICS, K_STR, F(metrics), "", 0, 0,
     "Prometheus text-format file, rewritten whole every PQLEAK_METRICS_INTERVAL seconds"},
    {"PQLEAK_METRICS_INTERVAL", PQL_F_METRICS_INTERVAL_S, K_SECONDS, F(metrics_interval), "10", 0.1, 86400,
     "seconds between metrics rewrites"},
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
    case K_SIGNAL: {
        const char *n = raw;
        if (!strncasecmp(n, "SIG", 3))
            n += 3;
        if (!strcasecmp(n, "USR1"))
            *(int *)field = SIGUSR1;
        else if (!strcasecmp(n, "USR2"))
            *(int *)field = SIGUSR2;
        else if (!strcasecmp(n, "none") || !strcmp(n, "0"))
            *(int *)field = 0;
        else
            return false;
        return true;
    }
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

/* raw with every control byte written as \xNN, so that a value cannot break or forge a log line; at
 * most len - 1 bytes, cut at a whole escape. */
static const char *escaped(const char *raw, char *buf, size_t len)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p && o + 5 <= len; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
        else
            buf[o++] = (char)*p;
    }
    buf[o] = '\0';
    return buf;
}

void pql_settings_load(struct pql_settings *s, pql_getenv_fn get, pql_warn_fn warn)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *t = &table[i];
        void *field = (char *)s + t->off;
        if (!parse(t, t->def, field))
            continue; /* cannot happen: defaults are checked by the unit tests */
        const char *raw = get ? get(t->name) : NULL;
        if (raw && t->kind == K_SIGNAL)
            s->signal_set = true;
        if (!raw || parse(t, raw, field))
            continue;
        if (warn) {
            char line[512], exp[64], value[201];
            snprintf(line, sizeof(line), "%s='%s' is not %s; using %s", t->name,
                     escaped(raw, value, sizeof(value)), expected(t, exp, sizeof(exp)),
                     *t->def ? t->def : "unset");
            warn(line);
        }
    }
    /* A critical level below the warning level would warn in the wrong order. */
    if (s->crit_pct < s->warn_pct) {
        if (warn) {
            char line[256];
            snprintf(line, sizeof(line), "PQLEAK_CRIT_PCT=%d is below PQLEAK_WARN_PCT=%d; using %d",
                     s->crit_pct, s->warn_pct, s->warn_pct);
            warn(line);
        }
        s->crit_pct = s->warn_pct;
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
        case K_SIGNAL: {
            int sig = *(const int *)field;
            pql_buf_json_str(b, sig == SIGUSR1 ? "USR1" : sig == SIGUSR2 ? "USR2" : "none");
            break;
        }
        case K_PYTHON:
            pql_buf_json_str(b, *(const bool *)field ? "auto" : "off");
            break;
        }
    }
}

bool pql_settings_early_bool(const char *name, pql_getenv_fn get)
{
    struct pql_settings s;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *t = &table[i];
        if (t->kind != K_BOOL || strcmp(t->name, name) != 0)
            continue;
        void *field = (char *)&s + t->off;
        const char *raw = get ? get(t->name) : NULL;
        if (!raw || !parse(t, raw, field))
            parse(t, t->def, field);
        return *(bool *)field;
    }
    return false;
}

void pql_settings_help(int fd)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        dprintf(fd, "%-28s %-8s %s\n", table[i].name, *table[i].def ? table[i].def : "unset", table[i].help);
}
