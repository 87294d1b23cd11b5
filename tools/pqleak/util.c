/* Helpers shared by every part of the pqleak command (see util.h). Single-threaded command-line code;
 * none of it is async-signal-safe. */
#include "util.h"

#include "escape.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_oom(void)
{
    static const char msg[] = "pqleak: out of memory\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing left to tell anyone */
    }
    exit(CLI_EXIT_USAGE);
}

void *cli_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        cli_oom();
    return p;
}

void *cli_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        cli_oom();
    return p;
}

void *cli_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        cli_oom();
    return q;
}

char *cli_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        cli_oom();
    return p;
}

char *cli_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        cli_oom();
    return s;
}

const char *cli_safe(const char *s)
{
    static char *ring[CLI_SAFE_KEEP];
    static size_t next;
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (pql_escape_clean(s, len, false))
        return s;
    size_t need = pql_escape(NULL, 0, s, len, false) + 1;
    char **slot = &ring[next++ % CLI_SAFE_KEEP];
    free(*slot);
    *slot = cli_xmalloc(need);
    pql_escape(*slot, need, s, len, false);
    return *slot;
}

void cli_err(const char *fmt, ...)
{
    char msg[4096], line[4 * sizeof msg + 16];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = m < 0 ? 0 : (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;
    /* One line whatever the message quotes: a report's or a file name's own newlines and escape
     * sequences (JSON parse errors quote the input) must not forge lines in a CI log. */
    size_t n = (size_t)snprintf(line, sizeof line, "pqleak: ");
    n += pql_escape(line + n, sizeof line - n - 1, msg, len, false);
    if (n > sizeof line - 2)
        n = strlen(line);
    line[n++] = '\n';
    fflush(stdout);
    if (write(STDERR_FILENO, line, n) < 0) {
        /* stderr is gone; the exit status still tells */
    }
}

void cli_vec_push(struct cli_vec *a, void *p)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = cli_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = p;
}

void cli_vec_free(struct cli_vec *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

const char *cli_status_word(int status)
{
    static const char *const w[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    return status >= CLI_STATUS_OK && status <= CLI_STATUS_UNKNOWN ? w[status] : "UNKNOWN";
}

void cli_now_iso(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
    /* strtol alone accepts " 12", "+12" and "12abc" prefixes; a limit must be exactly a number. */
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if ((*p < '0' || *p > '9') && !(p == s && *p == '-'))
            return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *s, double max, double *out)
{
    /* Only plain decimals: strtod would also take "inf", "nan", hex and exponents. */
    int dots = 0, digits = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.')
            dots++;
        else if (*p >= '0' && *p <= '9')
            digits++;
        else
            return false;
    }
    if (!digits || dots > 1)
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < 0 || v > max)
        return false;
    *out = v;
    return true;
}
