/* Report file names, the live-report directory, the run channel's message and the reporter's
 * advertisement (names.h), formatted and parsed by hand: no stdio, no allocation, no locale, so any
 * thread and signal handlers may call them. */
#include "names.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

static void put_ulong(struct out *o, unsigned long long v)
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

static void put_hex16(struct out *o, unsigned long long v)
{
    char digits[17];
    for (int i = 15; i >= 0; i--, v >>= 4)
        digits[i] = "0123456789abcdef"[v & 15];
    digits[16] = '\0';
    put(o, digits);
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
static bool number(const char **p, const char *end, unsigned long long max, unsigned long long *v)
{
    const char *s = *p;
    unsigned long long x = 0;
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
    unsigned long long v_pid, v_seq;
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

bool pql_live_dir_trusted(const struct stat *st, unsigned uid)
{
    return S_ISDIR(st->st_mode) && st->st_uid == uid && !(st->st_mode & 077);
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

/* ---- the reporter's advertisement ---- */

int pql_advert_file_name(char *buf, size_t len, const char *dir, int pid)
{
    struct out o = start(buf, len);
    if (!dir)
        o.ok = false;
    put(&o, dir ? dir : "");
    put(&o, "/" PQL_REPORT_PREFIX);
    put_int(&o, pid);
    put(&o, PQL_ADVERT_SUFFIX);
    return done(&o);
}

int pql_advert_format(char *buf, size_t len, const struct pql_advert *a)
{
    struct out o = start(buf, len);
    put(&o, PQL_ADVERT_MAGIC " pid=");
    put_int(&o, a->pid);
    put(&o, " tid=");
    put_int(&o, a->tid);
    put(&o, " signal=");
    put_int(&o, a->sig);
    put(&o, " start=");
    put_ulong(&o, a->start);
    put(&o, " token=");
    put_hex16(&o, a->token);
    put(&o, "\n");
    return done(&o);
}

/* Reads "WORD" then a decimal number up to max at *p (number). */
static bool field(const char **p, const char *word, unsigned long long max, unsigned long long *v)
{
    size_t n = strlen(word);
    if (strncmp(*p, word, n) != 0)
        return false;
    *p += n;
    return number(p, *p + strlen(*p), max, v);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

bool pql_advert_parse(const char *text, struct pql_advert *a)
{
    const char *p = text;
    unsigned long long pid, tid, sig;
    if (!p || !field(&p, PQL_ADVERT_MAGIC " pid=", 0x7fffffffULL, &pid) ||
        !field(&p, " tid=", 0x7fffffffULL, &tid) || !field(&p, " signal=", 0x7fffffffULL, &sig) ||
        !field(&p, " start=", ~0ULL, &a->start) || strncmp(p, " token=", 7) != 0)
        return false;
    p += 7;
    unsigned long long token = 0;
    int n = 0;
    for (int d; n < 16 && (d = hex_digit(*p)) >= 0; n++, p++)
        token = token << 4 | (unsigned)d;
    if (n == 0 || (*p != '\0' && strcmp(p, "\n") != 0))
        return false;
    a->pid = (int)pid;
    a->tid = (int)tid;
    a->sig = (int)sig;
    a->token = token;
    return true;
}

unsigned long long pql_proc_start_time(int pid)
{
    char path[32], buf[1024];
    struct out o = start(path, sizeof path);
    put(&o, "/proc/");
    if (pid)
        put_int(&o, pid);
    else
        put(&o, "self");
    put(&o, "/stat");
    if (done(&o) < 0)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* Field 22 lies well within the first kilobyte: the command name is at most 16 bytes. */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    /* After ") ": the state (field 3), fields 4 to 21, then the start time. */
    for (int f = 3; f <= 22; f++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    unsigned long long t;
    p++;
    if (!field(&p, "", ~0ULL, &t) || (*p != ' ' && *p != '\n' && *p != '\0'))
        return 0;
    return t;
}

bool pql_signal_parse(const char *value, int *sig)
{
    const char *n = value && strncasecmp(value, "SIG", 3) == 0 ? value + 3 : value;
    if (!n)
        return false;
    if (strcasecmp(n, "USR1") == 0)
        *sig = SIGUSR1;
    else if (strcasecmp(n, "USR2") == 0)
        *sig = SIGUSR2;
    else if (strcasecmp(n, "none") == 0 || strcmp(n, "0") == 0)
        *sig = 0;
    else
        return false;
    return true;
}

const char *pql_signal_name(int sig)
{
    return sig == SIGUSR1 ? "USR1" : sig == SIGUSR2 ? "USR2" : "none";
}
