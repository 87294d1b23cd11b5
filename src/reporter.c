/* The signal trigger and the reporter thread. The handler saves errno and writes one byte to a
 * non-blocking pipe, nothing else (a burst of signals fills the pipe and coalesces into one report).
 * The thread starts with every signal blocked, waits on the pipe with a timeout for periodic work
 * (suspects each second, metrics every PQLEAK_METRICS_INTERVAL), and does all the writing. */
#define _GNU_SOURCE
#include "reporter.h"

#include "buf.h"
#include "checkout.h"
#include "live.h"
#include "log.h"
#include "report.h"
#include "stack.h"
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_bool started;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static int pipe_fd[2] = {-1, -1};
static const struct pql_settings *cfg;
static char last_live[PQL_PATH_MAX + 64]; /* this process's previous signal report */
static atomic_long suspects_total;
static char program[1024];

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    int fd = pipe_fd[1];
    if (fd >= 0) {
        ssize_t n = write(fd, "s", 1);
        (void)n; /* a full pipe already holds a pending request */
    }
    errno = saved;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool pql_reporter_live_dir(const struct pql_settings *s, char *dir, size_t len)
{
    if (*s->report_dir) {
        snprintf(dir, len, "%s", s->report_dir);
        return true;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, len, "%s/pqleak-%u", tmp && *tmp == '/' ? tmp : "/tmp", (unsigned)getuid());
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        pql_log("cannot create the live report directory '%s' (%s)", dir, strerror(errno));
        return false;
    }
    /* A directory planted by someone else in a shared /tmp must not receive our reports. */
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
        pql_log("refusing the live report directory '%s': not a directory of ours with mode 0700", dir);
        return false;
    }
    return true;
}

static void live_report(const char *trigger)
{
    char dir[PQL_PATH_MAX], path[PQL_PATH_MAX + 64];
    bool have_dir = pql_reporter_live_dir(cfg, dir, sizeof(dir));
    if (pql_report_live(cfg, trigger, have_dir ? dir : NULL, true, path, sizeof(path)) &&
        !strcmp(trigger, "signal")) {
        /* Keep one signal report per process: an operator polling with pqleak status fills no disk. */
        if (*last_live)
            unlink(last_live);
        snprintf(last_live, sizeof(last_live), "%s", path);
    }
}

/* ---- suspects ---- */

struct suspect_scan {
    double now_mono;
    int64_t now_ns;
    int found;
};

static void find_suspects(const struct pql_conn *rec, struct pql_live *live, void *arg)
{
    struct suspect_scan *sc = arg;
    if (!live || rec->suspect || rec->state != PQL_OK)
        return;
    int kind = PQL_SUSPECT_NONE;
    if (cfg->suspect_age > 0 && sc->now_mono - rec->opened_mono >= cfg->suspect_age)
        kind = PQL_SUSPECT_AGE;
    else if (cfg->suspect_idle_tx > 0 && !rec->active &&
             (rec->tx_status == PQTRANS_INTRANS || rec->tx_status == PQTRANS_INERROR) && rec->last_ns &&
             (double)(sc->now_ns - rec->last_ns) / 1e9 >= cfg->suspect_idle_tx)
        kind = PQL_SUSPECT_IDLE_TX;
    if (kind != PQL_SUSPECT_NONE) {
        int none = PQL_SUSPECT_NONE;
        if (atomic_compare_exchange_strong(&live->suspect, &none, kind))
            sc->found++;
    }
}

static void check_suspects(void)
{
    struct suspect_scan sc = {mono_s(), pql_live_now_ns(), 0};
    pql_registry_each(find_suspects, &sc);
    if (!sc.found)
        return;
    atomic_fetch_add(&suspects_total, sc.found);
    /* One warning per new suspect, with its stacks; then one JSON report of everything open. */
    struct pql_conn *conns;
    struct pql_counters c;
    size_t n = pql_registry_snapshot(&conns, &c);
    struct pql_symbolizer *sym = n ? pql_sym_acquire() : NULL;
    struct pql_buf b;
    pql_buf_init(&b);
    for (size_t i = 0; conns && i < n; i++) {
        const struct pql_conn *k = &conns[i];
        if (!k->suspect || k->state != PQL_OK)
            continue;
        if (k->suspect == PQL_SUSPECT_AGE)
            pql_buf_printf(&b, "\n==%d==pqleak: SUSPECT: connection #%llu (server pid %d) has been open %.0f s "
                               "(PQLEAK_SUSPECT_AGE=%g); opened at:\n",
                           (int)getpid(), (unsigned long long)k->id, k->server_pid, sc.now_mono - k->opened_mono,
                           cfg->suspect_age);
        else
            pql_buf_printf(&b, "\n==%d==pqleak: SUSPECT: connection #%llu (server pid %d) has been idle in a "
                               "transaction for %.0f s (PQLEAK_SUSPECT_IDLE_TX=%g); opened at:\n",
                           (int)getpid(), (unsigned long long)k->id, k->server_pid,
                           (double)(sc.now_ns - k->last_ns) / 1e9, cfg->suspect_idle_tx);
        pql_report_stack_text(&b, sym, k->stack);
        if (k->tx_stack) {
            pql_buf_puts(&b, "  its transaction began at:\n");
            pql_report_stack_text(&b, sym, k->tx_stack);
        }
    }
    if (!b.failed && b.len)
        pql_log_write(b.data, b.len);
    pql_buf_free(&b);
    pql_sym_release(sym);
    free(conns);
    char dir[PQL_PATH_MAX];
    if (pql_reporter_live_dir(cfg, dir, sizeof(dir)))
        pql_report_live(cfg, "suspect", dir, false, NULL, 0);
}

void pql_reporter_closed(const struct pql_conn *rec)
{
    if (!rec->suspect)
        return;
    if (rec->leak_kind == PQL_LEAK_UNCLOSED)
        pql_log("connection #%llu, reported as a suspect, returned after %.0f s", (unsigned long long)rec->id,
                mono_s() - rec->opened_mono);
    else
        pql_log("connection #%llu, reported as a suspect, was never returned: closed by the runtime at exit "
                "after %.0f s", (unsigned long long)rec->id, mono_s() - rec->opened_mono);
}

/* ---- metrics ---- */

static void metric(struct pql_buf *b, const char *name, const char *type, const char *help, double v)
{
    pql_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s{program=\"", name, help, name, type, name);
    for (const char *p = program; *p; p++) {
        if (*p == '\\' || *p == '"')
            pql_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            pql_buf_puts(b, "\\n");
        else
            pql_buf_append(b, p, 1);
    }
    pql_buf_printf(b, "\",pid=\"%d\"} %.17g\n", (int)getpid(), v);
}

static void count_suspect(const struct pql_conn *rec, struct pql_live *live, void *arg)
{
    (void)live;
    *(long *)arg += rec->suspect != 0;
}

static void write_metrics(long leaked)
{
    if (!*cfg->metrics)
        return;
    /* Counted in place: copying every record each interval would cost megabytes with many connections. */
    struct pql_counters c;
    long suspects = 0;
    pql_registry_each(count_suspect, &suspects);
    pql_registry_counters(&c);
    pql_checkout_counters(&c);
    struct pql_buf b;
    pql_buf_init(&b);
    metric(&b, "pqleak_connections_open", "gauge", "Connections open now (connected or connecting).",
           (double)c.open);
    metric(&b, "pqleak_connections_peak", "gauge", "Most connections open at once.", (double)c.peak_open);
    metric(&b, "pqleak_connections_cap", "gauge", "PQLEAK_MAX_CONNS, 0 when no cap.", cfg->max_conns);
    metric(&b, "pqleak_connections_opened_total", "counter", "Connections opened.", (double)c.opened_total);
    metric(&b, "pqleak_connections_closed_total", "counter", "Connections closed with PQfinish.",
           (double)c.closed_total);
    metric(&b, "pqleak_connections_failed_total", "counter", "Connection attempts that failed.",
           (double)c.failed_total);
    metric(&b, "pqleak_checkout_waits_total", "counter", "Connects that waited at the cap.", (double)c.waits_total);
    metric(&b, "pqleak_checkout_wait_seconds_total", "counter", "Seconds spent waiting at the cap.", c.wait_s_total);
    metric(&b, "pqleak_checkout_timeouts_total", "counter", "Waits that timed out.", (double)c.timeouts_total);
    metric(&b, "pqleak_checkout_refused_total", "counter", "Connects refused at the cap.", (double)c.refused_total);
    metric(&b, "pqleak_suspects", "gauge", "Open connections reported as suspects.", (double)suspects);
    metric(&b, "pqleak_suspects_total", "counter", "Connections reported as suspects.",
           (double)atomic_load(&suspects_total));
    metric(&b, "pqleak_leaked_connections", "gauge", "Connections leaked (known at exit; 0 before).",
           (double)leaked);
    if (b.failed) {
        pql_buf_free(&b);
        return;
    }
    char tmp[PQL_PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", cfg->metrics, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, cfg->metrics) != 0) {
        static bool warned;
        if (!warned)
            pql_log("cannot write PQLEAK_METRICS='%s' (%s)", cfg->metrics, strerror(errno));
        warned = true;
        unlink(tmp);
    }
    pql_buf_free(&b);
}

void pql_reporter_exit(long leaked)
{
    if (atomic_load(&started))
        write_metrics(leaked);
}

/* ---- the thread ---- */

static bool handler_named; /* the thread is named "pqleak-sig" */

static bool handler_still_ours(void)
{
    struct sigaction cur;
    return sigaction(cfg->signal, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == on_signal;
}

static void *reporter_main(void *arg)
{
    (void)arg;
    bool suspects = cfg->suspect_age > 0 || cfg->suspect_idle_tx > 0;
    double next_suspects = mono_s() + 1, next_metrics = mono_s();
    for (;;) {
        double now = mono_s();
        if (suspects && now >= next_suspects) {
            check_suspects();
            next_suspects = now + 1;
        }
        if (*cfg->metrics && now >= next_metrics) {
            write_metrics(0);
            next_metrics = now + cfg->metrics_interval;
        }
        double wait = 3600;
        if (suspects)
            wait = next_suspects - now;
        if (*cfg->metrics && next_metrics - now < wait)
            wait = next_metrics - now;
        if (handler_named && wait > 1)
            wait = 1; /* notice within a second when the program takes the signal over */
        struct pollfd p = {pipe_fd[0], POLLIN, 0};
        int r = poll(&p, 1, wait < 0 ? 0 : (int)(wait * 1000) + 1);
        if (handler_named && !handler_still_ours()) {
            /* The program installed its own handler since: `pqleak status` must not signal it. */
            pthread_setname_np(pthread_self(), "pqleak");
            handler_named = false;
        }
        if (r > 0 && (p.revents & POLLIN)) {
            char drain[256];
            while (read(pipe_fd[0], drain, sizeof(drain)) > 0)
                ;
            live_report("signal");
        }
    }
    return NULL;
}

void pql_reporter_ensure(const struct pql_settings *s)
{
    if (atomic_load_explicit(&started, memory_order_acquire))
        return;
    bool suspects = s->suspect_age > 0 || s->suspect_idle_tx > 0;
    if (!s->signal && !suspects && !*s->metrics)
        return;
    pthread_mutex_lock(&start_lock);
    if (atomic_load(&started))
        goto out;
    cfg = s;
    ssize_t n = readlink("/proc/self/exe", program, sizeof(program) - 1);
    program[n > 0 ? n : 0] = '\0';
    if (pipe2(pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
        pql_log("cannot create a pipe (%s): no live reports", strerror(errno));
        goto out;
    }
    bool handler = false;
    if (s->signal) {
        struct sigaction old;
        sigaction(s->signal, NULL, &old);
        if (!(old.sa_flags & SA_SIGINFO) && (old.sa_handler == SIG_DFL || old.sa_handler == on_signal)) {
            struct sigaction sa;
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = on_signal;
            sa.sa_flags = SA_RESTART;
            sigemptyset(&sa.sa_mask);
            handler = sigaction(s->signal, &sa, NULL) == 0;
        } else if (s->signal_set) {
            /* Said only when asked for: Ruby and PHP take SIGUSR1 and SIGUSR2 in every run. */
            pql_log("PQLEAK_SIGNAL=%s: the program handles SIG%s itself; no live reports on that signal "
                    "(choose another with PQLEAK_SIGNAL=USR1|USR2, or none)",
                    s->signal == SIGUSR1 ? "USR1" : "USR2", s->signal == SIGUSR1 ? "USR1" : "USR2");
        }
    }
    handler_named = handler;
    /* The thread must never take the application's signals. */
    sigset_t all, prev;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &prev);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&t, &attr, reporter_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    if (err) {
        pql_log("cannot start the reporter thread (%s): no live reports", strerror(err));
        goto out;
    }
    /* `pqleak status` looks for this name: it proves the shim and its handler are in the process. */
    pthread_setname_np(t, handler ? "pqleak-sig" : "pqleak");
    atomic_store_explicit(&started, true, memory_order_release);
out:
    pthread_mutex_unlock(&start_lock);
}

void pql_reporter_fork_child(void)
{
    pthread_mutex_init(&start_lock, NULL);
    if (pipe_fd[0] >= 0) {
        /* The handler (inherited) now writes nowhere; the child's next connection starts its own. */
        int r = pipe_fd[0], w = pipe_fd[1];
        pipe_fd[0] = pipe_fd[1] = -1;
        close(r);
        close(w);
    }
    last_live[0] = '\0';
    atomic_store(&started, false);
}
