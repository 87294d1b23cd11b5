/* JSON reports (json.h), written by hand into a buffer: the shim links no JSON library into its hosts.
 * Strings go through pql_buf_json_str (escaped, invalid UTF-8 replaced). Reporting thread only. */
#define _GNU_SOURCE
#include "json.h"

#include "live.h"
#include "names.h"
#include "proc.h"
#include "stack.h"
#include "testname.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void json_target(struct pql_buf *b, const struct pql_target *t)
{
    pql_buf_puts(b, "{\"" PQL_F_HOST "\": ");
    pql_buf_json_str(b, *t->host ? t->host : NULL);
    pql_buf_puts(b, ", \"" PQL_F_PORT "\": ");
    pql_buf_json_str(b, *t->port ? t->port : NULL);
    pql_buf_puts(b, ", \"" PQL_F_DBNAME "\": ");
    pql_buf_json_str(b, *t->dbname ? t->dbname : NULL);
    pql_buf_puts(b, ", \"" PQL_F_USER "\": ");
    pql_buf_json_str(b, *t->user ? t->user : NULL);
    pql_buf_puts(b, ", \"" PQL_F_APPLICATION_NAME "\": ");
    pql_buf_json_str(b, *t->appname ? t->appname : NULL);
    pql_buf_puts(b, "}");
}

static void json_time(struct pql_buf *b, double wall)
{
    time_t s = (time_t)wall;
    struct tm tm;
    gmtime_r(&s, &tm);
    char ts[64];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    pql_buf_printf(b, "\"%s.%03dZ\"", ts, (int)((wall - (double)s) * 1000) % 1000);
}

static void json_utilization(struct pql_buf *b, const struct pql_report *r)
{
    const struct pql_counters *c = &r->counters;
    const struct pql_wait_counters *w = &r->waits;
    int cap = r->settings->max_conns;
    pql_buf_printf(b,
                   "{\"" PQL_F_OPEN "\": %ld, \"" PQL_F_PEAK_OPEN "\": %ld, \"" PQL_F_CAP
                   "\": %d, \"" PQL_F_UTILIZATION_PCT "\": ",
                   c->open, c->peak_open, cap);
    if (cap > 0)
        pql_buf_json_num(b, 100.0 * (double)c->open / cap);
    else
        pql_buf_puts(b, "null");
    pql_buf_printf(b,
                   ", \"" PQL_F_OPENED_TOTAL "\": %ld, \"" PQL_F_CLOSED_TOTAL "\": %ld, \"" PQL_F_FAILED_TOTAL
                   "\": %ld",
                   c->opened_total, c->closed_total, c->failed_total);
    pql_buf_printf(b, ", \"" PQL_F_WAITS_TOTAL "\": %ld, \"" PQL_F_WAIT_S_TOTAL "\": ", w->waits_total);
    pql_buf_json_num(b, w->wait_s_total);
    pql_buf_puts(b, ", \"" PQL_F_WAIT_S_MAX "\": ");
    pql_buf_json_num(b, w->wait_s_max);
    pql_buf_printf(b, ", \"" PQL_F_TIMEOUTS_TOTAL "\": %ld, \"" PQL_F_REFUSED_TOTAL "\": %ld}",
                   w->timeouts_total, w->refused_total);
}

static void json_id(struct pql_buf *b, uint32_t id)
{
    if (id)
        pql_buf_printf(b, "%u", id);
    else
        pql_buf_puts(b, "null");
}

static void json_int_or_null(struct pql_buf *b, long v)
{
    if (v)
        pql_buf_printf(b, "%ld", v);
    else
        pql_buf_puts(b, "null");
}

/* ", "NAME": "test name"", left out when the test (testname.h) is none. */
static void json_test(struct pql_buf *b, const char *name, uint16_t test)
{
    const char *s = pql_testname(test);
    if (!s)
        return;
    pql_buf_printf(b, ", \"%s\": ", name);
    pql_buf_json_str(b, s);
}

static void json_connection(struct pql_buf *b, const struct pql_report *r, const struct pql_conn *c)
{
    pql_buf_printf(b, "{\"" PQL_F_ID "\": %llu, \"" PQL_F_STATUS "\": \"%s\", \"" PQL_F_TARGET "\": ",
                   (unsigned long long)c->id, c->state == PQL_OK ? "ok" : "bad");
    json_target(b, &c->target);
    pql_buf_puts(b, ", \"" PQL_F_SERVER_PID "\": ");
    json_int_or_null(b, c->server_pid);
    pql_buf_puts(b, ", \"" PQL_F_CLIENT_PORT "\": ");
    json_int_or_null(b, c->client_port);
    pql_buf_puts(b, ", \"" PQL_F_AGE_S "\": ");
    pql_buf_json_num(b, r->now_mono - c->opened_mono);
    pql_buf_puts(b, ", \"" PQL_F_IDLE_S "\": ");
    pql_buf_json_num(b, pql_rmodel_idle_s(r, c));
    pql_buf_printf(b, ", \"" PQL_F_TX_STATUS "\": \"%s\", \"" PQL_F_THREAD "\": %d, \"" PQL_F_SUSPECT "\": ",
                   pql_conn_tx_name(c), (int)c->tid);
    pql_buf_json_str(b, pql_suspect_name(c->suspect));
    pql_buf_puts(b, ", \"" PQL_F_STACK "\": ");
    json_id(b, c->stack);
    pql_buf_puts(b, ", \"" PQL_F_TX_STACK "\": ");
    json_id(b, c->tx_stack);
    pql_buf_puts(b, ", \"" PQL_F_LAST_STACK "\": ");
    json_id(b, c->last_stack);
    json_test(b, PQL_F_TEST, c->test);
    json_test(b, PQL_F_TX_TEST, c->tx_stack ? c->tx_test : 0);
    if (r->forks && c->use_fork < PQL_FORKS_UNKNOWN)
        pql_buf_printf(b, ", \"" PQL_F_LAST_USE_FORK "\": %d", c->use_fork);
    if (r->forks)
        pql_buf_printf(b, ", \"" PQL_F_LAST_USE_NS "\": %lld", (long long)pql_conn_last_use_ns(c));
    pql_buf_puts(b, "}");
}

/* {"function", "file", "line"} of a headline frame, or null. */
static void json_site(struct pql_buf *b, const struct pql_frame *f)
{
    if (!f) {
        pql_buf_puts(b, "null");
        return;
    }
    pql_buf_puts(b, "{\"" PQL_F_FUNCTION "\": ");
    pql_buf_json_str(b, f->function);
    pql_buf_puts(b, ", \"" PQL_F_FILE "\": ");
    pql_buf_json_str(b, f->file);
    pql_buf_puts(b, ", \"" PQL_F_LINE "\": ");
    json_int_or_null(b, f->line > 0 ? f->line : 0);
    pql_buf_puts(b, "}");
}

static void json_misuse(struct pql_buf *b, const struct pql_report *r)
{
    pql_buf_puts(b, ",\n \"" PQL_F_MISUSE "\": [");
    for (size_t i = 0; i < r->nmisuse; i++) {
        const struct pql_misuse_event *e = &r->misuse[i];
        pql_buf_printf(
            b,
            "%s\n  {\"" PQL_F_KIND "\": \"%s\", \"" PQL_F_CONNECTION "\": %llu, \"" PQL_F_SERVER_PID "\": ",
            i ? "," : "", e->kind == PQL_MISUSE_FORK ? "fork" : "threads", (unsigned long long)e->conn);
        json_int_or_null(b, e->server_pid);
        pql_buf_printf(b, ", \"" PQL_F_PID "\": %d, \"" PQL_F_OPENED_BY "\": %d, \"" PQL_F_TIME "\": ",
                       (int)e->pid, (int)e->opened_by);
        json_time(b, e->time);
        pql_buf_printf(b, ", \"" PQL_F_CLOSED "\": %s, \"" PQL_F_STACK "\": ", e->closed ? "true" : "false");
        json_id(b, e->stack);
        pql_buf_puts(b, ", \"" PQL_F_OPEN_STACK "\": ");
        json_id(b, e->open_stack);
        pql_buf_puts(b, ", \"" PQL_F_SITE "\": ");
        json_site(b, e->stack ? pql_rmodel_headline(r, e->stack, NULL) : NULL);
        if (e->kind == PQL_MISUSE_FORK && e->mono_ns > 0)
            pql_buf_printf(b, ", \"" PQL_F_MONO_NS "\": %lld", (long long)e->mono_ns);
        if (e->pid == e->opened_by && e->last_use_fork < PQL_FORKS_UNKNOWN)
            pql_buf_printf(b, ", \"" PQL_F_LAST_USE_FORK "\": %d", e->last_use_fork);
        if (e->opener_fork && e->opener_fork < PQL_FORKS_UNKNOWN)
            pql_buf_printf(b, ", \"" PQL_F_OPENER_FORK "\": %d", e->opener_fork);
        pql_buf_puts(b, "}");
    }
    pql_buf_puts(b, "]");
}

static void json_stack(struct pql_buf *b, const struct pql_report *r, uint32_t id)
{
    const struct pql_frame *frames[PQL_MAX_FRAMES];
    int n = pql_rmodel_frames(r, id, frames, PQL_MAX_FRAMES);
    pql_buf_printf(b, "\"%u\": [", id);
    const char *sep = "";
    for (int i = 0; i < n; i++) {
        const struct pql_frame *f = frames[i];
        if (!f)
            continue;
        pql_buf_printf(b, "%s\n    {\"" PQL_F_FUNCTION "\": ", sep);
        pql_buf_json_str(b, f->function);
        pql_buf_puts(b, ", \"" PQL_F_FILE "\": ");
        pql_buf_json_str(b, f->file);
        pql_buf_puts(b, ", \"" PQL_F_LINE "\": ");
        json_int_or_null(b, f->line > 0 ? f->line : 0);
        pql_buf_puts(b, ", \"" PQL_F_MODULE "\": ");
        pql_buf_json_str(b, f->module);
        pql_buf_puts(b, ", \"" PQL_F_OFFSET "\": ");
        if (f->module)
            pql_buf_printf(b, "\"0x%lx\"", (unsigned long)f->offset);
        else
            pql_buf_puts(b, "null");
        pql_buf_printf(b, ", \"" PQL_F_LANG "\": \"%s\"}", f->lang);
        sep = ",";
    }
    pql_buf_puts(b, "]");
}

static void json_leaks(struct pql_buf *b, const struct pql_report *r)
{
    pql_buf_puts(b, ",\n \"" PQL_F_LEAKS "\": [");
    for (size_t g = 0; g < r->ngroups; g++) {
        const struct pql_group *gr = &r->groups[g];
        pql_buf_puts(b, g ? ",\n  {\"" PQL_F_STACK "\": " : "\n  {\"" PQL_F_STACK "\": ");
        json_id(b, gr->stack);
        pql_buf_puts(b, ", \"" PQL_F_TX_STACK "\": ");
        json_id(b, gr->tx_stack);
        pql_buf_printf(b, ", \"" PQL_F_COUNT "\": %ld, \"" PQL_F_CONNECTIONS "\": [", gr->count);
        for (long k = 0; k < gr->count; k++)
            pql_buf_printf(b, "%s%llu", k ? ", " : "",
                           (unsigned long long)r->conns[r->order[gr->run + (size_t)k]].id);
        pql_buf_printf(b, "], \"" PQL_F_KIND "\": \"%s\", \"" PQL_F_SUPPRESSED "\": %s, \"" PQL_F_RULE "\": ",
                       gr->kind, gr->rule >= 0 ? "true" : "false");
        if (gr->rule >= 0) {
            pql_buf_json_str(b, r->rules->v[gr->rule].text);
        } else {
            pql_buf_puts(b, "null");
        }
        pql_buf_puts(b, ", \"" PQL_F_SITE "\": ");
        json_site(b, gr->site);
        pql_buf_puts(b, ", \"" PQL_F_SITE_FROM "\": ");
        pql_buf_json_str(b, pql_site_from_name(gr->site_from));
        pql_buf_puts(b, "}");
    }
    pql_buf_puts(b, "]");
}

/* LeakSanitizer's "Suppressions used": each rule that matched, with what it suppressed. */
static void json_suppressions_used(struct pql_buf *b, const struct pql_report *r)
{
    pql_buf_puts(b, ",\n \"" PQL_F_SUPPRESSIONS_USED "\": [");
    const char *sep = "";
    for (size_t i = 0; r->rules && i < r->rules->n; i++) {
        const struct pql_rule *rule = &r->rules->v[i];
        if (!rule->groups)
            continue;
        pql_buf_printf(b, "%s{\"" PQL_F_RULE "\": ", sep);
        pql_buf_json_str(b, rule->text);
        pql_buf_printf(b, ", \"" PQL_F_COUNT "\": %lu, \"" PQL_F_GROUPS "\": %lu}", rule->hits, rule->groups);
        sep = ", ";
    }
    pql_buf_puts(b, "]");
}

void pql_json_report(struct pql_buf *b, const struct pql_report *r, bool with_leaks)
{
    pql_buf_puts(b, "{\"" PQL_F_SCHEMA "\": \"" PQL_SCHEMA "\", \"" PQL_F_VERSION "\": \"" PQL_VERSION
                    "\", \"" PQL_F_TRIGGER "\": ");
    pql_buf_json_str(b, r->trigger);
    pql_buf_printf(b, ", \"" PQL_F_PID "\": %d, \"" PQL_F_PROGRAM "\": ", (int)pql_pid());
    pql_buf_json_str(b, r->program);
    pql_buf_puts(b, ", \"" PQL_F_TIME "\": ");
    json_time(b, r->now_wall);
    pql_buf_puts(b, ",\n \"" PQL_F_SETTINGS "\": {");
    pql_settings_json(r->settings, b);
    pql_buf_puts(b, "},\n \"" PQL_F_UTILIZATION "\": ");
    json_utilization(b, r);
    pql_buf_puts(b, ",\n \"" PQL_F_CONNECTIONS "\": [");
    for (size_t i = 0; i < r->nconns; i++) {
        pql_buf_puts(b, i ? ",\n  " : "\n  ");
        json_connection(b, r, &r->conns[i]);
    }
    pql_buf_puts(b, "]");
    if (with_leaks) {
        json_leaks(b, r);
        json_suppressions_used(b, r);
    }
    json_misuse(b, r);
    /* Every stack a connection refers to (open and transaction stacks), each once. */
    pql_buf_puts(b, ",\n \"" PQL_F_STACKS "\": {");
    const char *sep = "\n  ";
    size_t nseen = 0;
    uint32_t *seen = pql_rmodel_stacks(r, &nseen);
    for (size_t i = 0; i < nseen; i++) {
        pql_buf_puts(b, sep);
        json_stack(b, r, seen[i]);
        sep = ",\n  ";
    }
    if (!seen)
        b->failed = true;
    free(seen);
    pql_buf_puts(b, "}}\n");
}
