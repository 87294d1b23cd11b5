/* Untrusted text on a line of output: names and paths from the host (a program's path, a function or
 * file name, a target) must never end a line, move the cursor or start a terminal escape sequence. The
 * shim (its log) and the command (summaries, status, baselines) escape them the same way. No stdio, no
 * allocation: safe on any thread and in signal handlers. */
#ifndef PQL_ESCAPE_H
#define PQL_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* The form, one byte at a time (docs/report-schema.md, "Strings in text output"):
 *  - a C0 control byte (0x00-0x1f: newline, carriage return, ESC...) and DEL (0x7f) becomes \xNN (two
 *    lower-case hex digits), as in `\x0a`, `\x1b`;
 *  - a C1 control character (U+0080-U+009F, which terminals may take for CSI and the like), written in
 *    UTF-8 as 0xc2 0x80-0x9f, becomes \xc2\xNN;
 *  - a byte that is not part of valid UTF-8 becomes \xNN;
 *  - every other byte, the backslash included, is kept.
 * keep_newline keeps '\n' as is (for whole texts whose own lines the writer made). */

/* How many bytes from s[i] form one unit: a valid UTF-8 sequence (1-4 bytes), or 1 for a byte that
 * is not part of one; *escape tells whether the unit is escaped (a control byte, a C1 control,
 * invalid UTF-8). i < len. */
size_t pql_escape_unit(const char *s, size_t len, size_t i, bool keep_newline, bool *escape);

/* True when s[0..len) holds nothing to escape. */
bool pql_escape_clean(const char *s, size_t len, bool keep_newline);

/* Writes s[0..len) escaped into out (size bytes, NUL-terminated when size > 0), cut at a whole escape
 * when it does not fit. Returns the length the whole escaped text needs, without the NUL (as snprintf):
 * at most 4 * len. */
size_t pql_escape(char *out, size_t size, const char *s, size_t len, bool keep_newline);

/* s (NUL-terminated) escaped into buf as pql_escape does, newlines included; returns buf. */
const char *pql_escape_str(char *buf, size_t size, const char *s);

/* s escaped into a buffer of the enclosing block, for one argument of a printf-like call: s of up to n
 * bytes fits whole. */
#define PQL_ESCAPED(s, n) pql_escape_str((char[4 *(n) + 1]){0}, 4 * (n) + 1, (s))

#endif
