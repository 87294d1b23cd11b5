/* Growable text buffer with JSON string escaping. Used by the report writers, never in signal context. */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pql_buf_init(struct pql_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void pql_buf_free(struct pql_buf *b)
{
    free(b->data);
    pql_buf_init(b);
}

static bool reserve(struct pql_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void pql_buf_append(struct pql_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pql_buf_puts(struct pql_buf *b, const char *s)
{
    pql_buf_append(b, s, strlen(s));
}

void pql_buf_printf(struct pql_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        pql_buf_append(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p, 0 when invalid. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n;
    unsigned min;
    unsigned cp;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2, cp = p[0] & 0x1f, min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, cp = p[0] & 0x0f, min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4, cp = p[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void pql_buf_json_str(struct pql_buf *b, const char *s)
{
    if (!s) {
        pql_buf_puts(b, "null");
        return;
    }
    pql_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            pql_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            pql_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            pql_buf_append(b, "\\n", 2);
            break;
        case '\r':
            pql_buf_append(b, "\\r", 2);
            break;
        case '\t':
            pql_buf_append(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                pql_buf_printf(b, "\\u%04x", *p);
            } else if (*p < 0x80) {
                pql_buf_append(b, (const char *)p, 1);
            } else {
                /* Paths and names may be in any encoding; JSON readers reject invalid UTF-8. */
                size_t n = utf8_len(p);
                if (n) {
                    pql_buf_append(b, (const char *)p, n);
                    p += n - 1;
                } else {
                    pql_buf_puts(b, "\\ufffd");
                }
            }
        }
    }
    pql_buf_append(b, "\"", 1);
}

void pql_buf_json_num(struct pql_buf *b, double v)
{
    if (!isfinite(v))
        pql_buf_puts(b, "null");
    else if (v == (double)(long long)v && fabs(v) < 1e15)
        pql_buf_printf(b, "%lld", (long long)v);
    else if (fabs(v) < 1e9)
        pql_buf_printf(b, "%.3f", v);
    else
        pql_buf_printf(b, "%.6g", v);
}
