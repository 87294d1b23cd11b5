/* `pqleak status PID` (status.h): asks the process for a live report through probe.h and prints it like
 * a Nagios plugin. Command-line process only; single-threaded. */
#include "status.h"

#include "frame.h"
#include "merge.h"
#include "names.h"
#include "print.h"
#include "probe.h"
#include "reportio.h"
#include "util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_FRAMES      3 /* frames of the program's own code shown per stack */
#define DEFAULT_WARN_PCT 80
#define DEFAULT_CRIT_PCT 95

/* The one line of an UNKNOWN outcome: the plugin line on stdout in text mode (monitoring systems
 * read stdout), an error line on stderr with --json (stdout is for JSON only). Escaped: a control
 * character (from a path in the process's environment) would break the one line. */
static int unknown(const struct cli_status_opts *o, const char *msg)
{
    if (o->json) {
        cli_err("status: %s", msg);
    } else {
        printf("PQLEAK UNKNOWN - %s\n", cli_safe(msg));
        fflush(stdout);
    }
    return CLI_STATUS_UNKNOWN;
}

/* ---- printing ---- */

static long get_long(const json_t *obj, const char *name, long def)
{
    const json_t *x = json_object_get(obj, name);
    return json_is_integer(x) ? (long)json_integer_value(x) : def;
}

/* "85" or "66.7": whole percentages without a fraction. */
static const char *fmt_pct(char *buf, size_t len, double pct)
{
    if (fabs(pct - round(pct)) < 0.05)
        snprintf(buf, len, "%.0f", pct);
    else
        snprintf(buf, len, "%.1f", pct);
    return buf;
}

/* "1.5 s", or "?" when the report does not know. */
static const char *fmt_s(char *buf, size_t len, const json_t *x)
{
    if (json_is_number(x))
        snprintf(buf, len, "%.1f s", json_number_value(x));
    else
        snprintf(buf, len, "?");
    return buf;
}

/* The transaction status in pg_stat_activity's words, with the report's code. */
static const char *tx_words(const char *tx)
{
    if (!tx)
        return "transaction status unknown";
    if (strcmp(tx, PQL_V_TX_IDLE) == 0)
        return "idle";
    if (strcmp(tx, PQL_V_TX_ACTIVE) == 0)
        return "running a query (active)";
    if (strcmp(tx, PQL_V_TX_INTRANS) == 0)
        return "idle in transaction (intrans)";
    if (strcmp(tx, PQL_V_TX_INERROR) == 0)
        return "idle in a failed transaction (inerror)";
    return "transaction status unknown";
}

static void print_connection(FILE *out, const json_t *root, const json_t *c)
{
    char a[32], b[32];
    char *target = cli_conn_target(c);
    const char *status = json_string_value(json_object_get(c, PQL_F_STATUS));
    fprintf(out, "  #%lld %s%s", (long long)json_integer_value(json_object_get(c, PQL_F_ID)),
            status && strcmp(status, PQL_V_OK) != 0 ? "(failed or connecting) " : "",
            target ? cli_safe(target) : "?");
    free(target);
    const char *app =
        json_string_value(json_object_get(json_object_get(c, PQL_F_TARGET), PQL_F_APPLICATION_NAME));
    if (app && *app)
        fprintf(out, ", application_name %s", cli_safe(app));
    long spid = get_long(c, PQL_F_SERVER_PID, 0), port = get_long(c, PQL_F_CLIENT_PORT, 0);
    if (spid)
        fprintf(out, ", server pid %ld", spid);
    if (port)
        fprintf(out, ", client port %ld", port);
    fprintf(out, ", open %s, idle %s, %s", fmt_s(a, sizeof a, json_object_get(c, PQL_F_AGE_S)),
            fmt_s(b, sizeof b, json_object_get(c, PQL_F_IDLE_S)),
            tx_words(json_string_value(json_object_get(c, PQL_F_TX_STATUS))));
    long thread = get_long(c, PQL_F_THREAD, 0);
    if (thread)
        fprintf(out, ", thread %ld", thread);
    const char *suspect = json_string_value(json_object_get(c, PQL_F_SUSPECT));
    if (suspect && strcmp(suspect, PQL_V_AGE) == 0)
        fprintf(out, ", SUSPECT: open longer than PQLEAK_SUSPECT_AGE");
    else if (suspect && strcmp(suspect, PQL_V_IDLE_TX) == 0)
        fprintf(out, ", SUSPECT: idle in a transaction longer than PQLEAK_SUSPECT_IDLE_TX");
    else if (suspect)
        fprintf(out, ", SUSPECT (%s)", cli_safe(suspect));
    fputc('\n', out);
    const json_t *stacks = json_object_get(root, PQL_F_STACKS);
    struct cli_stack st;
    fprintf(out, "    opened at:\n");
    cli_stack_from_report(stacks, c, PQL_F_STACK, &st);
    cli_print_stack_head(out, &st, "      ", USER_FRAMES);
    cli_stack_free(&st);
    if (cli_stack_from_report(stacks, c, PQL_F_TX_STACK, &st)) {
        fprintf(out, "    transaction began at:\n");
        cli_print_stack_head(out, &st, "      ", USER_FRAMES);
        cli_stack_free(&st);
    }
}

/* The numbers the status is made of. */
struct levels {
    long open, peak, cap, warn, crit, suspects;
    bool capped; /* a cap is known (utilization_pct is not null) */
    double pct;
    int status; /* CLI_STATUS_OK, _WARNING or _CRITICAL */
};

static void levels_of(const json_t *root, struct levels *l)
{
    const json_t *u = json_object_get(root, PQL_F_UTILIZATION);
    const json_t *set = json_object_get(root, PQL_F_SETTINGS);
    const json_t *conns = json_object_get(root, PQL_F_CONNECTIONS);
    l->open = get_long(u, PQL_F_OPEN, (long)json_array_size(conns));
    l->peak = get_long(u, PQL_F_PEAK_OPEN, l->open);
    l->cap = get_long(u, PQL_F_CAP, get_long(set, PQL_F_MAX_CONNS, 0));
    l->warn = get_long(set, PQL_F_WARN_PCT, DEFAULT_WARN_PCT);
    l->crit = get_long(set, PQL_F_CRIT_PCT, DEFAULT_CRIT_PCT);
    const json_t *pct = json_object_get(u, PQL_F_UTILIZATION_PCT);
    l->capped = l->cap > 0 || json_is_number(pct);
    l->pct = json_is_number(pct) ? json_number_value(pct)
             : l->cap > 0        ? 100.0 * (double)l->open / (double)l->cap
                                 : 0;
    l->status = CLI_STATUS_OK;
    if (l->capped) {
        /* Whole numbers when the cap is known: 17 of 20 is exactly 85%, whatever a float says. */
        bool crit = l->cap > 0 ? l->open * 100 >= l->crit * l->cap : l->pct >= (double)l->crit;
        bool warn = l->cap > 0 ? l->open * 100 >= l->warn * l->cap : l->pct >= (double)l->warn;
        l->status = crit ? CLI_STATUS_CRITICAL : warn ? CLI_STATUS_WARNING : CLI_STATUS_OK;
    }
    l->suspects = 0;
    for (size_t i = 0; i < json_array_size(conns); i++)
        l->suspects += json_is_string(json_object_get(json_array_get(conns, i), PQL_F_SUSPECT));
    /* A connection idle in a transaction or held too long is worth a look, with or without a cap. */
    if (l->suspects > 0 && l->status == CLI_STATUS_OK)
        l->status = CLI_STATUS_WARNING;
}

/* The first line, as a Nagios plugin writes it: status, summary, then performance data
 * (label=value[unit];warn;crit;min;max). */
static void print_plugin_line(FILE *out, const json_t *u, const struct levels *l)
{
    char n[64], p[32];
    fprintf(out, "PQLEAK %s - ", cli_status_word(l->status));
    if (l->cap > 0)
        fprintf(out, "%ld of %ld connections open (%s%%)", l->open, l->cap, fmt_pct(p, sizeof p, l->pct));
    else if (l->capped)
        fprintf(out, "%s open (%s%% of the cap)", cli_plural(n, sizeof n, l->open, "connection"),
                fmt_pct(p, sizeof p, l->pct));
    else
        fprintf(out, "%s open, no cap", cli_plural(n, sizeof n, l->open, "connection"));
    if (l->suspects)
        fprintf(out, ", %s", cli_plural(n, sizeof n, l->suspects, "suspect"));
    if (l->cap > 0)
        fprintf(out, " | open=%ld;;;0;%ld peak=%ld;;;0;%ld", l->open, l->cap, l->peak, l->cap);
    else
        fprintf(out, " | open=%ld;;;0 peak=%ld;;;0", l->open, l->peak);
    if (l->capped)
        fprintf(out, " utilization=%s%%;%ld;%ld;0;100", fmt_pct(p, sizeof p, l->pct), l->warn, l->crit);
    fprintf(out, " suspects=%ld opened=%ldc closed=%ldc failed=%ldc waits=%ldc timeouts=%ldc refused=%ldc\n",
            l->suspects, get_long(u, PQL_F_OPENED_TOTAL, 0), get_long(u, PQL_F_CLOSED_TOTAL, 0),
            get_long(u, PQL_F_FAILED_TOTAL, 0), get_long(u, PQL_F_WAITS_TOTAL, 0),
            get_long(u, PQL_F_TIMEOUTS_TOTAL, 0), get_long(u, PQL_F_REFUSED_TOTAL, 0));
}

/* The plugin line, then the process, its utilization and every open connection. */
static void print_text(FILE *out, const struct cli_found *f, const json_t *root, const struct levels *l)
{
    const json_t *u = json_object_get(root, PQL_F_UTILIZATION);
    const json_t *conns = json_object_get(root, PQL_F_CONNECTIONS);
    print_plugin_line(out, u, l);

    const char *program = json_string_value(json_object_get(root, PQL_F_PROGRAM));
    const char *time = json_string_value(json_object_get(root, PQL_F_TIME));
    fprintf(out, "process %lld (%s), live report of %s: %s\n",
            (long long)json_integer_value(json_object_get(root, PQL_F_PID)),
            program ? cli_safe(program) : "?", time ? cli_safe(time) : "an unknown time", cli_safe(f->path));
    char p[32], n[64];
    if (l->cap > 0)
        fprintf(out, "utilization: %ld of %ld open (%s%%), peak %ld; warning at %ld%%, critical at %ld%%\n",
                l->open, l->cap, fmt_pct(p, sizeof p, l->pct), l->peak, l->warn, l->crit);
    else
        fprintf(out, "utilization: %ld open, peak %ld; no cap (PQLEAK_MAX_CONNS)\n", l->open, l->peak);
    const json_t *ws = json_object_get(u, PQL_F_WAIT_S_TOTAL), *wm = json_object_get(u, PQL_F_WAIT_S_MAX);
    fprintf(out,
            "totals: %ld opened, %ld closed, %ld failed; %ld waits at the cap (%.1f s, longest %.1f s), "
            "%ld timeouts, %ld refused\n",
            get_long(u, PQL_F_OPENED_TOTAL, 0), get_long(u, PQL_F_CLOSED_TOTAL, 0),
            get_long(u, PQL_F_FAILED_TOTAL, 0), get_long(u, PQL_F_WAITS_TOTAL, 0),
            json_is_number(ws) ? json_number_value(ws) : 0.0,
            json_is_number(wm) ? json_number_value(wm) : 0.0, get_long(u, PQL_F_TIMEOUTS_TOTAL, 0),
            get_long(u, PQL_F_REFUSED_TOTAL, 0));
    if (json_array_size(conns) == 0) {
        fprintf(out, "no connections open\n");
        return;
    }
    fprintf(out, "%s open:\n", cli_plural(n, sizeof n, (long)json_array_size(conns), "connection"));
    for (size_t i = 0; i < json_array_size(conns); i++)
        print_connection(out, root, json_array_get(conns, i));
}

int cli_status(const struct cli_status_opts *o)
{
    struct cli_target t;
    struct cli_found f = {0};
    json_t *root = NULL;
    char msg[CLI_PROBE_WHY_MAX];
    int rc;
    if (!cli_probe_target(&t, o->pid, msg) || !cli_probe_ask(&t, o->timeout, &f, msg) ||
        !cli_probe_check_found(&t, &f, &root, msg)) {
        rc = unknown(o, msg);
        goto out;
    }
    struct levels l;
    levels_of(root, &l);
    rc = l.status;
    if (o->json)
        fwrite(f.data, 1, f.len, stdout); /* the report itself, byte for byte */
    else
        print_text(stdout, &f, root, &l);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_err("status: cannot write to standard output");
        rc = CLI_STATUS_UNKNOWN;
    }
out:
    cli_probe_free(&t, &f);
    json_decref(root);
    return rc;
}
