/* A growable text buffer for building reports and log lines. Not for signal handlers (it allocates).
 * On allocation failure the buffer is marked failed and later appends are ignored. */
#ifndef PQL_BUF_H
#define PQL_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct pql_buf {
    char *data; /* NUL-terminated while !failed */
    size_t len, cap;
    bool failed;
};

void pql_buf_init(struct pql_buf *b);
void pql_buf_free(struct pql_buf *b);
void pql_buf_append(struct pql_buf *b, const char *s, size_t n);
void pql_buf_puts(struct pql_buf *b, const char *s);
void pql_buf_printf(struct pql_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal with quotes, or null when s is NULL. */
void pql_buf_json_str(struct pql_buf *b, const char *s);
/* Appends a JSON number, or null when the value is not finite. */
void pql_buf_json_num(struct pql_buf *b, double v);

#endif
