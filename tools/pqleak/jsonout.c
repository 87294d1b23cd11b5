/* The merged JSON writer (jsonout.h). Stack and connection ids of the input files are local to each
 * file; here every distinct stack gets one new id and every connection a new one, with the process it
 * lived in added to it. Command-line process only. */
#include "jsonout.h"

#include "findings.h"
#include "names.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Stacks already written, by key. */
struct depot {
    json_t *ids;    /* key -> id */
    json_t *stacks; /* the report's "stacks" object */
};

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *frame_json(const struct cli_frame *f)
{
    json_t *o = json_object();
    json_object_set_new(o, PQL_F_FUNCTION, str_or_null(f->function));
    json_object_set_new(o, PQL_F_FILE, str_or_null(f->file));
    json_object_set_new(o, PQL_F_LINE, f->line > 0 ? json_integer(f->line) : json_null());
    json_object_set_new(o, PQL_F_MODULE, str_or_null(f->module));
    json_object_set_new(o, PQL_F_OFFSET, str_or_null(f->offset));
    json_object_set_new(o, PQL_F_LANG, str_or_null(f->lang));
    return o;
}

/* The id of st in the output, adding it when new. */
static json_t *depot_id(struct depot *d, const struct cli_stack *st)
{
    char *key = cli_stack_key(st);
    json_t *id = json_object_get(d->ids, key);
    if (!id) {
        json_int_t n = (json_int_t)json_object_size(d->ids) + 1;
        id = json_integer(n);
        json_object_set_new(d->ids, key, id);
        json_t *frames = json_array();
        for (size_t i = 0; i < st->n; i++)
            json_array_append_new(frames, frame_json(&st->f[i]));
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)n);
        json_object_set_new(d->stacks, num, frames);
    }
    free(key);
    return json_integer(json_integer_value(id));
}

static json_t *proc_json(const struct cli_proc *p)
{
    json_t *o = json_object();
    json_object_set_new(o, PQL_F_PROGRAM, str_or_null(p ? p->program : NULL));
    json_object_set_new(o, PQL_F_PID, p && p->pid >= 0 ? json_integer(p->pid) : json_null());
    return o;
}

static json_t *site_json(const struct cli_frame *f, bool has)
{
    if (!has)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, PQL_F_FUNCTION, str_or_null(f->function));
    json_object_set_new(o, PQL_F_FILE, str_or_null(f->file));
    json_object_set_new(o, PQL_F_LINE, f->line > 0 ? json_integer(f->line) : json_null());
    return o;
}

static json_t *int_or_null(long v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

/* The "misuse" list: every entry read, fork hand-offs included and marked "handed_off". */
static json_t *misuse_json(struct depot *d, const struct cli_set *set)
{
    json_t *list = json_array();
    for (size_t i = 0; i < set->misuse.n; i++) {
        const struct cli_misuse *m = set->misuse.v[i];
        json_t *o = json_object();
        json_object_set_new(o, PQL_F_KIND, json_string(m->kind));
        json_object_set_new(o, PQL_F_CONNECTION, int_or_null(m->connection));
        json_object_set_new(o, PQL_F_SERVER_PID, int_or_null(m->server_pid));
        json_object_set_new(o, PQL_F_PID, int_or_null(m->pid));
        json_object_set_new(o, PQL_F_OPENED_BY, int_or_null(m->opened_by));
        json_object_set_new(o, PQL_F_TIME, str_or_null(m->time));
        json_object_set_new(o, PQL_F_CLOSED, json_boolean(m->closed));
        json_object_set_new(o, PQL_F_STACK, depot_id(d, &m->stack));
        json_object_set_new(o, PQL_F_OPEN_STACK, depot_id(d, &m->open_stack));
        json_object_set_new(o, PQL_F_SITE, site_json(&m->site, m->has_site));
        if (m->last_use_fork >= 0)
            json_object_set_new(o, PQL_F_LAST_USE_FORK, json_integer(m->last_use_fork));
        if (m->mono_ns >= 0)
            json_object_set_new(o, PQL_F_MONO_NS, json_integer(m->mono_ns));
        if (m->opener_fork >= 0)
            json_object_set_new(o, PQL_F_OPENER_FORK, json_integer(m->opener_fork));
        json_object_set_new(o, CLI_F_HANDED_OFF, json_boolean(m->handed_off));
        json_array_append_new(list, o);
    }
    return list;
}

int cli_jsonout_write(FILE *out, const struct cli_set *set)
{
    struct depot d = {json_object(), json_object()};
    json_t *root = json_object();
    json_object_set_new(root, PQL_F_SCHEMA, json_string(PQL_SCHEMA));
    json_object_set_new(root, PQL_F_VERSION, json_string(PQL_VERSION));
    json_object_set_new(root, PQL_F_TRIGGER, json_string(PQL_TRIGGER_MERGED));
    json_object_set_new(root, PQL_F_PID, json_null());
    json_object_set_new(root, PQL_F_PROGRAM, json_null());
    char now[64];
    cli_now_iso(now, sizeof now);
    json_object_set_new(root, PQL_F_TIME, json_string(now));
    json_object_set(root, PQL_F_SETTINGS, set->settings ? set->settings : json_null());
    json_object_set_new(root, PQL_F_UTILIZATION, cli_set_utilization(set));

    json_t *procs = json_array();
    for (size_t i = 0; i < set->procs.n; i++)
        json_array_append_new(procs, proc_json(set->procs.v[i]));
    json_object_set_new(root, PQL_F_PROCESSES, procs);

    json_t *conns = json_array();
    json_t *leaks = json_array();
    json_int_t next_conn = 1;
    for (size_t i = 0; i < set->groups.n; i++) {
        const struct cli_group *g = set->groups.v[i];
        json_t *l = json_object();
        json_object_set_new(l, PQL_F_STACK, depot_id(&d, &g->stack));
        json_object_set_new(l, PQL_F_TX_STACK, g->has_tx ? depot_id(&d, &g->tx) : json_null());
        json_object_set_new(l, PQL_F_COUNT, json_integer(g->count));
        /* The headline: as the shim named it, else the headline of the open stack. */
        int h = cli_stack_headline(&g->stack, NULL);
        json_object_set_new(l, PQL_F_SITE,
                            g->has_site ? site_json(&g->site, true)
                            : h >= 0    ? site_json(&g->stack.f[h], true)
                                        : json_null());
        json_object_set_new(l, PQL_F_SITE_FROM,
                            g->has_site && g->site_from ? json_string(g->site_from)
                            : h >= 0                    ? json_string("stack")
                                                        : json_null());
        json_t *ids = json_array();
        for (size_t j = 0; j < g->conns.n; j++) {
            const struct cli_conn *c = g->conns.v[j];
            json_t *o = json_object();
            json_object_set_new(o, PQL_F_ID, json_integer(next_conn));
            json_object_update(o, c->obj);
            json_object_set_new(o, PQL_F_STACK, c->has_stack ? depot_id(&d, &c->stack) : json_null());
            json_object_set_new(o, PQL_F_TX_STACK, c->has_tx ? depot_id(&d, &c->tx) : json_null());
            json_object_set_new(o, PQL_F_LAST_STACK, c->has_last ? depot_id(&d, &c->last) : json_null());
            json_object_set_new(o, PQL_F_PID,
                                c->proc && c->proc->pid >= 0 ? json_integer(c->proc->pid) : json_null());
            json_object_set_new(o, PQL_F_PROGRAM, str_or_null(c->proc ? c->proc->program : NULL));
            json_array_append_new(conns, o);
            json_array_append_new(ids, json_integer(next_conn++));
        }
        json_object_set_new(l, PQL_F_CONNECTIONS, ids);
        json_object_set_new(l, PQL_F_KIND, json_string(g->kind));
        json_object_set_new(l, PQL_F_SUPPRESSED, json_boolean(g->suppressed));
        json_object_set_new(l, PQL_F_RULE, str_or_null(g->suppressed ? g->rule : NULL));
        json_t *lp = json_array();
        for (size_t j = 0; j < g->procs.n; j++)
            json_array_append_new(lp, proc_json(g->procs.v[j]));
        json_object_set_new(l, PQL_F_PROCESSES, lp);
        json_array_append_new(leaks, l);
    }
    json_object_set_new(root, PQL_F_CONNECTIONS, conns);
    json_object_set_new(root, PQL_F_LEAKS, leaks);
    json_object_set_new(root, PQL_F_MISUSE, misuse_json(&d, set));
    json_object_set(root, PQL_F_STACKS, d.stacks);

    /* 15 digits print 0.2 as 0.2; 17 would show binary noise (0.20000000000000001). */
    int r = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    if (r == 0 && fputc('\n', out) == EOF)
        r = -1;
    json_decref(root);
    json_decref(d.ids);
    json_decref(d.stacks);
    return r;
}
