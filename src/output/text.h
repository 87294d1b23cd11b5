/* Every text the shim prints about connections: the exit leak report, live reports, suspects, misuse,
 * refusal messages. One header function starts every multi-line message ("==PID==pqleak: KIND: "), as
 * LeakSanitizer's do; one-line notices go through pql_log ("pqleak: "). Reporting or application
 * threads (refusals, misuse: rare paths that symbolize); never in signal context. */
#ifndef PQL_TEXT_H
#define PQL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "checkout.h"
#include "registry.h"
#include "rmodel.h"
#include "symbolize.h"

/* Takes the settings' PQLEAK_FULL_STACKS (text stacks fold library frames unless it is set). */
void pql_text_setup(const struct pql_settings *s);

/* Starts a multi-line message: "\n==PID==pqleak: SEVERITY: " (SEVERITY NULL: "==PID==pqleak: "). */
void pql_text_header(struct pql_buf *b, const char *severity);

/* A stack's frames, one "    #N 0xPC in function file:line (module+offset)" line each. */
void pql_text_stack(struct pql_buf *b, struct pql_symbolizer *sym, uint32_t stack);

/* The exit report of r (grouped) to the log. */
void pql_text_leaks(const struct pql_report *r);

/* A live report of r to the log. */
void pql_text_live(const struct pql_report *r);

/* The SUSPECT warning of every suspect connection in conns (those with suspect set) to the log. */
void pql_text_suspects(const struct pql_settings *s, const struct pql_conn *conns, size_t n, double now_mono,
                       int64_t now_coarse_ns);

/* The one-line notice of a suspect connection being closed. */
void pql_text_suspect_closed(const struct pql_conn *rec, double now_mono);

/* The misuse warning of rec's connection: used in a forked child (forked) or by this thread while
 * thread other_tid was using it; here is the stack of the offending call. */
void pql_text_misuse(const struct pql_conn *rec, bool forked, int other_tid, uint32_t here);

/* pqleak's message for a refused connect, naming who holds the connections, ending with a newline as
 * libpq's messages do. */
void pql_text_refusal(char *msg, size_t len, const struct pql_refusal *why);

#endif
