/* Report file names and the live-report directory (names.h), formatted by hand: no stdio, no
 * allocation, no locale, so any thread and signal handlers may call them. */
#include "names.h"

#include <string.h>

/* A bounded string under construction; ok turns false once something did not fit. */
struct out {
    char *buf;
    size_t len, n;
    bool ok;
};

static void put(struct out *o, const char *s)
{
    size_t k = strlen(s);
    if (!o->ok || o->n + k >= o->len) {
        o->ok = false;
        return;
    }
    memcpy(o->buf + o->n, s, k + 1);
    o->n += k;
}

static void put_ulong(struct out *o, unsigned long v)
{
    char digits[24];
    size_t i = sizeof digits;
    digits[--i] = '\0';
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, digits + i);
}

static void put_int(struct out *o, int v)
{
    if (v < 0) {
        put(o, "-");
        put_ulong(o, 0UL - (unsigned long)(long)v);
    } else {
        put_ulong(o, (unsigned long)v);
    }
}

static int done(struct out *o)
{
    if (!o->ok) {
        if (o->len)
            o->buf[0] = '\0';
        return -1;
    }
    return (int)o->n;
}

static struct out start(char *buf, size_t len)
{
    struct out o = {buf, len, 0, buf && len > 0 && len <= (size_t)0x7fffffff};
    if (o.ok)
        buf[0] = '\0';
    return o;
}

int pql_report_file_name(char *buf, size_t len, const char *dir, int pid, const char *trigger, unsigned seq)
{
    struct out o = start(buf, len);
    if (!dir || !trigger)
        o.ok = false;
    if (o.ok) {
        put(&o, dir);
        put(&o, "/" PQL_REPORT_PREFIX);
        put_int(&o, pid);
        put(&o, "-");
        put(&o, trigger);
        put(&o, "-");
        put_ulong(&o, seq);
        put(&o, PQL_REPORT_SUFFIX);
    }
    return done(&o);
}

/* Reads the decimal number at *p up to end (at least one digit, no sign, no overflow past max). */
static bool number(const char **p, const char *end, unsigned long max, unsigned long *v)
{
    const char *s = *p;
    unsigned long x = 0;
    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (max - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *p = s;
    *v = x;
    return true;
}

bool pql_report_file_parse(const char *name, int *pid, char *trigger, size_t tlen, unsigned *seq)
{
    size_t plen = strlen(PQL_REPORT_PREFIX), slen = strlen(PQL_REPORT_SUFFIX);
    if (!name || strncmp(name, PQL_REPORT_PREFIX, plen) != 0)
        return false;
    size_t n = strlen(name);
    if (n < plen + slen || strcmp(name + n - slen, PQL_REPORT_SUFFIX) != 0)
        return false;
    const char *p = name + plen, *end = name + n - slen;
    unsigned long v_pid, v_seq;
    if (!number(&p, end, 0x7fffffffUL, &v_pid) || p == end || *p != '-')
        return false;
    const char *t = ++p;
    /* TRIGGER runs to the last '-': the sequence number is what follows it. */
    const char *dash = NULL;
    for (const char *q = t; q < end; q++)
        if (*q == '-')
            dash = q;
    if (!dash || dash == t)
        return false;
    for (const char *q = t; q < dash; q++)
        if (*q == '/')
            return false;
    p = dash + 1;
    if (!number(&p, end, 0xffffffffUL, &v_seq) || p != end)
        return false;
    size_t k = (size_t)(dash - t);
    if (trigger) {
        if (k >= tlen)
            return false;
        memcpy(trigger, t, k);
        trigger[k] = '\0';
    }
    if (pid)
        *pid = (int)v_pid;
    if (seq)
        *seq = (unsigned)v_seq;
    return true;
}

int pql_live_dir_default(char *buf, size_t len, const char *tmpdir_env, unsigned uid)
{
    struct out o = start(buf, len);
    put(&o, tmpdir_env && tmpdir_env[0] == '/' ? tmpdir_env : "/tmp");
    put(&o, "/" PQL_LIVE_DIR_PREFIX);
    put_ulong(&o, uid);
    return done(&o);
}

int pql_expand_pid(char *buf, size_t len, const char *pattern, int pid)
{
    struct out o = start(buf, len);
    char c[2] = {0, 0};
    for (const char *p = pattern ? pattern : ""; *p && o.ok; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            put_int(&o, pid);
            p++;
        } else {
            c[0] = *p;
            put(&o, c);
        }
    }
    return done(&o);
}

int pql_run_socket_name(char *buf, size_t len, const char *dir)
{
    size_t o = 0;
    for (const char *p = PQL_RUN_SOCKET_PREFIX; *p && o + 1 < len; p++)
        buf[o++] = *p;
    for (const char *p = dir ? dir : ""; *p && o + 1 < len; p++)
        buf[o++] = *p;
    if (len)
        buf[o] = '\0';
    return (int)o;
}

int pql_run_message(char *buf, size_t len, int pid, const char *why)
{
    struct out o = start(buf, len);
    put(&o, "F ");
    put_int(&o, pid);
    put(&o, " ");
    if (!o.ok)
        return done(&o);
    for (const char *p = why ? why : ""; *p && o.n + 1 < o.len; p++)
        o.buf[o.n++] = *p;
    o.buf[o.n] = '\0';
    return (int)o.n;
}
