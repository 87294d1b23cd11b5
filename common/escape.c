/* Escaping of untrusted text for one line of output (escape.h). Pure functions: any thread, signal
 * handlers included. */
#include "escape.h"

size_t pql_escape_unit(const char *str, size_t len, size_t i, bool keep_newline, bool *escape)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[i];
    *escape = false;
    if (c < 0x80) {
        *escape = (c < 0x20 && !(keep_newline && c == '\n')) || c == 0x7f;
        return 1;
    }
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || i + n > len) {
        *escape = true;
        return 1;
    }
    for (size_t k = 1; k < n; k++)
        if ((s[i + k] & 0xc0) != 0x80) {
            *escape = true;
            return 1;
        }
    /* Overlong forms, surrogates and code points past U+10FFFF are not valid UTF-8. */
    unsigned char d = s[i + 1];
    if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d > 0x9f) || (c == 0xf0 && d < 0x90) ||
        (c == 0xf4 && d > 0x8f)) {
        *escape = true;
        return 1;
    }
    *escape = c == 0xc2 && d < 0xa0; /* U+0080-U+009F */
    return n;
}

bool pql_escape_clean(const char *s, size_t len, bool keep_newline)
{
    for (size_t i = 0; i < len;) {
        bool escape;
        i += pql_escape_unit(s, len, i, keep_newline, &escape);
        if (escape)
            return false;
    }
    return true;
}

size_t pql_escape(char *out, size_t size, const char *s, size_t len, bool keep_newline)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, need = 0;
    for (size_t i = 0; i < len;) {
        bool escape;
        size_t n = pql_escape_unit(s, len, i, keep_newline, &escape);
        size_t w = escape ? 4 * n : n;
        if (need == o && o + w < size) {
            for (size_t k = 0; k < n; k++) {
                if (escape) {
                    out[o++] = '\\';
                    out[o++] = 'x';
                    out[o++] = hex[u[i + k] >> 4];
                    out[o++] = hex[u[i + k] & 15];
                } else {
                    out[o++] = (char)u[i + k];
                }
            }
        }
        need += w;
        i += n;
    }
    if (size > 0)
        out[o] = '\0';
    return need;
}

const char *pql_escape_str(char *buf, size_t size, const char *s)
{
    size_t len = 0;
    while (s[len])
        len++;
    pql_escape(buf, size, s, len, false);
    return buf;
}
