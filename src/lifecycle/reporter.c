/* The signal trigger and the reporter thread. No file descriptor is held between reports. The thread
 * keeps every signal blocked, so it never takes a signal sent to the process (a program that reads
 * PQLEAK_SIGNAL with signalfd or sigwait keeps getting it), and waits on a semaphore with a timeout for
 * periodic work (suspects each second, metrics every PQLEAK_METRICS_INTERVAL, a quarter of a second
 * while it answers the signal); it does all the writing.
 * - A signal sent to the process (a user's kill -USR1) runs the handler on a program thread; the handler
 *   saves errno, raises a flag and posts the semaphore (async-signal-safe, never blocks), nothing else:
 *   a text report to the log and a JSON report. Posts that arrive before the report coalesce.
 * - `pqleak status` queues the signal to this thread alone (rt_tgsigqueueinfo) with the token of the
 *   thread's advertisement (a file in the private live-report directory naming pid, tid, signal, start
 *   time and token): the program's threads see nothing. It stays pending here (blocked) until the
 *   thread finds it in its own pending set and takes it: a JSON report only. */
#define _GNU_SOURCE
#include "reporter.h"

#include "checkout.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "outfile.h"
#include "path.h"
#include "proc.h"
#include "registry.h"
#include "report.h"
#include "text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_bool started;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int reporter_tid; /* the reporter thread's tid; 0 before it runs and in a forked child */
static atomic_bool text_wanted; /* the handler ran: write the text report to the log too */
static sem_t wake;              /* posted by the handler */
static const struct pql_settings *cfg;
static char last_live[PQL_PATH_MAX + 64]; /* this process's previous signal report */
static atomic_long suspects_total;
static char program[1024];

/* Runs on a program thread (the reporter blocks every signal): a lock-free atomic and sem_post, both
 * async-signal-safe and never blocking. In a forked child nobody waits: the next reporter answers. */
static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&text_wanted, true);
    sem_post(&wake);
    errno = saved;
}

static double mono_s(void)
{
    return pql_clock_s(CLOCK_MONOTONIC);
}

/* The private directory ${TMPDIR:-/tmp}/pqleak-UID, created 0700; false (logged) when it is not ours. */
static bool private_dir(char *dir, size_t len)
{
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
    if (lstat(dir, &st) != 0 || !pql_live_dir_trusted(&st, (unsigned)getuid())) {
        pql_log("refusing the live report directory '%s': not a directory of ours with mode 0700", dir);
        return false;
    }
    return true;
}

bool pql_reporter_live_dir(const struct pql_settings *s, char *dir, size_t len)
{
    if (*s->report_dir) {
        snprintf(dir, len, "%s", s->report_dir);
        return true;
    }
    return private_dir(dir, len);
}

/* ---- the advertisement (names.h) ---- */

static char advert_path[PQL_PATH_MAX + 64]; /* "" when none is written */
static uint64_t advert_token;               /* random; `pqleak status` sends it back with the signal */

/* Removes the advertisements of processes that no longer exist (killed, so they could not remove
 * their own). */
static void remove_stale(const char *dir, int self)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, PQL_REPORT_PREFIX, strlen(PQL_REPORT_PREFIX)) != 0)
            continue;
        long pid = strtol(e->d_name + strlen(PQL_REPORT_PREFIX), &end, 10);
        if (end == e->d_name + strlen(PQL_REPORT_PREFIX) || strcmp(end, PQL_ADVERT_SUFFIX) != 0 || pid <= 0 ||
            pid == self)
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* Writes the advertisement (outfile.c: temp file + rename). Reporter thread. */
static void advertise(int tid, int sig)
{
    char dir[PQL_PATH_MAX], line[160];
    if (!private_dir(dir, sizeof(dir)))
        return;
    int pid = getpid();
    remove_stale(dir, pid);
    if (getrandom(&advert_token, sizeof(advert_token), GRND_NONBLOCK) != sizeof(advert_token))
        advert_token = (uint64_t)pql_coarse_ns() ^ ((uint64_t)pid << 32) ^ (uint64_t)(uintptr_t)&advert_token;
    advert_token |= 1; /* never 0, the value of a sigqueue without one */
    struct pql_advert a = {pid, tid, sig, pql_proc_start_time(0), advert_token};
    int len = pql_advert_format(line, sizeof(line), &a);
    if (pql_advert_file_name(advert_path, sizeof(advert_path), dir, pid) < 0 || len < 0 ||
        !pql_outfile_write_bytes(advert_path, 0600, line, (size_t)len)) {
        /* ESHUTDOWN: the process is ending (pql_outfile_close_all), there is nobody left to ask. */
        if (errno != ESHUTDOWN)
            pql_log("cannot write '%s' (%s): pqleak status cannot ask this process for live reports",
                    advert_path, strerror(errno));
        advert_path[0] = '\0';
    }
}

static void unadvertise(void)
{
    if (*advert_path)
        unlink(advert_path);
    advert_path[0] = '\0';
}

/* text: also the text report to the log (a user's kill); `pqleak status` asks for JSON only, so that a
 * probe every minute does not fill the service's log. */
static void live_report(const char *trigger, bool text)
{
    char dir[PQL_PATH_MAX], path[PQL_PATH_MAX + 64];
    bool have_dir = pql_reporter_live_dir(cfg, dir, sizeof(dir));
    if (pql_report_live(cfg, trigger, have_dir ? dir : NULL, text || !have_dir, path, sizeof(path)) &&
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
    uint64_t *ids; /* the connections that became suspects in this scan (malloc'd; NULL if out of memory) */
    size_t nids, cap;
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
        uint8_t none = PQL_SUSPECT_NONE;
        if (atomic_compare_exchange_strong(&live->suspect, &none, kind)) {
            sc->found++;
            if (sc->nids == sc->cap) {
                size_t cap = sc->cap ? 2 * sc->cap : 16;
                uint64_t *ids = realloc(sc->ids, cap * sizeof(*ids));
                if (!ids)
                    return; /* counted, not logged */
                sc->ids = ids;
                sc->cap = cap;
            }
            sc->ids[sc->nids++] = rec->id;
        }
    }
}

static void check_suspects(void)
{
    struct suspect_scan sc = {.now_mono = mono_s(), .now_ns = pql_coarse_ns()};
    pql_registry_each(find_suspects, &sc);
    if (!sc.found)
        return;
    atomic_fetch_add(&suspects_total, sc.found);
    /* One warning per new suspect, with its stacks: only those found by this scan (the snapshot also
     * holds the suspects of earlier scans, already logged); then one JSON report of everything open. */
    struct pql_conn *conns;
    struct pql_counters c;
    size_t n = pql_registry_snapshot(&conns, &c), kept = 0;
    for (size_t i = 0; conns && i < n; i++)
        for (size_t j = 0; j < sc.nids; j++)
            if (conns[i].id == sc.ids[j]) {
                conns[kept++] = conns[i];
                break;
            }
    free(sc.ids);
    pql_text_suspects(cfg, conns, kept, sc.now_mono, sc.now_ns);
    free(conns);
    char dir[PQL_PATH_MAX];
    if (pql_reporter_live_dir(cfg, dir, sizeof(dir)))
        pql_report_live(cfg, PQL_TRIGGER_SUSPECT, dir, false, NULL, 0);
}

/* ---- metrics ---- */

static void write_metrics(void)
{
    if (!*cfg->metrics)
        return;
    /* Counted in place: copying every record each interval would cost megabytes with many connections. */
    struct pql_metrics m = {.cap = cfg->max_conns};
    pql_registry_each(pql_metrics_count, &m);
    pql_registry_counters(&m.conns);
    pql_checkout_counters(&m.waits);
    m.suspects_total = atomic_load(&suspects_total);
    if (!pql_metrics_write(cfg->metrics, cfg->service, program, &m)) {
        static bool warned;
        if (!warned)
            pql_log("cannot write PQLEAK_METRICS='%s' (%s)", cfg->metrics, strerror(errno));
        warned = true;
    }
}

void pql_reporter_exit(void)
{
    /* A dead process's numbers must not be served on: its metrics file goes. */
    if (atomic_load(&started) && *cfg->metrics)
        pql_metrics_remove();
    /* A report asked for from now on could not be written: say so by removing the advertisement. */
    if (atomic_load(&reporter_tid) > 0)
        unadvertise();
}

/* ---- the thread ---- */

static bool handler_named; /* the thread is named PQL_THREAD_SIGNAL */

static bool handler_still_ours(void)
{
    struct sigaction cur;
    return sigaction(cfg->signal, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
           cur.sa_handler == on_signal;
}

/* sig is pending for this thread itself, not only for the process (/proc/thread-self/status, SigPnd). */
static bool pending_here(int sig)
{
    char buf[2048];
    int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strstr(buf, "\nSigPnd:");
    return p && (strtoull(p + 8, NULL, 16) >> (sig - 1)) & 1;
}

/* Takes the signal queued to this thread, if any: 1 for `pqleak status`'s request (SI_QUEUE with the
 * advertisement's token: JSON only), 2 for another one sent to this thread (text too), 0 for none. A
 * signal pending for the process only is the program's (its signalfd or sigwait): never taken. */
static int take_request(void)
{
    sigset_t pend, one;
    if (sigpending(&pend) != 0 || !sigismember(&pend, cfg->signal) || !pending_here(cfg->signal))
        return 0;
    /* The thread's own queue is searched before the process's: this takes the one found above. */
    sigemptyset(&one);
    sigaddset(&one, cfg->signal);
    siginfo_t si;
    struct timespec zero = {0, 0};
    if (sigtimedwait(&one, &si, &zero) != cfg->signal)
        return 0;
    return si.si_code == SI_QUEUE && (uint64_t)(uintptr_t)si.si_value.sival_ptr == advert_token ? 1 : 2;
}

static void *reporter_main(void *arg)
{
    (void)arg;
    int tid = pql_tid();
    /* `pqleak status` looks for this name (and the advertisement), before the advertisement exists. */
    pthread_setname_np(pthread_self(), handler_named ? PQL_THREAD_SIGNAL : PQL_THREAD_PLAIN);
    if (handler_named)
        advertise(tid, cfg->signal);
    atomic_store(&reporter_tid, tid);
    bool suspects = cfg->suspect_age > 0 || cfg->suspect_idle_tx > 0;
    double next_suspects = mono_s() + 1, next_metrics = mono_s();
    for (;;) {
        double now = mono_s();
        if (suspects && now >= next_suspects) {
            check_suspects();
            next_suspects = now + 1;
        }
        if (*cfg->metrics && now >= next_metrics) {
            write_metrics();
            next_metrics = now + cfg->metrics_interval;
        }
        double wait = 3600;
        if (suspects)
            wait = next_suspects - now;
        if (*cfg->metrics && next_metrics - now < wait)
            wait = next_metrics - now;
        if (handler_named && wait > 0.25)
            wait = 0.25; /* answer `pqleak status` soon; notice when the program takes the signal over */
        if (wait < 0)
            wait = 0;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double end = (double)ts.tv_nsec / 1e9 + wait + 0.001;
        ts.tv_sec += (time_t)end;
        ts.tv_nsec = (long)((end - (double)(time_t)end) * 1e9);
        bool posted = sem_clockwait(&wake, CLOCK_MONOTONIC, &ts) == 0;
        while (posted && sem_trywait(&wake) == 0)
            ; /* a burst of signals gives one report */
        if (handler_named && !handler_still_ours()) {
            /* The program installed its own handler since: `pqleak status` must not signal it. */
            unadvertise();
            pthread_setname_np(pthread_self(), PQL_THREAD_PLAIN);
            handler_named = false;
        }
        int request = handler_named ? take_request() : 0;
        bool text = atomic_exchange(&text_wanted, false);
        if (posted || text || request)
            live_report(PQL_TRIGGER_SIGNAL, text || request == 2);
    }
    return NULL;
}

static void fork_child(void);
static void start(const struct pql_settings *s);

void pql_reporter_ensure(const struct pql_settings *s)
{
    if (atomic_load_explicit(&started, memory_order_acquire))
        return;
    bool suspects = s->suspect_age > 0 || s->suspect_idle_tx > 0;
    if (!s->signal && !suspects && !*s->metrics)
        return;
    start(s);
}

/* Out of line: what the first connect runs once, without its frame on every later connect. */
static __attribute__((noinline)) void start(const struct pql_settings *s)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    pql_atfork_once(&once, NULL, NULL, fork_child);
    pthread_mutex_lock(&start_lock);
    if (atomic_load(&started))
        goto out;
    cfg = s;
    pql_self_exe(program, sizeof(program));
    sem_init(&wake, 0, 0); /* before the handler can post it */
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
            const char *taken = s->signal == SIGUSR1 ? "USR1" : "USR2";
            pql_log("PQLEAK_SIGNAL=%s: the program handles SIG%s itself; no live reports on that signal "
                    "(choose PQLEAK_SIGNAL=%s, or none)",
                    taken, taken, s->signal == SIGUSR1 ? "USR2" : "USR1");
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
    atomic_store_explicit(&started, true, memory_order_release);
out:
    pthread_mutex_unlock(&start_lock);
}

/* The thread stays the parent's: the handler (inherited) finds no reporter tid and sends nothing, and
 * the child's next connection starts its own thread (and advertisement). */
static void fork_child(void)
{
    pthread_mutex_init(&start_lock, NULL);
    atomic_store(&reporter_tid, 0);
    sem_init(&wake, 0, 0);
    advert_path[0] = '\0'; /* the parent's file, not ours */
    last_live[0] = '\0';
    atomic_store(&started, false);
}
