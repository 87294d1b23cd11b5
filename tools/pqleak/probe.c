/* Asking one process for a live report (probe.h). A signal is sent only after proof, and only to the
 * shim's reporter thread (rt_tgsigqueueinfo): the process is ours (or we are root); the reporter's
 * advertisement (names.h) in the process's private live-report directory names this pid, its start time, the
 * signal and a thread of it named "pqleak-sig"; and the process catches that signal. The program's own
 * threads never see the signal, so none of their waits (select, poll, sleep) is cut short. The report is
 * looked for where that process writes it, from its own environment (/proc/PID/environ) and uid; a file
 * counts only when it appeared after the signal was sent, is a regular file (no symlink) and belongs to
 * the process's user. Command-line process only; single-threaded. */
#include "probe.h"

#include "names.h"
#include "readall.h"
#include "reportio.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SHIM_PATH_MAX 1024 /* PQL_PATH_MAX (src/config.h): the shim ignores a longer PQLEAK_REPORT_DIR */
#define PROC_FILE_MAX (16u << 20) /* /proc/PID/environ and status: far less in practice */
#define REPORT_MAX    (256u << 20)
#define POLL_MS       50

#define WHY_MAX CLI_PROBE_WHY_MAX

static bool why(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool why(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, WHY_MAX, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- reading files ---- */

/* A /proc file whole; NULL with errno set. */
static char *read_proc(int pid, const char *name, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t n;
    char *s = pql_read_all(fd, 0, PROC_FILE_MAX, &n);
    int e = errno;
    close(fd);
    errno = e;
    if (s && len)
        *len = n;
    return s;
}

/* The value of "Name:" in /proc/PID/status text, or NULL. */
static const char *status_field(const char *status, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = status; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
    }
    return NULL;
}

static const char *env_get(const struct cli_target *t, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < t->envlen; i += strlen(t->env + i) + 1)
        if (strncmp(t->env + i, name, n) == 0 && t->env[i + n] == '=')
            return t->env + i + n + 1;
    return NULL;
}

/* PQLEAK_SIGNAL as the shim reads it (names.h): unset or malformed means the default, USR1. */
static int env_signal(const char *v)
{
    int sig = SIGUSR1;
    if (v)
        pql_signal_parse(v, &sig);
    return sig;
}

/* The name (comm, without its newline) of thread tid of pid into comm; false when unreadable. */
static bool read_comm(int pid, const char *tid, char *comm, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/task/%.20s/comm", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, comm, len - 1);
    close(fd);
    comm[n > 0 ? n : 0] = '\0';
    comm[strcspn(comm, "\n")] = '\0';
    return true;
}

int cli_probe_shim_thread(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (found < 2 && (e = readdir(d))) {
        /* The shim never names the main thread; a program called pqleak (pqleak run itself) is not it. */
        if (e->d_name[0] == '.' || atoi(e->d_name) == pid)
            continue;
        char comm[32];
        if (!read_comm(pid, e->d_name, comm, sizeof comm))
            continue;
        if (strcmp(comm, PQL_THREAD_SIGNAL) == 0)
            found = 2;
        else if (strcmp(comm, PQL_THREAD_PLAIN) == 0)
            found = 1;
    }
    closedir(d);
    return found;
}

/* The comm of thread tid of pid is name. */
static bool thread_named(int pid, int tid, const char *name)
{
    char t[16], comm[32];
    snprintf(t, sizeof t, "%d", tid);
    return read_comm(pid, t, comm, sizeof comm) && strcmp(comm, name) == 0;
}

/* Reads and checks the reporter's advertisement (names.h) in the process's private directory: a
 * regular file of the process's user in a 0700 directory of that user, naming this pid, its start time,
 * USR1 or USR2 and a thread of it named "pqleak-sig". Sets t->tid and t->sig; false with msg (a
 * parenthesised reason) otherwise. */
static bool read_advert(struct cli_target *t, char *msg)
{
    const char *tmp = env_get(t, "TMPDIR");
    char dir[SHIM_PATH_MAX + 64], path[SHIM_PATH_MAX + 128], buf[256];
    if (pql_live_dir_default(dir, sizeof dir, tmp, (unsigned)t->uid) < 0)
        return why(msg, "its TMPDIR is too long");
    pql_advert_file_name(path, sizeof path, dir, t->pid);
    struct stat st;
    if (lstat(dir, &st) != 0 || !pql_live_dir_trusted(&st, (unsigned)t->uid))
        return why(msg, "no advertisement %s from pqleak's reporter", path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return why(msg, "no advertisement %s from pqleak's reporter", path);
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == t->uid)
        n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    struct pql_advert a;
    if (!pql_advert_parse(buf, &a) || a.pid != t->pid || (a.sig != SIGUSR1 && a.sig != SIGUSR2) || a.tid <= 0)
        return why(msg, "%s is not an advertisement of pqleak's reporter in process %d", path, t->pid);
    if (a.start == 0 || a.start != pql_proc_start_time(t->pid))
        return why(msg, "%s was left by an earlier process with the same pid", path);
    if (!thread_named(t->pid, a.tid, PQL_THREAD_SIGNAL))
        return why(msg, "%s names thread %d, which is not pqleak's reporter", path, a.tid);
    t->tid = a.tid;
    t->sig = a.sig;
    t->token = a.token;
    return true;
}

/* ---- the checks before the signal ---- */

static int pidfd_open_compat(int pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

static bool process_gone(const struct cli_target *t);

/* To the reporter thread only: a signal sent to the process could be taken by any thread of the program
 * and cut its select, poll or sleep short. rt_tgsigqueueinfo checks that the thread belongs to the pid
 * and carries the advertisement's token (the shim then writes JSON only); the pidfd shows that the
 * process verified is still the one running. */
static int send_signal(const struct cli_target *t)
{
    if (process_gone(t)) {
        errno = ESRCH;
        return -1;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = t->sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_ptr = (void *)(uintptr_t)t->token;
    return (int)syscall(SYS_rt_tgsigqueueinfo, t->pid, t->tid, t->sig, &si);
}

static bool process_gone(const struct cli_target *t)
{
    if (t->pidfd >= 0) {
        struct pollfd p = {t->pidfd, POLLIN, 0};
        return poll(&p, 1, 0) > 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", t->pid);
    return access(path, F_OK) != 0;
}

static const char *user_name(uid_t uid, char *buf, size_t len)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(buf, len, "user %s (uid %u)", pw->pw_name, (unsigned)uid);
    else
        snprintf(buf, len, "uid %u", (unsigned)uid);
    return buf;
}

/* Fills t from /proc and checks that pid is a process of ours running the shim's signal handler. */
static bool check_process(struct cli_target *t, char *msg)
{
    int pid = t->pid;
    /* First: from here on, the signal can only reach this very process, even if the pid is reused. */
    t->pidfd = pidfd_open_compat(pid);
    if (t->pidfd < 0 && errno == ESRCH)
        return why(msg, "process %d does not exist", pid);
    char *status = read_proc(pid, "status", NULL);
    if (!status) {
        if (errno == ENOENT && t->pidfd >= 0)
            return why(msg, "process %d exists but /proc/%d cannot be read (is /proc mounted with hidepid?)",
                       pid, pid);
        if (errno == ENOENT || errno == ESRCH)
            return why(msg, "process %d does not exist", pid);
        return why(msg, "cannot read /proc/%d/status (%s)", pid, strerror(errno));
    }
    const char *tgid = status_field(status, "Tgid");
    const char *uids = status_field(status, "Uid");
    const char *sigcgt = status_field(status, "SigCgt");
    unsigned ruid, euid;
    if (!tgid || !uids || !sigcgt || sscanf(uids, "%u %u", &ruid, &euid) != 2) {
        free(status);
        return why(msg, "cannot read /proc/%d/status (unexpected format)", pid);
    }
    long leader = strtol(tgid, NULL, 10);
    unsigned long long caught = strtoull(sigcgt, NULL, 16);
    free(status);
    if (leader != pid)
        return why(msg, "%d is a thread of process %ld, not a process; ask pqleak status %ld", pid, leader,
                   leader);
    t->uid = ruid;
    t->euid = euid;
    char who[128];
    if (geteuid() != 0 && t->uid != geteuid())
        return why(msg,
                   "process %d belongs to %s, not to you; only its owner or root may ask it for a report",
                   pid, user_name(t->uid, who, sizeof who));

    /* The reporter's advertisement says which thread and which signal (the environment may be stale: a
     * program can setenv PQLEAK_SIGNAL before it connects). The environment says where reports go. */
    t->env = read_proc(pid, "environ", &t->envlen);
    int env_errno = errno;
    if (!t->env)
        return why(msg, "cannot read /proc/%d/environ (%s), so cannot tell where it writes live reports", pid,
                   strerror(env_errno));
    char head[80], advert[WHY_MAX - 200];
    snprintf(head, sizeof head, "process %d does not run pqleak's signal handler", pid);
    /* The reporter names itself, then advertises: just after the first connection, wait a moment. */
    bool ok = read_advert(t, advert);
    for (int i = 0; !ok && i < 1000 / POLL_MS && cli_probe_shim_thread(pid) == 2; i++) {
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
        ok = read_advert(t, advert);
    }
    if (ok) {
        if (!(caught & (1ULL << (t->sig - 1))))
            return why(msg, "%s (it does not catch SIG%s, the signal its pqleak reporter answers)", head,
                       pql_signal_name(t->sig));
        return true;
    }
    int env_sig = env_signal(env_get(t, "PQLEAK_SIGNAL"));
    int thread = cli_probe_shim_thread(pid);
    if (thread == 2)
        return why(msg, "%s (it has a thread named " PQL_THREAD_SIGNAL ", but %s)", head, advert);
    if (thread == 1) {
        /* Ruby and PHP take both signals: then naming the other one would not help. */
        int sig = env_sig ? env_sig : SIGUSR1, other = sig == SIGUSR1 ? SIGUSR2 : SIGUSR1;
        if (!env_sig)
            return why(msg, "%s (its PQLEAK_SIGNAL is none)", head);
        if (caught & (1ULL << (other - 1)))
            return why(msg, "%s (pqleak runs in it, but the program handles SIGUSR1 and SIGUSR2 itself)",
                       head);
        return why(
            msg,
            "%s (pqleak runs in it, but the program handles SIG%s itself; start it with PQLEAK_SIGNAL=%s)",
            head, pql_signal_name(sig), pql_signal_name(other));
    }
    if (!env_sig)
        return why(msg, "%s (its PQLEAK_SIGNAL is none)", head);
    return why(msg,
               "%s (no pqleak reporter in it: it does not run the shim, or has not opened a connection yet)",
               head);
}

/* Where the process writes its live reports (src/reporter.c, pql_reporter_live_dir), from its
 * environment: PQLEAK_REPORT_DIR (relative to its working directory), else ${TMPDIR:-/tmp}/pqleak-UID,
 * which the shim uses only when it is a directory of the process's user with mode 0700. */
static bool find_dir(struct cli_target *t, char *msg)
{
    const char *rd = env_get(t, "PQLEAK_REPORT_DIR");
    if (rd && *rd && strlen(rd) < SHIM_PATH_MAX) {
        if (rd[0] == '/') {
            t->dir = cli_xstrdup(rd);
        } else {
            char link[64], cwd[4096];
            snprintf(link, sizeof link, "/proc/%d/cwd", t->pid);
            ssize_t n = readlink(link, cwd, sizeof cwd - 1);
            if (n <= 0)
                return why(msg, "cannot tell where its PQLEAK_REPORT_DIR '%s' is: cannot read %s (%s)", rd,
                           link, n < 0 ? strerror(errno) : "empty");
            cwd[n] = '\0';
            t->dir = cli_xasprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", rd);
        }
    } else {
        const char *tmp = env_get(t, "TMPDIR");
        size_t len = (tmp ? strlen(tmp) : 0) + 32;
        t->dir = cli_xmalloc(len);
        if (pql_live_dir_default(t->dir, len, tmp, (unsigned)t->uid) < 0)
            return why(msg, "cannot tell where it writes live reports"); /* len has room for any uid */
        t->private_dir = true;
    }
    struct stat st;
    if (lstat(t->dir, &st) != 0) {
        if (errno == ENOENT)
            return true; /* made with the first report */
        return why(msg, "cannot read its report directory %s (%s)", t->dir, strerror(errno));
    }
    if (t->private_dir && !pql_live_dir_trusted(&st, (unsigned)t->uid))
        return why(msg,
                   "%s is not a directory of uid %u with mode 0700, so pqleak in process %d writes no report "
                   "there (remove it, or set PQLEAK_REPORT_DIR)",
                   t->dir, (unsigned)t->uid, t->pid);
    if (!t->private_dir && (stat(t->dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        return why(msg, "its PQLEAK_REPORT_DIR %s is not a directory", t->dir);
    DIR *d = opendir(t->dir);
    if (!d)
        return why(msg, "cannot read its report directory %s (%s)", t->dir, strerror(errno));
    closedir(d);
    return true;
}

/* ---- waiting for the report ---- */

/* The process's signal reports now in the directory, as "name/inode/mtime" ids. */
static void scan_reports(const struct cli_target *t, struct cli_vec *ids, struct cli_vec *names)
{
    DIR *d = opendir(t->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid;
        char trigger[16];
        struct stat st;
        if (!pql_report_file_parse(e->d_name, &pid, trigger, sizeof trigger, NULL) || pid != t->pid ||
            strcmp(trigger, PQL_TRIGGER_SIGNAL) != 0 ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        cli_vec_push(ids, cli_xasprintf("%s/%llu/%lld.%09ld", e->d_name, (unsigned long long)st.st_ino,
                                        (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec));
        if (names)
            cli_vec_push(names, cli_xstrdup(e->d_name));
    }
    closedir(d);
}

static bool has_id(const struct cli_vec *ids, const char *id)
{
    for (size_t i = 0; i < ids->n; i++)
        if (strcmp(ids->v[i], id) == 0)
            return true;
    return false;
}

static void free_strs(struct cli_vec *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    cli_vec_free(v);
}

/* Reads path whole when it is a regular file (not a symlink) of the process's user. NULL with errno:
 * ENOENT when it is gone (replaced by a newer report), EPERM when it is not the process's. */
static char *read_report(const struct cli_target *t, const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_uid != t->uid && st.st_uid != t->euid)) {
        close(fd);
        errno = EPERM;
        return NULL;
    }
    char *s = pql_read_all(fd, (size_t)st.st_size, REPORT_MAX, len);
    int e = errno;
    close(fd);
    errno = e;
    return s;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Takes the newest report that is not in seen; false when there is none yet. Files that are not the
 * process's are added to seen and counted in *ignored. */
static bool take_new(const struct cli_target *t, struct cli_vec *seen, size_t *ignored, struct cli_found *out,
                     char *msg, bool *failed)
{
    struct cli_vec ids = {0}, names = {0};
    scan_reports(t, &ids, &names);
    bool got = false;
    for (;;) {
        size_t best = ids.n;
        for (size_t i = 0; i < ids.n; i++)
            if (!has_id(seen, ids.v[i]) && (best == ids.n || strverscmp(names.v[i], names.v[best]) > 0))
                best = i;
        if (best == ids.n)
            break;
        char *path = cli_xasprintf("%s/%s", t->dir, (char *)names.v[best]);
        size_t len;
        char *data = read_report(t, path, &len);
        if (data) {
            *out = (struct cli_found){path, data, len};
            got = true;
            break;
        }
        if (errno == EPERM || errno == ELOOP)
            ++*ignored;
        else if (errno != ENOENT) {
            why(msg, "cannot read its live report %s (%s)", path, strerror(errno));
            *failed = true;
            free(path);
            break;
        }
        free(path);
        cli_vec_push(seen, cli_xstrdup(ids.v[best]));
    }
    free_strs(&ids);
    free_strs(&names);
    return got;
}

bool cli_probe_send(const struct cli_target *t, double timeout, struct cli_probe_req *r, char *msg)
{
    *r = (struct cli_probe_req){.timeout = timeout};
    scan_reports(t, &r->seen, NULL);
    if (send_signal(t) != 0) {
        int e = errno;
        free_strs(&r->seen);
        if (e == ESRCH)
            return why(msg, "process %d exited before it could be asked for a report", t->pid);
        return why(msg, "cannot send SIG%s to process %d (%s)", pql_signal_name(t->sig), t->pid, strerror(e));
    }
    r->deadline = mono_s() + timeout;
    return true;
}

enum cli_probe_state cli_probe_poll(const struct cli_target *t, struct cli_probe_req *r,
                                    struct cli_found *out, char *msg)
{
    bool gone = process_gone(t), failed = false;
    /* A report written just before the process exited still counts: look once more after exit. */
    if (take_new(t, &r->seen, &r->ignored, out, msg, &failed))
        return CLI_PROBE_GOT;
    if (failed)
        return CLI_PROBE_FAILED;
    if (gone) {
        why(msg, "process %d exited before it wrote a live report", t->pid);
        return CLI_PROBE_FAILED;
    }
    if (mono_s() < r->deadline)
        return CLI_PROBE_PENDING;
    char extra[160] = "";
    if (r->ignored)
        snprintf(extra, sizeof extra, "; ignored %zu file%s there not owned by its user", r->ignored,
                 r->ignored == 1 ? "" : "s");
    why(msg,
        "no live report from process %d in %s after %g s (is the directory writable by it? its log says "
        "why%s)",
        t->pid, t->dir, r->timeout, extra);
    return CLI_PROBE_FAILED;
}

void cli_probe_req_free(struct cli_probe_req *r)
{
    free_strs(&r->seen);
}

/* Sends the signal and waits for the report it asks for. */
bool cli_probe_ask(const struct cli_target *t, double timeout, struct cli_found *out, char *msg)
{
    struct cli_probe_req r;
    if (!cli_probe_send(t, timeout, &r, msg))
        return false;
    enum cli_probe_state s;
    while ((s = cli_probe_poll(t, &r, out, msg)) == CLI_PROBE_PENDING) {
        double left = r.deadline - mono_s();
        int ms = left * 1000 < POLL_MS ? (int)(left * 1000) + 1 : POLL_MS;
        if (t->pidfd >= 0) {
            struct pollfd p = {t->pidfd, POLLIN, 0};
            poll(&p, 1, ms);
        } else {
            struct timespec ts = {0, (long)ms * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    cli_probe_req_free(&r);
    return s == CLI_PROBE_GOT;
}

/* Parses and validates the report; false with msg naming the file. */
bool cli_probe_check_found(const struct cli_target *t, const struct cli_found *f, json_t **root, char *msg)
{
    json_error_t jerr;
    *root = json_loadb(f->data, f->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root)
        return why(msg, "%s: not valid JSON, truncated or corrupt (line %d: %s)", f->path, jerr.line,
                   jerr.text);
    char vmsg[600];
    if (!cli_report_check(*root, vmsg, sizeof vmsg))
        return why(msg, "%s: %s", f->path, vmsg);
    const char *trigger = json_string_value(json_object_get(*root, PQL_F_TRIGGER));
    const json_t *pid = json_object_get(*root, PQL_F_PID);
    if (strcmp(trigger, PQL_TRIGGER_SIGNAL) != 0 || !json_is_integer(pid) ||
        json_integer_value(pid) != t->pid)
        return why(msg, "%s: corrupt report (not a live report of process %d: trigger %s)", f->path, t->pid,
                   trigger);
    /* The status is made of these: without them there is nothing to judge. */
    const json_t *u = json_object_get(*root, PQL_F_UTILIZATION);
    if (!json_is_integer(json_object_get(u, PQL_F_OPEN)) ||
        !json_is_array(json_object_get(*root, PQL_F_CONNECTIONS)))
        return why(msg, "%s: corrupt report (no utilization or connections)", f->path);
    return true;
}

bool cli_probe_target(struct cli_target *t, int pid, char *msg)
{
    *t = (struct cli_target){.pid = pid, .pidfd = -1};
    return check_process(t, msg) && find_dir(t, msg);
}

void cli_probe_free(struct cli_target *t, struct cli_found *f)
{
    if (t) {
        free(t->env);
        free(t->dir);
        if (t->pidfd >= 0)
            close(t->pidfd);
        t->env = t->dir = NULL;
        t->pidfd = -1;
    }
    if (f) {
        free(f->path);
        free(f->data);
        f->path = f->data = NULL;
    }
}
