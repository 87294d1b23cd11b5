/* The output of `pqleak top` (topmodel.h): the order of the rows, the round's Nagios status, the text
 * screen and the JSON document (schema pqleak-top/1, docs/top.md). Every string that came from a
 * report or a server is escaped on output: JSON through jansson (control characters escaped, bytes
 * that are not UTF-8 replaced), text through esc(). Command-line process only. */
#include "topmodel.h"

#include "escape.h"
#include "names.h"
#include "path.h"
#include "print.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUERY_COLS   40 /* characters of a query shown in the text */
#define PROGRAM_COLS 24
#define APP_COLS     16

/* ---- escaping ---- */

/* s for one text column, into buf (len bytes): runs of white space (a query's newlines) as one space,
 * every other byte the common escape would escape (common/escape.h: control bytes, C1 controls, invalid
 * UTF-8) as \\xNN, cut to at most cols characters (never inside a UTF-8 sequence or an escape) with
 * "..." when cut. "-" for NULL. Returns buf. */
static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static const char *esc(char *buf, size_t len, const char *s, size_t cols)
{
    if (!s)
        s = "-"; /* an SQL NULL, or unknown */
    size_t slen = strlen(s), o = 0, shown = 0;
    bool cut = false;
    for (size_t i = 0; i < slen;) {
        bool escape;
        size_t n = pql_escape_unit(s, slen, i, false, &escape), pn, width = 1;
        char piece[32];
        if (is_space(s[i])) {
            while (i + n < slen && is_space(s[i + n]))
                n++;
            piece[0] = ' ', pn = 1;
        } else if (escape) {
            pn = width = pql_escape(piece, sizeof piece, s + i, n, false);
        } else {
            memcpy(piece, s + i, n), pn = n;
        }
        if (shown + width > cols || o + pn + 4 >= len) {
            cut = true;
            break;
        }
        memcpy(buf + o, piece, pn);
        o += pn, shown += width, i += n;
    }
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* A JSON string of s, null for NULL; bytes that are not UTF-8 become '?' (jansson refuses them). */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (!j) {
        char *c = cli_xstrdup(s);
        for (char *p = c; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        j = json_string(c);
        free(c);
    }
    if (!j)
        cli_oom();
    return j;
}

static void set(json_t *o, const char *k, json_t *v)
{
    if (!v || json_object_set_new(o, k, v) != 0)
        cli_oom();
}

/* ---- order and status ---- */

static double num(const json_t *obj, const char *name, double def)
{
    const json_t *x = json_object_get(obj, name);
    return json_is_number(x) ? json_number_value(x) : def;
}

/* Seconds the connection has been in its transaction: the server's xact_start when known; else the
 * client's time idle in it (a lower bound); -1 when not in one. */
static double tx_age(const struct top_conn *c)
{
    if (c->back)
        return c->back->xact_age;
    const char *tx = json_string_value(json_object_get(c->c, PQL_F_TX_STATUS));
    if (tx && (strcmp(tx, PQL_V_TX_INTRANS) == 0 || strcmp(tx, PQL_V_TX_INERROR) == 0))
        return num(c->c, PQL_F_IDLE_S, 0);
    return -1;
}

static double sort_key(const struct top_conn *c, enum top_sort by)
{
    return by == TOP_SORT_AGE    ? num(c->c, PQL_F_AGE_S, 0)
           : by == TOP_SORT_IDLE ? num(c->c, PQL_F_IDLE_S, 0)
                                 : tx_age(c);
}

static int cmp_conn(const void *a, const void *b, void *arg)
{
    const struct top_conn *x = a, *y = b;
    enum top_sort by = *(const enum top_sort *)arg;
    double kx = sort_key(x, by), ky = sort_key(y, by);
    if (kx != ky)
        return kx > ky ? -1 : 1;
    double ax = num(x->c, PQL_F_AGE_S, 0), ay = num(y->c, PQL_F_AGE_S, 0);
    if (ax != ay)
        return ax > ay ? -1 : 1;
    if (x->proc->pid != y->proc->pid)
        return x->proc->pid < y->proc->pid ? -1 : 1;
    return (int)(num(x->c, PQL_F_ID, 0) - num(y->c, PQL_F_ID, 0));
}

void cli_top_sort(struct top_round *r, enum top_sort by)
{
    r->sort = by;
    if (r->nc)
        qsort_r(r->c, r->nc, sizeof *r->c, cmp_conn, &by);
}

/* Client backends, ours included (it takes a slot too). */
static long backends(const struct top_server *s)
{
    return (long)s->nb + 1;
}

static int server_status(const struct top_server *s)
{
    if (!s->queried)
        return CLI_STATUS_UNKNOWN;
    if (s->max_connections <= 0)
        return CLI_STATUS_OK;
    if (backends(s) * 100 >= TOP_CRIT_PCT * s->max_connections)
        return CLI_STATUS_CRITICAL;
    if (backends(s) * 100 >= TOP_WARN_PCT * s->max_connections)
        return CLI_STATUS_WARNING;
    return CLI_STATUS_OK;
}

/* CRITICAL over WARNING over UNKNOWN over OK: a full server is news whatever else could not be seen. */
static int worse(int a, int b)
{
    static const int rank[] = {
        [CLI_STATUS_OK] = 0, [CLI_STATUS_WARNING] = 2, [CLI_STATUS_CRITICAL] = 3, [CLI_STATUS_UNKNOWN] = 1};
    return rank[a] >= rank[b] ? a : b;
}

int cli_top_status(const struct top_round *r)
{
    int st = CLI_STATUS_OK;
    for (size_t i = 0; i < r->ns; i++)
        st = worse(st, server_status(r->s[i]));
    for (size_t i = 0; i < r->np; i++)
        if (!r->p[i].root)
            st = worse(st, CLI_STATUS_UNKNOWN);
    return st;
}

static long suspects_of(const struct top_proc *p)
{
    long n = 0;
    const json_t *conns = json_object_get(p->root, PQL_F_CONNECTIONS);
    for (size_t i = 0; i < json_array_size(conns); i++)
        n += json_is_string(json_object_get(json_array_get(conns, i), PQL_F_SUSPECT));
    return n;
}

static size_t unattributed(const struct top_server *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nb; i++)
        n += !s->b[i].owned;
    return n;
}

/* ---- JSON ---- */

/* The id in the round's "stacks" of stack id (a report's) of p; identical stacks share one id. */
static json_t *stack_ref(const struct top_proc *p, const json_t *id, json_t *stacks, json_t *by_text)
{
    char key[32];
    const json_t *frames = NULL;
    if (json_is_integer(id)) {
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
        frames = json_object_get(json_object_get(p->root, PQL_F_STACKS), key);
    }
    if (!frames)
        return json_null();
    char *text = json_dumps(frames, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        cli_oom();
    json_t *known = json_object_get(by_text, text);
    json_int_t n = known ? json_integer_value(known) : (json_int_t)json_object_size(stacks) + 1;
    if (!known) {
        snprintf(key, sizeof key, "%lld", (long long)n);
        set(by_text, text, json_integer(n));
        set(stacks, key, json_deep_copy(frames));
    }
    free(text);
    return json_integer(n);
}

static json_t *jint_or_null(bool known, long v)
{
    return known ? json_integer(v) : json_null();
}

static json_t *site_json(const struct top_conn *c)
{
    if (!c->site.n)
        return json_null();
    const struct cli_frame *f = &c->site.f[0];
    json_t *o = json_object();
    set(o, "function", jstr(f->function));
    set(o, "file", jstr(f->file));
    set(o, "line", jint_or_null(f->line > 0, f->line));
    return o;
}

static json_t *backend_json(const struct top_backend *b)
{
    json_t *o = json_object();
    set(o, "state", jstr(b->state));
    set(o, "xact_start", jstr(b->xact_start));
    set(o, "query_start", jstr(b->query_start));
    set(o, "query", jstr(b->query));
    set(o, "wait_event", jstr(b->wait_event));
    set(o, "application_name", jstr(b->application_name));
    set(o, "client_port", jint_or_null(b->client_port != 0, b->client_port));
    return o;
}

static json_t *conn_json(const struct top_conn *c, json_t *stacks, json_t *by_text)
{
    json_t *o = json_object();
    const json_t *spid = json_object_get(c->c, PQL_F_SERVER_PID);
    set(o, "pid", json_integer(c->proc->pid));
    set(o, "program", jstr(c->proc->program));
    set(o, "script", jstr(c->proc->script));
    set(o, "id", json_integer((json_int_t)num(c->c, PQL_F_ID, 0)));
    set(o, "server_pid", json_is_integer(spid) ? json_integer(json_integer_value(spid)) : json_null());
    set(o, "server_name", jstr(c->srv ? c->srv->name : NULL));
    set(o, "tx_status", jstr(json_string_value(json_object_get(c->c, PQL_F_TX_STATUS))));
    set(o, "age_s", json_real(num(c->c, PQL_F_AGE_S, 0)));
    set(o, "idle_s", json_real(num(c->c, PQL_F_IDLE_S, 0)));
    set(o, "suspect", jstr(json_string_value(json_object_get(c->c, PQL_F_SUSPECT))));
    set(o, "site", site_json(c));
    set(o, "site_from", c->site.n ? jstr(c->site_last_used ? "last_used" : "stack") : json_null());
    set(o, "stack", stack_ref(c->proc, json_object_get(c->c, PQL_F_STACK), stacks, by_text));
    set(o, "tx_stack", stack_ref(c->proc, json_object_get(c->c, PQL_F_TX_STACK), stacks, by_text));
    set(o, "server", c->back ? backend_json(c->back) : json_null());
    return o;
}

static json_t *proc_json(const struct top_proc *p)
{
    json_t *o = json_object();
    const json_t *u = json_object_get(p->root, PQL_F_UTILIZATION);
    set(o, "pid", json_integer(p->pid));
    set(o, "user", jstr(p->user));
    set(o, "program", jstr(p->program));
    set(o, "script", jstr(p->script));
    set(o, "answered", json_boolean(p->root != NULL));
    set(o, "error", jstr(p->why));
    set(o, "report_time", jstr(json_string_value(json_object_get(p->root, PQL_F_TIME))));
    set(o, "open", jint_or_null(p->root, (long)num(u, PQL_F_OPEN, 0)));
    set(o, "cap", jint_or_null(p->root, (long)num(u, PQL_F_CAP, 0)));
    set(o, "suspects", jint_or_null(p->root, suspects_of(p)));
    return o;
}

static json_t *server_json(const struct top_server *s)
{
    json_t *o = json_object();
    set(o, "name", jstr(s->name));
    set(o, "host", jstr(s->host));
    set(o, "port", jstr(s->port));
    set(o, "queried", json_boolean(s->queried));
    set(o, "error", jstr(s->error));
    set(o, "status", jstr(cli_status_word(server_status(s))));
    set(o, "max_connections", jint_or_null(s->queried, s->max_connections));
    set(o, "backends", jint_or_null(s->queried, backends(s)));
    set(o, "tracked", json_integer((json_int_t)s->tracked));
    set(o, "unattributed", jint_or_null(s->queried, (long)unattributed(s)));
    return o;
}

static json_t *unattributed_json(const struct top_server *s, const struct top_backend *b)
{
    json_t *o = json_object();
    set(o, "server", jstr(s->name));
    set(o, "server_pid", json_integer(b->pid));
    set(o, "state", jstr(b->state));
    set(o, "query", jstr(b->query));
    set(o, "application_name", jstr(b->application_name));
    set(o, "client_addr", jstr(b->client_addr));
    set(o, "client_port", jint_or_null(b->client_port != 0, b->client_port));
    set(o, "backend_start", jstr(b->backend_start));
    return o;
}

bool cli_top_write_json(FILE *out, const struct top_round *r, int status)
{
    json_t *d = json_object(), *servers = json_array(), *procs = json_array(), *conns = json_array();
    json_t *un = json_array(), *stacks = json_object(), *by_text = json_object();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    set(d, "schema", jstr("pqleak-top/1"));
    set(d, "time", jstr(r->time));
    set(d, "hostname", jstr(host));
    set(d, "status", jstr(cli_status_word(status)));
    for (size_t i = 0; i < r->ns; i++) {
        json_array_append_new(servers, server_json(r->s[i]));
        for (size_t j = 0; j < r->s[i]->nb; j++)
            if (!r->s[i]->b[j].owned)
                json_array_append_new(un, unattributed_json(r->s[i], r->s[i]->b + j));
    }
    for (size_t i = 0; i < r->np; i++)
        json_array_append_new(procs, proc_json(&r->p[i]));
    for (size_t i = 0; i < r->nc; i++)
        json_array_append_new(conns, conn_json(&r->c[i], stacks, by_text));
    set(d, "servers", servers);
    set(d, "processes", procs);
    set(d, "connections", conns);
    set(d, "unattributed", un);
    set(d, "stacks", stacks);
    json_decref(by_text);
    int rc = json_dumpf(d, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(d);
    return rc == 0 && fputc('\n', out) != EOF;
}

/* ---- text ---- */

/* "python3.11 app.py", or the program's file name, escaped and cut to cols characters. */
static const char *program_words(char *buf, size_t len, const struct top_proc *p, size_t cols)
{
    const char *prog = p->program ? pql_base_name(p->program) : "?";
    char *raw =
        cli_xasprintf("%s%s%s", prog, p->script ? " " : "", p->script ? pql_base_name(p->script) : "");
    esc(buf, len, raw, cols);
    free(raw);
    return buf;
}

static void fmt_age(char *buf, size_t len, double s)
{
    if (s < 0)
        snprintf(buf, len, "-");
    else if (s < 100)
        snprintf(buf, len, "%.1f s", s);
    else if (s < 6000)
        snprintf(buf, len, "%.0f min", floor(s / 60));
    else
        snprintf(buf, len, "%.1f h", s / 3600);
}

static void print_header(FILE *out, const struct top_round *r, int status)
{
    long susp = 0, silent = 0, unatt = 0;
    for (size_t i = 0; i < r->np; i++) {
        susp += suspects_of(&r->p[i]);
        silent += !r->p[i].root;
    }
    for (size_t i = 0; i < r->ns; i++)
        unatt += (long)unattributed(r->s[i]);
    char n1[64], n2[64], n3[64], n4[64];
    fprintf(out, "PQLEAK %s - %s in %s", cli_status_word(status),
            cli_plural(n1, sizeof n1, (long)r->nc, "connection"),
            cli_plural(n2, sizeof n2, (long)r->np, "process"));
    if (silent)
        fprintf(out, " (%ld not answering)", silent);
    if (susp)
        fprintf(out, ", %s", cli_plural(n3, sizeof n3, susp, "suspect"));
    fprintf(out, ", %s", cli_plural(n4, sizeof n4, unatt, "unattributed backend"));
    fprintf(out, " | connections=%zu suspects=%ld processes=%zu not_answering=%ld unattributed=%ld", r->nc,
            susp, r->np, silent, unatt);
    for (size_t i = 0; i < r->ns; i++)
        if (r->s[i]->queried && r->s[i]->max_connections > 0) {
            long m = r->s[i]->max_connections;
            fprintf(out, " backends_%zu=%ld;%ld;%ld;0;%ld", i + 1, backends(r->s[i]),
                    (TOP_WARN_PCT * m + 99) / 100, (TOP_CRIT_PCT * m + 99) / 100, m);
        }
    fputc('\n', out);
}

static void print_procs(FILE *out, const struct top_round *r)
{
    char n[64], prog[600], why[600];
    fprintf(out, "\n%s on %s:\n", cli_plural(n, sizeof n, (long)r->np, "process"), "this host");
    if (!r->np) {
        fprintf(out, "  none runs pqleak's shim (or none has connected yet)\n");
        return;
    }
    fprintf(out, "  %-8s %-10s %5s %5s %8s  %s\n", "PID", "USER", "OPEN", "CAP", "SUSPECTS", "PROGRAM");
    for (size_t i = 0; i < r->np; i++) {
        const struct top_proc *p = &r->p[i];
        char user[64];
        esc(user, sizeof user, p->user, 10);
        program_words(prog, sizeof prog, p, 200);
        if (!p->root) {
            fprintf(out, "  %-8d %-10s %5s %5s %8s  %s: NOT ANSWERING: %s\n", p->pid, user, "?", "?", "?",
                    prog, esc(why, sizeof why, p->why, 400));
            continue;
        }
        const json_t *u = json_object_get(p->root, PQL_F_UTILIZATION);
        char cap[32] = "-";
        if (num(u, PQL_F_CAP, 0) > 0)
            snprintf(cap, sizeof cap, "%.0f", num(u, PQL_F_CAP, 0));
        fprintf(out, "  %-8d %-10s %5.0f %5s %8ld  %s\n", p->pid, user, num(u, PQL_F_OPEN, 0), cap,
                suspects_of(p), prog);
    }
}

static void print_servers(FILE *out, const struct top_round *r)
{
    char n[64], name[300], err[600];
    fprintf(out, "\n%s:\n", cli_plural(n, sizeof n, (long)r->ns, "server"));
    for (size_t i = 0; i < r->ns; i++) {
        const struct top_server *s = r->s[i];
        esc(name, sizeof name, s->name, 200);
        if (!s->queried) {
            fprintf(out, "  %s: NOT QUERIED (%s); its connections show the client side only\n", name,
                    esc(err, sizeof err, s->error, 400));
            continue;
        }
        fprintf(out,
                "  %s: %s: %ld client backends of max_connections %ld (%.0f%%), %zu tracked here, %zu "
                "unattributed\n",
                name, cli_status_word(server_status(s)), backends(s), s->max_connections,
                s->max_connections > 0 ? 100.0 * (double)backends(s) / (double)s->max_connections : 0.0,
                s->tracked, unattributed(s));
    }
}

/* The server's state when joined, else the client's view of the transaction, marked as such. */
static const char *state_words(const struct top_conn *c)
{
    if (c->back)
        return c->back->state ? c->back->state : "?";
    const char *tx = json_string_value(json_object_get(c->c, PQL_F_TX_STATUS));
    if (!c->srv)
        return "not connected";
    if (c->srv->queried)
        return "not on the server";
    if (tx && strcmp(tx, PQL_V_TX_INTRANS) == 0)
        return "client: in transaction";
    if (tx && strcmp(tx, PQL_V_TX_INERROR) == 0)
        return "client: failed transaction";
    if (tx && strcmp(tx, PQL_V_TX_ACTIVE) == 0)
        return "client: active";
    return tx && strcmp(tx, PQL_V_TX_IDLE) == 0 ? "client: idle" : "client: unknown";
}

static void print_conns(FILE *out, const struct top_round *r)
{
    char n[64];
    static const char *const order[] = {[TOP_SORT_TX] = "oldest transaction first",
                                        [TOP_SORT_AGE] = "longest open first",
                                        [TOP_SORT_IDLE] = "longest idle first"};
    fprintf(out, "\n%s, %s:\n", cli_plural(n, sizeof n, (long)r->nc, "connection"), order[r->sort]);
    if (!r->nc)
        return;
    fprintf(out, "  %-8s %-*s %-8s %-22s %-8s %-*s %s\n", "PID", PROGRAM_COLS, "PROGRAM", "BACKEND", "STATE",
            "TX AGE", QUERY_COLS + 3, "LAST QUERY", "HELD AT");
    for (size_t i = 0; i < r->nc; i++) {
        const struct top_conn *c = &r->c[i];
        char progcol[PROGRAM_COLS * 4 + 8], backend[32] = "-", age[32], q[QUERY_COLS * 4 + 8];
        char site[600], susp[64] = "", state[100];
        program_words(progcol, sizeof progcol, c->proc, PROGRAM_COLS);
        const json_t *spid = json_object_get(c->c, PQL_F_SERVER_PID);
        if (json_is_integer(spid))
            snprintf(backend, sizeof backend, "%lld", (long long)json_integer_value(spid));
        fmt_age(age, sizeof age, tx_age(c));
        if (!c->back && tx_age(c) >= 0)
            strcat(age, "+"); /* the client's idle time in it: at least that old */
        esc(q, sizeof q, c->back ? c->back->query : NULL, QUERY_COLS);
        esc(state, sizeof state, state_words(c), 22);
        if (c->site.n) {
            char *s = cli_frame_short(&c->site.f[0]), e[500];
            snprintf(site, sizeof site, "%s%s", c->site_last_used ? "last used at " : "",
                     esc(e, sizeof e, s, 300));
            free(s);
        } else {
            snprintf(site, sizeof site, "?");
        }
        const char *sp = json_string_value(json_object_get(c->c, PQL_F_SUSPECT));
        if (sp)
            snprintf(susp, sizeof susp, "  SUSPECT (%.20s)",
                     strcmp(sp, PQL_V_IDLE_TX) == 0 ? "idle in transaction"
                     : strcmp(sp, PQL_V_AGE) == 0   ? "open too long"
                                                    : "?");
        fprintf(out, "  %-8d %-*s %-8s %-22s %-8s %-*s %s%s\n", c->proc->pid, PROGRAM_COLS, progcol, backend,
                state, age, QUERY_COLS + 3, q, site, susp);
    }
}

static void print_unattributed(FILE *out, const struct top_round *r)
{
    for (size_t i = 0; i < r->ns; i++) {
        const struct top_server *s = r->s[i];
        if (!s->queried)
            continue;
        char name[300], n[64];
        fprintf(out, "\nunattributed on %s: %s that no tracked process here owns\n",
                esc(name, sizeof name, s->name, 200),
                cli_plural(n, sizeof n, (long)unattributed(s), "client backend"));
        if (!unattributed(s))
            continue;
        fprintf(out, "  %-8s %-22s %-*s %-22s %-24s %s\n", "BACKEND", "STATE", APP_COLS, "APPLICATION",
                "CLIENT", "STARTED", "QUERY");
        for (size_t j = 0; j < s->nb; j++) {
            const struct top_backend *b = &s->b[j];
            if (b->owned)
                continue;
            char state[100], app[APP_COLS * 4 + 8], addr[200], client[240], q[QUERY_COLS * 4 + 8], start[64];
            if (b->client_addr)
                snprintf(client, sizeof client, "%s:%ld", esc(addr, sizeof addr, b->client_addr, 100),
                         b->client_port);
            else
                snprintf(client, sizeof client, "local");
            fprintf(out, "  %-8ld %-22s %-*s %-22s %-24s %s\n", b->pid,
                    esc(state, sizeof state, b->state, 22), APP_COLS,
                    esc(app, sizeof app, b->application_name, APP_COLS), client,
                    esc(start, sizeof start, b->backend_start, 24), esc(q, sizeof q, b->query, QUERY_COLS));
        }
    }
}

void cli_top_write_text(FILE *out, const struct top_round *r, int status)
{
    print_header(out, r, status);
    print_procs(out, r);
    print_servers(out, r);
    print_conns(out, r);
    print_unattributed(out, r);
}
