/* Text writers (text.h): LeakSanitizer-style reports and warnings, built in a buffer and written to the
 * log whole, so that lines of concurrent writers never interleave. Reporting or application threads;
 * not signal-safe. */
#define _GNU_SOURCE
#include "text.h"

#include "frames.h"
#include "live.h"
#include "log.h"
#include "names.h"
#include "proc.h"
#include "appframes.h"
#include "escape.h"
#include "stack.h"
#include "testname.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pql_text_header(struct pql_buf *b, const char *severity)
{
    pql_buf_printf(b, "\n==%d==pqleak: %s%s", (int)pql_pid(), severity ? severity : "", severity ? ": " : "");
}

static void emit(struct pql_buf *b)
{
    if (!b->failed && b->len)
        pql_log_write(b->data, b->len);
    pql_buf_free(b);
}

static void text_target(struct pql_buf *b, const struct pql_target *t)
{
    const char *sep = "";
    const char *names[] = {"host", "port", "dbname", "user", "application_name"};
    const char *vals[] = {t->host, t->port, t->dbname, t->user, t->appname};
    for (int i = 0; i < 5; i++) {
        if (!*vals[i])
            continue;
        pql_buf_printf(b, "%s%s=%s", sep, names[i], PQL_ESCAPED(vals[i], sizeof(t->host)));
        sep = " ";
    }
    if (!*sep)
        pql_buf_puts(b, "(unknown target)");
}

static bool full_stacks;
static const char *strip_prefix = ""; /* PQLEAK_STRIP_PATH_PREFIX */

void pql_text_setup(const struct pql_settings *s)
{
    full_stacks = s->full_stacks;
    strip_prefix = s->strip_path_prefix;
}

/* path without everything up to and including the first occurrence of PQLEAK_STRIP_PATH_PREFIX, and
 * a "./" after it, as AddressSanitizer's strip_path_prefix does; whole when it has none or nothing is
 * left. */
static const char *stripped(const char *path)
{
    const char *p = *strip_prefix ? strstr(path, strip_prefix) : NULL;
    if (!p)
        return path;
    p += strlen(strip_prefix);
    if (p[0] == '.' && p[1] == '/')
        p += 2;
    return *p ? p : path;
}

static void text_frame(struct pql_buf *b, int i, const struct pql_frame *f)
{
    char lang[16];
    if (strcmp(f->lang, "c") != 0 && snprintf(lang, sizeof(lang), "(%s)", f->lang) > 0)
        pql_buf_printf(b, "    #%d %-14s", i, lang);
    else
        pql_buf_printf(b, "    #%d 0x%lx", i, (unsigned long)f->pc);
    pql_buf_printf(b, " in %s", f->function ? f->function : "??");
    if (f->file)
        pql_buf_printf(b, " %s:%d", stripped(f->file), f->line);
    if (f->module)
        pql_buf_printf(b, " (%s+0x%lx)", stripped(f->module), (unsigned long)f->offset);
    pql_buf_puts(b, "\n");
}

static bool own_frame(const struct pql_frame *f)
{
    return pql_frame_is_app(f->function, f->file, f->module, f->lang);
}

static const char *origin(const struct pql_frame *f, char *buf, size_t len)
{
    return pql_frame_origin(f->file, f->module, f->lang, buf, len);
}

/* Frames of the program's own code are always shown; runs of two or more frames of one library,
 * runtime or the system fold into "... N frames in NAME" (PQLEAK_FULL_STACKS=1 shows them all). */
void pql_text_stack(struct pql_buf *b, struct pql_symbolizer *sym, uint32_t stack)
{
    const struct pql_frame *frames[PQL_MAX_FRAMES];
    /* Inlined functions are frames of their own, numbered as in LeakSanitizer. */
    int m = pql_stack_frames(sym, stack, frames, PQL_MAX_FRAMES);
    for (int i = 0; i < m;) {
        const struct pql_frame *f = frames[i];
        int run = 1;
        char a[128], c[128];
        const char *name = NULL;
        if (f && !full_stacks && !own_frame(f)) {
            name = origin(f, a, sizeof(a));
            while (i + run < m && frames[i + run] && !own_frame(frames[i + run]) &&
                   !strcmp(origin(frames[i + run], c, sizeof(c)), name))
                run++;
        }
        if (run > 1)
            pql_buf_printf(b, "    ... %d frames in %s\n", run, name);
        else if (f)
            text_frame(b, i, f);
        i += run;
    }
    int n = 0;
    if (!m && (!stack || !pql_stack_get(stack, &n) || !n))
        pql_buf_puts(b, "    (no stack)\n");
}

static void site_frame(struct pql_buf *b, const struct pql_frame *f)
{
    pql_buf_puts(b, f->function ? f->function : "??");
    if (f->file) {
        const char *base = strrchr(f->file, '/');
        pql_buf_printf(b, " (%s:%d)", base ? base + 1 : f->file, f->line);
    } else if (f->module) {
        const char *base = strrchr(f->module, '/');
        pql_buf_printf(b, " (%s+0x%lx)", base ? base + 1 : f->module, (unsigned long)f->offset);
    }
}

/* "handle_request (app.c:42) <- main (app.c:60)": the stack's headline (common/frames.h) and the next
 * frame of the program's own; without a frame of its own, the innermost library frame alone. */
static void text_site(struct pql_buf *b, struct pql_symbolizer *sym, uint32_t stack)
{
    const struct pql_frame *frames[PQL_MAX_FRAMES];
    int m = pql_stack_frames(sym, stack, frames, PQL_MAX_FRAMES);
    bool own = false;
    int h = pql_frames_headline(frames, m, &own);
    if (h < 0) {
        pql_buf_puts(b, "an unknown site");
        return;
    }
    site_frame(b, frames[h]);
    for (int i = h + 1; own && i < m; i++) {
        if (!strcmp(frames[i]->lang, frames[h]->lang) && own_frame(frames[i])) {
            pql_buf_puts(b, " <- ");
            site_frame(b, frames[i]);
            break;
        }
    }
}

#define RULER "-----------------------------------------------------"

static const char *kind_text(const char *kind)
{
    if (!strcmp(kind, "teardown"))
        return "teardown: closed by the runtime at exit or by its garbage collector inside a transaction, "
               "its "
               "work rolled back";
    if (!strcmp(kind, "held"))
        return "held: closed idle by the runtime at exit or by its garbage collector";
    return "unclosed";
}

/* "  test: NAME (and N other tests)": the test running when the group's connections were opened (tx
 * false) or began their transactions (tx true), the first connection's, and how many others ran. */
static void text_group_tests(struct pql_buf *b, const struct pql_report *r, const struct pql_group *gr,
                             bool tx)
{
    unsigned char seen[PQL_TESTNAME_MAX / 8] = {0};
    const char *first = NULL;
    long others = 0;
    for (long k = 0; k < gr->count; k++) {
        const struct pql_conn *c = &r->conns[r->order[gr->run + (size_t)k]];
        uint16_t t = tx ? c->tx_test : c->test;
        const char *name = pql_testname(t);
        if (!name || seen[t / 8] & (1u << t % 8))
            continue;
        seen[t / 8] |= (unsigned char)(1u << t % 8);
        if (first)
            others++;
        else
            first = name;
    }
    if (!first)
        return;
    pql_buf_printf(b, "  test: %s", first);
    if (others)
        pql_buf_printf(b, " (and %ld other test%s)", others, others == 1 ? "" : "s");
    pql_buf_puts(b, "\n");
}

void pql_text_leaks(const struct pql_report *r)
{
    struct pql_buf b;
    pql_buf_init(&b);
    pql_text_header(&b, "ERROR");
    pql_buf_printf(&b, "%ld connection%s leaked (never closed with PQfinish by the program)\n", r->leaked,
                   r->leaked == 1 ? "" : "s");
    for (size_t g = 0; g < r->ngroups; g++) {
        const struct pql_group *gr = &r->groups[g];
        if (!pql_rmodel_counts(r, gr))
            continue;
        const struct pql_conn *c = &r->conns[gr->first];
        pql_buf_printf(&b, "\nLeak of %ld connection%s (%s%s) to ", gr->count, gr->count == 1 ? "" : "s",
                       kind_text(gr->kind),
                       c->state == PQL_OK    ? ""
                       : c->state == PQL_BAD ? ", failed to connect"
                                             : ", still connecting");
        text_target(&b, &c->target);
        pql_buf_printf(&b, ", open %.1f s, opened by ", gr->oldest);
        text_site(&b, r->sym, gr->stack);
        if (gr->site_from == PQL_SITE_LAST_USED || gr->site_from == PQL_SITE_TX_STACK) {
            pql_buf_puts(&b, ", last used at ");
            text_site(&b, r->sym, gr->last_stack);
        }
        pql_buf_puts(&b, ":\n");
        text_group_tests(&b, r, gr, false);
        pql_text_stack(&b, r->sym, gr->stack);
        if (gr->tx_stack) {
            pql_buf_puts(&b, "  its transaction began in ");
            text_site(&b, r->sym, gr->tx_stack);
            pql_buf_puts(&b, ":\n");
            text_group_tests(&b, r, gr, true);
            pql_text_stack(&b, r->sym, gr->tx_stack);
        } else if (gr->site_from == PQL_SITE_LAST_USED) {
            pql_buf_puts(&b, "  last used (its last transaction began) in ");
            text_site(&b, r->sym, gr->last_stack);
            pql_buf_puts(&b, ":\n");
            pql_text_stack(&b, r->sym, gr->last_stack);
        }
    }
    if (r->held)
        pql_buf_printf(&b,
                       "\nAlso %ld connection%s held until exit (closed idle by the runtime; PQLEAK_STRICT=1 "
                       "counts them)\n",
                       r->held, r->held == 1 ? "" : "s");
    if (r->suppressed && r->rules) {
        /* LeakSanitizer's table: each rule that matched, with the connections it suppressed. */
        pql_buf_printf(&b, "\nSuppressed: %ld connection%s\n%s\nSuppressions used:\n  count rule\n",
                       r->suppressed, r->suppressed == 1 ? "" : "s", RULER);
        for (size_t i = 0; i < r->rules->n; i++)
            if (r->rules->v[i].hits)
                pql_buf_printf(&b, "%7lu %s\n", r->rules->v[i].hits, r->rules->v[i].text);
        pql_buf_printf(&b, "%s\n", RULER);
    }
    pql_buf_printf(
        &b, "\nSUMMARY: pqleak: %ld connection%s leaked in %d group%s (%s, pid %d, pqleak " PQL_VERSION ")\n",
        r->leaked, r->leaked == 1 ? "" : "s", r->leak_groups, r->leak_groups == 1 ? "" : "s",
        PQL_ESCAPED(r->program, sizeof(r->program)), (int)pql_pid());
    emit(&b);
}

void pql_text_live(const struct pql_report *r)
{
    struct pql_buf b;
    pql_buf_init(&b);
    const struct pql_counters *c = &r->counters;
    const struct pql_wait_counters *w = &r->waits;
    pql_text_header(&b, NULL);
    pql_buf_printf(&b, "live report (%s): %ld connection%s open, peak %ld", r->trigger, c->open,
                   c->open == 1 ? "" : "s", c->peak_open);
    if (r->settings->max_conns > 0)
        pql_buf_printf(&b, ", cap %d (%.0f%%)", r->settings->max_conns,
                       100.0 * (double)c->open / r->settings->max_conns);
    pql_buf_printf(&b,
                   "; %ld opened, %ld closed, %ld failed; %ld waits (%.1f s, longest %.1f s), %ld timeouts, "
                   "%ld refused\n",
                   c->opened_total, c->closed_total, c->failed_total, w->waits_total, w->wait_s_total,
                   w->wait_s_max, w->timeouts_total, w->refused_total);
    /* Grouped by open stack, in opening order of each group's first connection. */
    size_t *order, *runs;
    size_t nruns = pql_rmodel_runs(r, &order, &runs);
    if (!order && r->nconns)
        b.failed = true;
    for (size_t g = 0; g < nruns; g++) {
        size_t start = runs[g], end = start;
        uint32_t stack = r->conns[order[start]].stack;
        while (end < r->nconns && r->conns[order[end]].stack == stack)
            end++;
        long count = (long)(end - start);
        pql_buf_printf(&b, "\n%ld connection%s opened at:\n", count, count == 1 ? "" : "s");
        pql_text_stack(&b, r->sym, stack);
        for (size_t j = start; j < end; j++) {
            const struct pql_conn *k = &r->conns[order[j]];
            pql_buf_printf(&b, "  #%llu %s ", (unsigned long long)k->id,
                           k->state == PQL_OK ? "ok" : "failed");
            text_target(&b, &k->target);
            if (k->server_pid)
                pql_buf_printf(&b, ", server pid %d", k->server_pid);
            if (k->client_port)
                pql_buf_printf(&b, ", client port %d", k->client_port);
            pql_buf_printf(&b, ", open %.1f s, idle %.1f s, %s, thread %d", r->now_mono - k->opened_mono,
                           pql_rmodel_idle_s(r, k), pql_conn_tx_name(k), (int)k->tid);
            if (pql_suspect_name(k->suspect))
                pql_buf_printf(&b, ", SUSPECT (%s)", pql_suspect_name(k->suspect));
            if (pql_testname(k->test))
                pql_buf_printf(&b, ", test %s", pql_testname(k->test));
            pql_buf_puts(&b, "\n");
            if (k->tx_stack) {
                pql_buf_printf(&b, "    its transaction began %.1f s ago at:\n",
                               (double)(r->now_coarse_ns - k->tx_began_ns) / 1e9);
                pql_text_stack(&b, r->sym, k->tx_stack);
            }
        }
    }
    free(order);
    free(runs);
    emit(&b);
}

void pql_text_suspects(const struct pql_settings *s, const struct pql_conn *conns, size_t n, double now_mono,
                       int64_t now_coarse_ns)
{
    struct pql_symbolizer *sym = n ? pql_sym_acquire() : NULL;
    struct pql_buf b;
    pql_buf_init(&b);
    for (size_t i = 0; conns && i < n; i++) {
        const struct pql_conn *k = &conns[i];
        if (!k->suspect || k->state != PQL_OK)
            continue;
        pql_text_header(&b, "SUSPECT");
        if (k->suspect == PQL_SUSPECT_AGE)
            pql_buf_printf(
                &b,
                "connection #%llu (server pid %d) has been open %.0f s (PQLEAK_SUSPECT_AGE=%g); opened at:\n",
                (unsigned long long)k->id, k->server_pid, now_mono - k->opened_mono, s->suspect_age);
        else
            pql_buf_printf(&b,
                           "connection #%llu (server pid %d) has been idle in a transaction for %.0f s "
                           "(PQLEAK_SUSPECT_IDLE_TX=%g); opened at:\n",
                           (unsigned long long)k->id, k->server_pid,
                           (double)(now_coarse_ns - k->last_ns) / 1e9, s->suspect_idle_tx);
        pql_text_stack(&b, sym, k->stack);
        if (k->tx_stack) {
            pql_buf_puts(&b, "  its transaction began at:\n");
            pql_text_stack(&b, sym, k->tx_stack);
        }
    }
    emit(&b);
    pql_sym_release(sym);
}

void pql_text_suspect_closed(const struct pql_conn *rec, double now_mono)
{
    if (rec->leak_kind == PQL_LEAK_UNCLOSED)
        pql_log("connection #%llu, reported as a suspect, returned after %.0f s", (unsigned long long)rec->id,
                now_mono - rec->opened_mono);
    else
        pql_log("connection #%llu, reported as a suspect, was never returned: closed by the runtime at exit "
                "after %.0f s",
                (unsigned long long)rec->id, now_mono - rec->opened_mono);
}

void pql_text_misuse(const struct pql_conn *rec, bool forked, int other_tid, uint32_t here)
{
    struct pql_buf b;
    pql_buf_init(&b);
    pql_text_header(&b, "WARNING");
    if (forked)
        pql_buf_printf(&b,
                       "connection #%llu, opened by process %d, is used by its forked child %d: a libpq "
                       "connection cannot be shared across fork: both now write to one server session, and a "
                       "PQfinish by either ends it for both\n",
                       (unsigned long long)rec->id, (int)rec->pid, (int)pql_pid());
    else
        pql_buf_printf(
            &b,
            "connection #%llu is used by thread %d while thread %d is using it: a libpq connection "
            "must not be used by two threads at once\n",
            (unsigned long long)rec->id, pql_tid(), other_tid);
    struct pql_symbolizer *sym = pql_sym_acquire();
    pql_buf_puts(&b, "  used at:\n");
    pql_text_stack(&b, sym, here);
    pql_buf_puts(&b, "  opened at:\n");
    pql_text_stack(&b, sym, rec->stack);
    pql_sym_release(sym);
    emit(&b);
}

static const char *reason_text(enum pql_refusal_reason r)
{
    switch (r) {
    case PQL_REFUSED_NONBLOCKING:
        return "non-blocking connect, no free slot";
    case PQL_REFUSED_NO_WAIT:
        return "PQLEAK_CHECKOUT_TIMEOUT=0";
    case PQL_REFUSED_DEADLOCK:
        return "would wait forever: this thread holds connections and every other holder is waiting";
    case PQL_REFUSED_TIMEOUT:
        return "checkout timeout";
    }
    return "refused";
}

void pql_text_refusal(char *msg, size_t len, const struct pql_refusal *why)
{
    struct pql_buf b;
    pql_buf_init(&b);
    const struct pql_target *t = &why->target;
    if (why->per_target)
        pql_buf_printf(
            &b,
            "connection refused by pqleak (%s): PQLEAK_MAX_CONNS_PER_TARGET=%d reached, %ld open to "
            "host=%s port=%s dbname=%s user=%s, waited %.1f s",
            reason_text(why->reason), why->cap, why->open, t->host, t->port, t->dbname, t->user, why->waited);
    else
        pql_buf_printf(
            &b, "connection refused by pqleak (%s): PQLEAK_MAX_CONNS=%d reached, %ld open, waited %.1f s",
            reason_text(why->reason), why->cap, why->open, why->waited);
    /* Who holds the connections: symbolized on this (already failing) path only. */
    struct pql_holders h;
    pql_rmodel_holders(&h, why->bucket);
    struct pql_symbolizer *sym = h.n ? pql_sym_acquire() : NULL;
    for (size_t g = 0; g < h.n; g++) {
        pql_buf_printf(&b, "; %ld held by ", h.g[g].count);
        text_site(&b, sym, h.g[g].stack);
        pql_buf_printf(&b, ", oldest %.*f s", h.g[g].oldest < 10 ? 1 : 0, h.g[g].oldest);
    }
    if (h.rest)
        pql_buf_printf(&b, "; %ld more held from %zu other places", h.rest, h.rest_groups);
    pql_sym_release(sym);
    pql_buf_puts(&b, "\n");
    if (len > 0)
        snprintf(msg, len, "%s", b.failed ? "connection refused by pqleak (out of memory)\n" : b.data);
    pql_buf_free(&b);
}
