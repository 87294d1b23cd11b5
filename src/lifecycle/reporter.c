/* The signal trigger and the reporter thread. The handler saves errno and writes one byte to a
 * non-blocking pipe, nothing else (a burst of signals fills the pipe and coalesces into one report).
 * The thread starts with every signal blocked, waits on the pipe with a timeout for periodic work
 * (suspects each second, metrics every PQLEAK_METRICS_INTERVAL), and does all the writing. */
#define _GNU_SOURCE
#include "reporter.h"

#include "checkout.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "proc.h"
#include "registry.h"
#include "report.h"
#include "text.h"

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
    return pql_clock_s(CLOCK_MONOTONIC);
}

bool pql_reporter_live_dir(const struct pql_settings *s, char *dir, size_t len)
{
    if (*s->report_dir) {
        snprintf(dir, len, "%s", s->report_dir);
        return true;
    }
    if (pql_live_dir_default(dir, len, getenv("TMPDIR"), (unsigned)getuid()) < 0) {
        pql_log("the live report directory's path is too long (TMPDIR)");
        return false;
    }
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
        !strcmp(trigger, PQL_TRIGGER_SIGNAL)) {
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
    struct suspect_scan sc = {mono_s(), pql_coarse_ns(), 0};
    pql_registry_each(find_suspects, &sc);
    if (!sc.found)
        return;
    atomic_fetch_add(&suspects_total, sc.found);
    /* One warning per new suspect, with its stacks; then one JSON report of everything open. */
    struct pql_conn *conns;
    struct pql_counters c;
    size_t n = pql_registry_snapshot(&conns, &c);
    pql_text_suspects(cfg, conns, n, sc.now_mono, sc.now_ns);
    free(conns);
    char dir[PQL_PATH_MAX];
    if (pql_reporter_live_dir(cfg, dir, sizeof(dir)))
        pql_report_live(cfg, PQL_TRIGGER_SUSPECT, dir, false, NULL, 0);
}

/* ---- metrics ---- */

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
    struct pql_metrics m = {.cap = cfg->max_conns, .leaked = leaked};
    pql_registry_each(count_suspect, &m.suspects);
    pql_registry_counters(&m.conns);
    pql_checkout_counters(&m.waits);
    m.suspects_total = atomic_load(&suspects_total);
    if (!pql_metrics_write(cfg->metrics, program, &m)) {
        static bool warned;
        if (!warned)
            pql_log("cannot write PQLEAK_METRICS='%s' (%s)", cfg->metrics, strerror(errno));
        warned = true;
    }
}

void pql_reporter_exit(long leaked)
{
    if (atomic_load(&started))
        write_metrics(leaked);
}

/* ---- the thread ---- */

static bool handler_named; /* the thread is named PQL_THREAD_SIGNAL */

static bool handler_still_ours(void)
{
    struct sigaction cur;
    return sigaction(cfg->signal, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
           cur.sa_handler == on_signal;
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
            pthread_setname_np(pthread_self(), PQL_THREAD_PLAIN);
            handler_named = false;
        }
        if (r > 0 && (p.revents & POLLIN)) {
            char drain[256];
            while (read(pipe_fd[0], drain, sizeof(drain)) > 0)
                ;
            live_report(PQL_TRIGGER_SIGNAL);
        }
    }
    return NULL;
}

static void fork_child(void);

void pql_reporter_ensure(const struct pql_settings *s)
{
    if (atomic_load_explicit(&started, memory_order_acquire))
        return;
    bool suspects = s->suspect_age > 0 || s->suspect_idle_tx > 0;
    if (!s->signal && !suspects && !*s->metrics)
        return;
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
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
    pthread_setname_np(t, handler ? PQL_THREAD_SIGNAL : PQL_THREAD_PLAIN);
    atomic_store_explicit(&started, true, memory_order_release);
out:
    pthread_mutex_unlock(&start_lock);
}

/* The thread and the pipe stay the parent's: the handler (inherited) now writes nowhere, and the
 * child's next connection starts its own. */
static void fork_child(void)
{
    pthread_mutex_init(&start_lock, NULL);
    if (pipe_fd[0] >= 0) {
        int r = pipe_fd[0], w = pipe_fd[1];
        pipe_fd[0] = pipe_fd[1] = -1;
        close(r);
        close(w);
    }
    last_live[0] = '\0';
    atomic_store(&started, false);
}
