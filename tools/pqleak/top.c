/* `pqleak top` (top.h): finding the processes that run the shim (its options: args.c), asking them all at
 * once for a live report (probe.h: the reporter thread only, never the program's threads), one row per
 * tracked connection with the line that holds it, then the servers' side (topdb.c) and the output
 * (topout.c), once or every --interval seconds until interrupted. Command-line process only;
 * single-threaded; the SIGINT/SIGTERM handler only sets a flag. */
#include "top.h"

#include "names.h"
#include "path.h"
#include "probe.h"
#include "reportio.h"
#include "script.h"
#include "topmodel.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_NS 10000000L /* between looks for the answers */

const char cli_top_usage[] =
    "usage: pqleak top [--json] [--db CONNINFO] [--user U | --all-users] [--interval S] [--sort "
    "age|idle|tx]\n"
    "                  [--timeout S]\n"
    "Every PostgreSQL connection of the processes on this host that run pqleak's shim: who holds it (the\n"
    "line of the program, \"last used at\" for a pooled one) joined by backend pid with pg_stat_activity\n"
    "of each server they use, oldest transaction first; then the servers' client backends that no\n"
    "tracked process owns (unattributed). Exits 0 (OK), 1 (WARNING: a server at 80% of max_connections),\n"
    "2 (CRITICAL: at 95%), 3 (UNKNOWN: a process did not answer or a server could not be queried).\n"
    "  --json            one JSON document (schema pqleak-top/1) per round, on one line\n"
    "  --db CONNINFO     how to reach the servers (their host and port replace its own), and one more\n"
    "                    server to list; default: the PG* environment\n"
    "  --user U          the processes of user U (name or uid; another user's need root)\n"
    "  --all-users       every user's processes (default as root; others' are listed, asked only by root)\n"
    "  --interval S      print a new round every S seconds until interrupted\n"
    "  --sort KEY        tx (oldest transaction first, default), age (longest open), idle (longest idle)\n"
    "  --timeout S       seconds each process has to answer (default 2; all are asked at once)\n"
    "  -h, --help        print this text\n"
    "Each option may be given once.\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- finding the processes ---- */

static bool wanted_uid(const struct cli_top_opts *o, uid_t uid)
{
    if (o->user_given)
        return uid == o->user;
    return o->all_users || uid == geteuid();
}

static char *user_of(uid_t uid)
{
    struct passwd *pw = getpwuid(uid);
    return pw ? cli_xstrdup(pw->pw_name) : cli_xasprintf("%u", (unsigned)uid);
}

/* The script an interpreter runs (common/script.h: python3 app.py, "app.py"), from /proc/PID/cmdline;
 * NULL for other programs. */
static char *script_of(int pid, const char *program)
{
    char path[64], buf[4096];
    char *args[64];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    for (size_t i = 0; i < len && n < (int)(sizeof args / sizeof *args); i += strlen(buf + i) + 1)
        args[n++] = buf + i;
    const char *s = n > 1 ? pql_script_arg(program ? pql_base_name(program) : "", args + 1, n - 1) : NULL;
    return s ? cli_xstrdup(s) : NULL;
}

static char *exe_of(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return cli_xstrdup(buf);
}

/* Every process but this one that runs the shim (a thread named by it) and belongs to a user asked
 * for, in pid order. */
static void find_procs(const struct cli_top_opts *o, struct top_round *r)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        struct stat st;
        if (*end || pid <= 0 || pid == getpid() || fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
            !wanted_uid(o, st.st_uid) || cli_probe_shim_thread((int)pid) == 0)
            continue;
        struct top_proc p = {.pid = (int)pid, .uid = st.st_uid};
        r->p = cli_xrealloc(r->p, (r->np + 1) * sizeof *r->p);
        r->p[r->np++] = p;
    }
    closedir(d);
}

/* ---- asking them ---- */

/* Asks every process of r at once: the checks and the signal one after the other, then one look at
 * each pending answer per turn until all are in or their time is up (cli_probe_poll says so). */
static void ask_all(struct top_round *r, double timeout)
{
    struct cli_target *t = cli_xcalloc(r->np ? r->np : 1, sizeof *t);
    struct cli_probe_req *req = cli_xcalloc(r->np ? r->np : 1, sizeof *req);
    bool *pending = cli_xcalloc(r->np ? r->np : 1, sizeof *pending);
    char msg[CLI_PROBE_WHY_MAX];
    size_t left = 0;
    for (size_t i = 0; i < r->np; i++) {
        if (cli_probe_target(&t[i], r->p[i].pid, msg) && cli_probe_send(&t[i], timeout, &req[i], msg)) {
            pending[i] = true;
            left++;
        } else {
            r->p[i].why = cli_xstrdup(msg);
        }
    }
    while (left) {
        for (size_t i = 0; i < r->np; i++) {
            if (!pending[i])
                continue;
            struct cli_found f = {0};
            enum cli_probe_state s = cli_probe_poll(&t[i], &req[i], &f, msg);
            if (s == CLI_PROBE_PENDING)
                continue;
            if (s == CLI_PROBE_GOT && cli_probe_check_found(&t[i], &f, &r->p[i].root, msg)) {
                /* kept */
            } else {
                json_decref(r->p[i].root);
                r->p[i].root = NULL;
                r->p[i].why = cli_xstrdup(msg);
            }
            cli_probe_free(NULL, &f);
            cli_probe_req_free(&req[i]);
            pending[i] = false;
            left--;
        }
        if (left) {
            struct timespec ts = {0, POLL_NS};
            nanosleep(&ts, NULL);
        }
    }
    for (size_t i = 0; i < r->np; i++)
        cli_probe_free(&t[i], NULL);
    free(t);
    free(req);
    free(pending);
}

/* ---- the connections ---- */

/* The line that holds c, by the reports' headline rule (cli_stack_held_at): where it was opened when
 * that is the program's own code; else where the program last used it (a pool's connection: opened by
 * the pool, used by the program); else the open stack's title (its headline, a library's, else its
 * innermost frame). */
static void site_of(struct top_conn *tc)
{
    const json_t *stacks = json_object_get(tc->proc->root, PQL_F_STACKS);
    struct cli_stack open, last;
    cli_stack_from_report(stacks, tc->c, PQL_F_STACK, &open);
    bool has_last = cli_stack_from_report(stacks, tc->c, PQL_F_LAST_STACK, &last);
    const struct cli_frame *f = cli_stack_held_at(&open, has_last ? &last : NULL, &tc->site_last_used);
    if (!f)
        f = cli_stack_title(&open);
    if (f)
        cli_stack_copy(&tc->site, &(struct cli_stack){(struct cli_frame *)f, 1});
    cli_stack_free(&last);
    cli_stack_free(&open);
}

/* The server c's target names; added to r when new. NULL when c has no server (not connected). */
static struct top_server *server_of(struct top_round *r, const json_t *c)
{
    if (!json_is_integer(json_object_get(c, PQL_F_SERVER_PID)))
        return NULL;
    const json_t *t = json_object_get(c, PQL_F_TARGET);
    const char *host = json_string_value(json_object_get(t, PQL_F_HOST));
    const char *port = json_string_value(json_object_get(t, PQL_F_PORT));
    host = host ? host : "";
    port = port ? port : "";
    for (size_t i = 0; i < r->ns; i++)
        if (strcmp(r->s[i]->host, host) == 0 && strcmp(r->s[i]->port, port) == 0)
            return r->s[i];
    struct top_server *s = cli_xmalloc(sizeof *s);
    *s = (struct top_server){
        .host = cli_xstrdup(host), .port = cli_xstrdup(port), .name = cli_xasprintf("%s:%s", host, port)};
    cli_top_add_server(r, s);
    return s;
}

/* One row per connection of every report; the servers they use. */
static void collect_conns(struct top_round *r)
{
    for (size_t i = 0; i < r->np; i++) {
        struct top_proc *p = &r->p[i];
        const char *prog = p->root ? json_string_value(json_object_get(p->root, PQL_F_PROGRAM)) : NULL;
        p->program = prog && *prog ? cli_xstrdup(prog) : exe_of(p->pid);
        p->script = script_of(p->pid, p->program);
        p->user = user_of(p->uid);
        const json_t *conns = json_object_get(p->root, PQL_F_CONNECTIONS);
        for (size_t j = 0; j < json_array_size(conns); j++) {
            struct top_conn c = {.proc = p, .c = json_array_get(conns, j)};
            c.srv = server_of(r, c.c);
            if (c.srv)
                c.srv->tracked++;
            site_of(&c);
            r->c = cli_xrealloc(r->c, (r->nc + 1) * sizeof *r->c);
            r->c[r->nc++] = c;
        }
    }
}

static void round_free(struct top_round *r)
{
    for (size_t i = 0; i < r->np; i++) {
        json_decref(r->p[i].root);
        free(r->p[i].why);
        free(r->p[i].user);
        free(r->p[i].program);
        free(r->p[i].script);
    }
    for (size_t i = 0; i < r->nc; i++)
        cli_stack_free(&r->c[i].site);
    for (size_t i = 0; i < r->ns; i++) {
        cli_top_server_free(r->s[i]);
        free(r->s[i]);
    }
    free(r->p);
    free(r->c);
    free(r->s);
    *r = (struct top_round){0};
}

/* One round: gather, join, print. Returns its status. */
static int one_round(const struct cli_top_opts *o, bool clear)
{
    struct top_round r = {0};
    cli_now_iso(r.time, sizeof r.time);
    find_procs(o, &r);
    ask_all(&r, o->timeout);
    collect_conns(&r);
    /* With --db, or with nothing tracked here, the server it names too: its unattributed backends. */
    if (o->db || r.ns == 0)
        cli_top_add_default_server(&r, o->db);
    cli_top_join(&r, o->db);
    cli_top_sort(&r, o->sort);
    int rc = cli_top_status(&r);
    if (o->json) {
        if (!cli_top_write_json(stdout, &r, rc))
            rc = CLI_STATUS_UNKNOWN;
    } else {
        if (clear)
            fputs("\033[H\033[2J", stdout);
        cli_top_write_text(stdout, &r, rc);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_err("top: cannot write to standard output");
        rc = CLI_STATUS_UNKNOWN;
    }
    round_free(&r);
    return rc;
}

int cli_top(const struct cli_top_opts *o)
{
    if (o->interval <= 0)
        return one_round(o, false);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool clear = !o->json && isatty(STDOUT_FILENO);
    int rc = CLI_STATUS_OK;
    while (!interrupted) {
        rc = one_round(o, clear);
        if (rc == CLI_STATUS_UNKNOWN && ferror(stdout))
            break;
        /* Sleeps in slices so that an interrupt ends the wait at once (a drift of a slice is fine). */
        for (double slept = 0; !interrupted && slept < o->interval; slept += 0.1) {
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
    }
    return rc;
}
