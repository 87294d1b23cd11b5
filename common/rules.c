/* Suppression rules (rules.h). A text is parsed in two passes: the first checks every line and
 * measures the rules, the second fills one allocation, so a rejected text allocates nothing. A file is
 * read with stat, open, fstat and read only, never past PQL_RULES_FILE_MAX. Any thread; not for signal
 * handlers (malloc, fnmatch). */
#include "rules.h"

#include "readall.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* White space as the C locale has it, whatever locale the host process set. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* ---- messages ---- */

/* A message under construction in err->msg; what does not fit is cut. */
struct msg {
    char *s;
    size_t n;
};

static void msg_add(struct msg *m, const char *s, size_t k)
{
    size_t room = PQL_RULES_MSG_MAX - 1 - m->n;
    if (k > room)
        k = room;
    memcpy(m->s + m->n, s, k);
    m->n += k;
    m->s[m->n] = '\0';
}

static void msg_str(struct msg *m, const char *s)
{
    msg_add(m, s, strlen(s));
}

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Appends one byte, escaped when it is a control byte (a newline or an escape sequence must not forge
 * lines in a log). */
static void msg_byte(struct msg *m, unsigned char c)
{
    if (needs_escape(c)) {
        static const char hex[] = "0123456789abcdef";
        char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        msg_add(m, e, sizeof e);
    } else {
        msg_add(m, (const char *)&c, 1);
    }
}

static size_t escaped_width(unsigned char c)
{
    return needs_escape(c) ? 4 : 1;
}

/* Appends s[0..k) escaped, at most max bytes of it (whole escapes only), then "..." when cut. */
static void msg_quote(struct msg *m, const char *s, size_t k, size_t max)
{
    size_t w = 0, i;
    for (i = 0; i < k && w + escaped_width((unsigned char)s[i]) <= max; i++) {
        w += escaped_width((unsigned char)s[i]);
        msg_byte(m, (unsigned char)s[i]);
    }
    if (i < k)
        msg_str(m, "...");
}

/* Room for the origin in a message: what the longest wording after it leaves. */
#define ORIGIN_MAX (PQL_RULES_MSG_MAX - 1 - 300)

/* Starts err's message with the origin, escaped; a long one keeps its end (the file's name). */
static struct msg msg_start(struct pql_rules_error *err, const char *origin, int line)
{
    struct msg m = {err->msg, 0};
    err->line = line;
    err->msg[0] = '\0';
    if (!origin)
        origin = "(suppressions)";
    size_t k = strlen(origin), w = 0, from = k;
    while (from > 0 && w + escaped_width((unsigned char)origin[from - 1]) <= ORIGIN_MAX) {
        w += escaped_width((unsigned char)origin[from - 1]);
        from--;
    }
    if (from > 0) {
        /* Cut to fit "..." in front as well. */
        while (from < k && w > ORIGIN_MAX - 3)
            w -= escaped_width((unsigned char)origin[from++]);
        msg_str(&m, "...");
    }
    for (size_t i = from; i < k; i++)
        msg_byte(&m, (unsigned char)origin[i]);
    return m;
}

static bool fail_read(struct pql_rules_error *err, const char *origin, const char *reason)
{
    if (err) {
        struct msg m = msg_start(err, origin, 0);
        msg_str(&m, ": cannot read suppressions: ");
        msg_str(&m, reason);
    }
    return false;
}

static bool fail_errno(struct pql_rules_error *err, const char *origin, int e)
{
    char buf[128];
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
    const char *reason = strerror_r(e, buf, sizeof buf);
#else
    const char *reason = strerror_r(e, buf, sizeof buf) == 0 ? buf : "unknown error";
#endif
    return fail_read(err, origin, reason);
}

static bool fail_line(struct pql_rules_error *err, const char *origin, int line, const char *b, const char *e)
{
    if (err) {
        struct msg m = msg_start(err, origin, line);
        char num[24];
        snprintf(num, sizeof num, ":%d", line);
        msg_str(&m, num);
        msg_str(&m, ": not a suppression rule: \"");
        msg_quote(&m, b, (size_t)(e - b), PQL_RULES_QUOTE_MAX);
        msg_str(&m, "\" (expected leak:PATTERN or tx:PATTERN)");
    }
    return false;
}

/* ---- parsing ---- */

static const struct {
    const char *text;
    size_t len;
    enum pql_rule_stack stack;
} prefixes[] = {{"leak:", 5, PQL_RULE_LEAK}, {"tx:", 3, PQL_RULE_TX}};

enum line_kind { LINE_BLANK, LINE_RULE, LINE_BAD };

/* A well-formed rule line: its pattern [b, e), its prefix, and the '@' that splits it (or NULL). */
struct line {
    const char *b, *e;
    size_t prefix;
    const char *at;
};

/* The first '@' of [p, e) that is not escaped by a backslash nor inside a bracket expression, as
 * fnmatch reads them ("[@]" and "\@" match an '@'); NULL when there is none. */
static const char *split_at(const char *p, const char *e)
{
    while (p < e) {
        if (*p == '\\') {
            p += 2;
        } else if (*p == '[') {
            const char *j = p + 1;
            if (j < e && (*j == '!' || *j == '^'))
                j++;
            if (j < e && *j == ']')
                j++;
            while (j < e && *j != ']')
                j++;
            p = j < e ? j + 1 : p + 1; /* an unclosed '[' is a plain character */
        } else if (*p == '@') {
            return p;
        } else {
            p++;
        }
    }
    return NULL;
}

/* Classifies the line [b, e), its '\n' left out. For a rule, *out is set; for a malformed line, [out->b,
 * out->e) is the text to quote (the line without comment and surrounding white space). */
static enum line_kind classify(const char *b, const char *e, struct line *out)
{
    for (const char *h = b; h < e; h++) {
        if (*h == '#' && (h == b || is_space(h[-1]))) {
            e = h;
            break;
        }
    }
    while (b < e && is_space(*b))
        b++;
    while (e > b && is_space(e[-1]))
        e--;
    *out = (struct line){b, e, 0, NULL};
    if (b == e)
        return LINE_BLANK;
    if (memchr(b, '\0', (size_t)(e - b)))
        return LINE_BAD;
    size_t k = 0;
    while (k < sizeof prefixes / sizeof prefixes[0] &&
           ((size_t)(e - b) < prefixes[k].len || memcmp(b, prefixes[k].text, prefixes[k].len) != 0))
        k++;
    if (k == sizeof prefixes / sizeof prefixes[0])
        return LINE_BAD;
    const char *p = b + prefixes[k].len;
    while (p < e && is_space(*p))
        p++;
    const char *at = split_at(p, e);
    if (p == e || (at && (at == p || at + 1 == e)))
        return LINE_BAD;
    *out = (struct line){p, e, k, at};
    return LINE_RULE;
}

/* Bytes a rule's strings take: its text, and the two parts of FUNCTION@FILE. */
static size_t rule_bytes(const struct line *l)
{
    size_t plen = (size_t)(l->e - l->b);
    return prefixes[l->prefix].len + plen + 1 + (l->at ? plen + 1 : 0);
}

/* Writes the rule of l into *rule, its strings at s. */
static void fill_rule(struct pql_rule *rule, char *s, const struct line *l)
{
    size_t plen = (size_t)(l->e - l->b), len = prefixes[l->prefix].len;
    memcpy(s, prefixes[l->prefix].text, len);
    memcpy(s + len, l->b, plen);
    s[len + plen] = '\0';
    *rule = (struct pql_rule){.text = s, .pattern = s + len, .stack = prefixes[l->prefix].stack};
    if (l->at) {
        char *fn = s + len + plen + 1;
        size_t flen = (size_t)(l->at - l->b);
        memcpy(fn, l->b, flen);
        fn[flen] = '\0';
        memcpy(fn + flen + 1, l->at + 1, plen - flen - 1);
        fn[plen] = '\0';
        rule->function = fn;
        rule->file = fn + flen + 1;
    }
}

/* Calls classify on every line of text; stops at the first malformed line, returning its number with
 * [*bb, *be) to quote; returns 0 when every line is well formed. With fill NULL, counts the rules and
 * the bytes of their texts; else writes them into fill and the strings after it. */
static int scan(const char *text, size_t len, size_t *nrules, size_t *bytes, struct pql_rule *fill,
                char *strings, const char **bb, const char **be)
{
    int lineno = 0;
    size_t n = 0, total = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (lineno < INT_MAX)
            lineno++;
        struct line l;
        enum line_kind k = classify(p, e, &l);
        if (k == LINE_BAD) {
            *bb = l.b;
            *be = l.e;
            return lineno;
        }
        if (k == LINE_RULE) {
            if (fill)
                fill_rule(&fill[n], strings + total, &l);
            n++;
            total += rule_bytes(&l);
        }
        p = nl ? nl + 1 : end;
    }
    *nrules = n;
    *bytes = total;
    return 0;
}

bool pql_rules_parse(struct pql_rules *r, const char *text, size_t len, const char *origin,
                     struct pql_rules_error *err)
{
    *r = (struct pql_rules){0};
    if (err) {
        err->line = 0;
        err->msg[0] = '\0';
    }
    if (!text || !len)
        return true;
    size_t n, bytes;
    const char *bb = NULL, *be = NULL;
    int bad = scan(text, len, &n, &bytes, NULL, NULL, &bb, &be);
    if (bad)
        return fail_line(err, origin, bad, bb, be);
    if (!n)
        return true;
    if (n > (SIZE_MAX - bytes) / sizeof(struct pql_rule))
        return fail_read(err, origin, "out of memory");
    /* One allocation: the rules, then their texts. */
    char *block = malloc(n * sizeof(struct pql_rule) + bytes);
    if (!block)
        return fail_read(err, origin, "out of memory");
    struct pql_rule *v = (struct pql_rule *)(void *)block;
    scan(text, len, &n, &bytes, v, block + n * sizeof(struct pql_rule), &bb, &be);
    r->v = v;
    r->n = n;
    return true;
}

/* ---- files ---- */

/* Why a file of this type is not read, or NULL for a regular file. */
static const char *not_regular(mode_t mode)
{
    if (S_ISREG(mode))
        return NULL;
    if (S_ISDIR(mode))
        return "is a directory, not a file";
    if (S_ISFIFO(mode))
        return "is a FIFO, not a regular file";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "is a device, not a regular file";
    if (S_ISSOCK(mode))
        return "is a socket, not a regular file";
    return "not a regular file";
}

static bool too_large(struct pql_rules_error *err, const char *path)
{
    char reason[80];
    snprintf(reason, sizeof reason, "larger than %d bytes (1 MiB)", PQL_RULES_FILE_MAX);
    return fail_read(err, path, reason);
}

/* Reads fd (a regular file of about size bytes) to its end; NULL after filling err. */
static char *read_file(int fd, off_t size, size_t *len, const char *path, struct pql_rules_error *err)
{
    char *buf = pql_read_all(fd, (size_t)size, PQL_RULES_FILE_MAX, len);
    if (!buf && errno == EFBIG)
        too_large(err, path);
    else if (!buf && errno == ENOMEM)
        fail_read(err, path, "out of memory");
    else if (!buf)
        fail_errno(err, path, errno);
    return buf;
}

bool pql_rules_load(struct pql_rules *r, const char *path, struct pql_rules_error *err)
{
    *r = (struct pql_rules){0};
    if (err) {
        err->line = 0;
        err->msg[0] = '\0';
    }
    if (!path || !*path)
        return fail_errno(err, path, ENOENT);
    /* Not even opened when it is no regular file: opening a device may have effects of its own. */
    struct stat st;
    if (stat(path, &st) != 0)
        return fail_errno(err, path, errno);
    if (not_regular(st.st_mode))
        return fail_read(err, path, not_regular(st.st_mode));
    int fd;
    do
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return fail_errno(err, path, errno);
    /* The path may have been replaced since: what was opened is what counts. */
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail_errno(err, path, e);
    }
    if (not_regular(st.st_mode)) {
        close(fd);
        return fail_read(err, path, not_regular(st.st_mode));
    }
    if (st.st_size > PQL_RULES_FILE_MAX) {
        close(fd);
        return too_large(err, path);
    }
    size_t len = 0;
    char *text = read_file(fd, st.st_size, &len, path, err);
    close(fd);
    if (!text)
        return false;
    bool ok = pql_rules_parse(r, text, len, path, err);
    free(text);
    return ok;
}

/* ---- matching ---- */

static bool glob(const char *pattern, const char *s)
{
    if (!s)
        return false;
    if (fnmatch(pattern, s, 0) == 0)
        return true;
    const char *slash = strrchr(s, '/');
    return slash && fnmatch(pattern, slash + 1, 0) == 0;
}

bool pql_rule_matches(const char *pattern, const char *function, const char *file, const char *module)
{
    return pattern && (glob(pattern, function) || glob(pattern, file) || glob(pattern, module));
}

bool pql_rule_matches_frame(const struct pql_rule *rule, const char *function, const char *file,
                            const char *module)
{
    if (!rule->function)
        return pql_rule_matches(rule->pattern, function, file, module);
    return glob(rule->function, function) && (glob(rule->file, file) || glob(rule->file, module));
}

void pql_rules_free(struct pql_rules *r)
{
    free(r->v);
    r->v = NULL;
    r->n = 0;
}
