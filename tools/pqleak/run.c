/* `pqleak run` (run.h): finds the shim, sets up the child's environment and report directory, runs the
 * command (fork + execvp, exec failures reported through a close-on-exec pipe), forwards SIGINT,
 * SIGTERM and SIGHUP to it, waits for it and for the processes it left behind, then merges the
 * reports. The signal handler only calls kill(2) and sets a flag; all else runs in the main flow. */
#include "run.h"

#include "findings.h"
#include "jsonout.h"
#include "names.h"
#include "junit.h"
#include "merge.h"
#include "outfile.h"
#include "path.h"
#include "print.h"
#include "reportio.h"
#include "suppress.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHIM_NAME "libpqleak.so"
/* How long to wait, after the command exits, for processes it left running: their exit reports belong
 * to this run. Daemons that never exit are left alone after this. */
#define ORPHAN_GRACE_MS 5000

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])

static volatile sig_atomic_t child_pid;  /* 0 once the child is gone */
static volatile sig_atomic_t got_signal; /* the last signal received */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_signal = sig;
    pid_t pid = child_pid;
    /* A terminal signals the whole foreground process group, the child included; forwarding such a
     * signal would deliver it twice. */
    if (pid > 0 && si->si_code != SI_KERNEL)
        kill(pid, sig);
}

/* ---- the shim and the environment ---- */

static bool is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Absolute path of the shim, or NULL after printing one line. Caller frees. */
static char *find_shim(void)
{
    const char *env = getenv("PQLEAK_LIB");
    if (env && *env) {
        char *p = realpath(env, NULL);
        if (!p || !is_regular(p)) {
            cli_err("PQLEAK_LIB=%s: %s", env, p ? "not a regular file" : strerror(errno));
            free(p);
            return NULL;
        }
        return p;
    }
    char exe[PATH_MAX];
    if (pql_self_exe(exe, sizeof exe) < 0) {
        cli_err("cannot find the shim: /proc/self/exe: %s (set PQLEAK_LIB=/path/" SHIM_NAME ")",
                strerror(errno));
        return NULL;
    }
    *strrchr(exe, '/') = '\0';
    /* <prefix>/bin/pqleak finds <prefix>/lib/libpqleak.so: the build tree and the install tree alike. */
    char *guess = cli_xasprintf("%s/../lib/" SHIM_NAME, exe);
    char *p = realpath(guess, NULL);
    if (!p || !is_regular(p)) {
        cli_err("cannot find the shim: %s does not exist (build it, or set PQLEAK_LIB=/path/" SHIM_NAME ")",
                guess);
        free(guess);
        free(p);
        return NULL;
    }
    free(guess);
    return p;
}

/* True when the LD_PRELOAD list (colon or space separated) already names path. */
static bool preload_has(const char *list, const char *path)
{
    size_t n = strlen(path);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ": ");
        if (len == n && strncmp(p, path, n) == 0)
            return true;
        p += len;
        p += strspn(p, ": ");
    }
    return false;
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

/* Writes the rules of several --suppressions files into one file in dir, named after this process
 * (not *.json: never read as a report). Returns its path (caller frees), or NULL after one line. */
static char *write_suppressions(const char *dir, const char *text)
{
    char *path = cli_xasprintf("%s/pqleak-run-%ld.supp", dir, (long)getpid());
    FILE *f = fopen(path, "wxe");
    if (f) {
        bool ok = fputs(text, f) >= 0;
        if (fclose(f) == 0 && ok)
            return path;
        int e = errno;
        unlink(path);
        errno = e;
    }
    cli_err("--suppressions: cannot write their rules together into %s: %s", path, strerror(errno));
    free(path);
    return NULL;
}

static void setup_env(const struct cli_run_opts *o, const char *shim, const char *dir, const char *supp)
{
    /* Ours goes last: runtimes such as ASan insist on being first in the list. */
    const char *old = getenv("LD_PRELOAD");
    if (old && *old && !preload_has(old, shim)) {
        char *v = cli_xasprintf("%s:%s", old, shim);
        setenv("LD_PRELOAD", v, 1);
        free(v);
    } else if (!old || !*old) {
        setenv("LD_PRELOAD", shim, 1);
    }
    setenv("PQLEAK_REPORT_DIR", dir, 1);
    /* The command's status decides, not each process; and this command prints the one summary. */
    setenv("PQLEAK_EXITCODE", "0", 1);
    setenv("PQLEAK_TEXT_REPORT", "0", 1);
    if (supp)
        setenv("PQLEAK_SUPPRESSIONS", supp, 1);
    if (o->max_conns)
        setenv("PQLEAK_MAX_CONNS", o->max_conns, 1);
    if (o->checkout_timeout)
        setenv("PQLEAK_CHECKOUT_TIMEOUT", o->checkout_timeout, 1);
    if (o->strict)
        setenv("PQLEAK_STRICT", "1", 1);
}

/* A fresh private directory (mkdtemp: mode 0700). Caller frees. NULL after printing one line. */
static char *make_temp_dir(void)
{
    const char *t = getenv("TMPDIR");
    struct stat st;
    if (!t || t[0] != '/' || stat(t, &st) != 0 || !S_ISDIR(st.st_mode))
        t = "/tmp";
    char *dir = cli_xasprintf("%s/pqleak-run.XXXXXX", t);
    if (!mkdtemp(dir)) {
        cli_err("cannot make a report directory in %s: %s", t, strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the run channel (names.h: pql_run_socket_name) ---- */

/* Binds the run's socket, on which a process that connected and then could not leave its exit report
 * in dir says so. Returns the descriptor, or -1 after printing one line (the run goes on: reports are
 * still read, only such a failure would go unheard). */
static int channel_open(const char *dir)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int len = pql_run_socket_name(a.sun_path + 1, sizeof a.sun_path - 1, dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        int size = 1 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (bind(fd, (struct sockaddr *)&a,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len)) == 0)
            return fd;
        int e = errno;
        close(fd);
        errno = e;
    }
    cli_err("warning: cannot listen for processes that fail to write their report in %s (%s)", dir,
            errno == EADDRINUSE ? "another pqleak run uses this directory" : strerror(errno));
    return -1;
}

/* Prints one line per process that said it connected and left no report; returns their number. */
static size_t channel_failures(int fd, const char *dir)
{
    size_t n = 0;
    char msg[600];
    ssize_t len;
    while (fd >= 0 && (len = recv(fd, msg, sizeof msg - 1, MSG_DONTWAIT)) >= 0) {
        msg[len] = '\0';
        char *pid = msg + (len > 2 && msg[0] == 'F' && msg[1] == ' ' ? 2 : 0);
        char *why = strchr(pid, ' ');
        if (why)
            *why++ = '\0';
        cli_err("process %s connected to PostgreSQL but left no report in %s (%s): this run cannot pass", pid,
                dir, why ? why : "no reason given");
        n++;
    }
    return n;
}

/* ---- running the command ---- */

struct sigstate {
    sigset_t oldmask;
    struct sigaction prev[NFORWARDED];
    bool ours[NFORWARDED];
};

static void signals_install(struct sigstate *s)
{
    sigset_t block;
    sigemptyset(&block);
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaddset(&block, forwarded[i]);
    /* Blocked until the child's pid is known, so none is lost or sent nowhere. */
    sigprocmask(SIG_BLOCK, &block, &s->oldmask);
    struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFORWARDED; i++) {
        sigaction(forwarded[i], NULL, &s->prev[i]);
        /* An ignored signal (nohup) stays ignored, and the child inherits that. */
        s->ours[i] = s->prev[i].sa_handler != SIG_IGN;
        if (s->ours[i])
            sigaction(forwarded[i], &sa, NULL);
    }
}

static void signals_restore(struct sigstate *s)
{
    for (size_t i = 0; i < NFORWARDED; i++)
        if (s->ours[i])
            sigaction(forwarded[i], &s->prev[i], NULL);
    sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
}

static int decode_status(int ws)
{
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws))
        return 128 + WTERMSIG(ws);
    return CLI_EXIT_USAGE;
}

/* Waits for the child, reaping orphaned descendants (we are their subreaper) as they exit so they do
 * not pile up as zombies. The child is seen with WNOWAIT first: its pid stays ours, and out of the
 * signal handler's reach, until child_pid is cleared. */
static int wait_child(pid_t pid)
{
    for (;;) {
        siginfo_t info = {0};
        if (waitid(P_ALL, 0, &info, WEXITED | WNOWAIT) != 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: cannot happen while the child is unreaped */
        }
        if (info.si_pid == pid)
            break;
        waitpid(info.si_pid, NULL, 0);
    }
    child_pid = 0;
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    return decode_status(ws);
}

/* Waits up to ORPHAN_GRACE_MS for the processes the command left behind. Returns true when some are
 * still running. */
static bool wait_orphans(void)
{
    got_signal = 0;
    for (int waited = 0;; waited += 20) {
        pid_t p;
        while ((p = waitpid(-1, NULL, WNOHANG)) > 0) {
        }
        if (p < 0 && errno == ECHILD)
            return false;
        if (waited >= ORPHAN_GRACE_MS || got_signal)
            return true;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Runs command; *status gets its exit status. Returns 0, or the status pqleak exits with when the
 * command could not be started (126, 127, 2), after printing one line. */
static int spawn_and_wait(char **command, int *status)
{
    struct sigstate ss;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        cli_err("cannot run %s: pipe: %s", command[0], strerror(errno));
        return CLI_EXIT_USAGE;
    }
    /* Orphaned descendants are reparented to us, so we can wait for their exit reports. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signals_install(&ss);
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < NFORWARDED; i++)
            if (ss.ours[i])
                signal(forwarded[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &ss.oldmask, NULL);
        close(pfd[0]);
        execvp(command[0], command);
        int e = errno;
        if (write(pfd[1], &e, sizeof e) < 0) {
            /* the parent then sees a plain exit status 127 */
        }
        _exit(CLI_EXIT_NOTFOUND);
    }
    int fork_errno = errno;
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        signals_restore(&ss);
        cli_err("cannot run %s: fork: %s", command[0], strerror(fork_errno));
        return CLI_EXIT_USAGE;
    }
    child_pid = pid;
    sigprocmask(SIG_SETMASK, &ss.oldmask, NULL);

    int e = 0;
    ssize_t n;
    while ((n = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR) {
    }
    close(pfd[0]);
    *status = wait_child(pid);
    if (n == (ssize_t)sizeof e) {
        signals_restore(&ss);
        /* As a shell says: 127 when there is no such command, 126 when it is there but will not run. */
        if (e == ENOENT || e == ENOTDIR) {
            cli_err("%s: command not found", command[0]);
            return CLI_EXIT_NOTFOUND;
        }
        cli_err("%s: cannot execute: %s", command[0], strerror(e));
        return CLI_EXIT_NOEXEC;
    }
    if (wait_orphans())
        cli_err("processes started by %s were still running %d s after it exited; reports they write "
                "later are not included",
                command[0], ORPHAN_GRACE_MS / 1000);
    signals_restore(&ss);
    return 0;
}

/* ---- after the command ---- */

/* Writes an output file; false after printing one line. */
static bool write_output(const char *option, const char *path, const struct cli_set *set, bool strict)
{
    struct cli_outfile of;
    if (!cli_outfile_open(&of, option, path))
        return false;
    if (strcmp(option, "--json") == 0)
        cli_jsonout_write(of.fp, set);
    else
        cli_junit_write(of.fp, set, strict);
    return cli_outfile_commit(&of, option);
}

/* Reads the reports of this run and prints the summary. Returns 0, CLI_EXIT_LEAKS when a group counts,
 * or CLI_EXIT_USAGE when a report could not be read or an output not written. */
static int collect(const struct cli_run_opts *o, const char *dir, const struct cli_dirsnap *snap,
                   const struct pql_rules *rules, bool strict, size_t missing)
{
    struct cli_vec paths = {0};
    if (!cli_report_list_dir(dir, snap, &paths))
        return CLI_EXIT_USAGE;
    struct cli_set set = {0};
    size_t bad = missing;
    for (size_t i = 0; i < paths.n; i++) {
        bad += !cli_report_load_listed(&set, paths.v[i]);
        free(paths.v[i]);
    }
    size_t nfiles = paths.n;
    cli_vec_free(&paths);
    /* Fail closed: a summary without the unreadable (or missing) reports could pass a leaking run. */
    if (bad) {
        cli_set_free(&set);
        return CLI_EXIT_USAGE;
    }
    cli_set_finish(&set); /* issue 12: fork hand-offs (findings.h) */
    set.full_stacks = o->full_stacks;
    cli_rules_apply(rules, &set);
    if (nfiles == 0) {
        if (o->report_dir)
            cli_err("no reports in %s: no process opened a PostgreSQL connection", dir);
        else
            cli_err("no reports: no process opened a PostgreSQL connection");
    } else {
        fflush(stdout);
        cli_print_summary(stderr, &set, strict);
        fflush(stderr);
    }
    int rc = cli_set_fails(&set, strict) ? CLI_EXIT_LEAKS : 0; /* issue 12: leaks or misuse */
    if (o->json && !write_output("--json", o->json, &set, strict))
        rc = CLI_EXIT_USAGE;
    if (o->junit && !write_output("--junit", o->junit, &set, strict))
        rc = CLI_EXIT_USAGE;
    cli_set_free(&set);
    return rc;
}

int cli_run(const struct cli_run_opts *o)
{
    int rc = CLI_EXIT_USAGE;
    struct pql_rules rules = {0};
    struct cli_dirsnap snap = {0};
    char *supp = NULL, *dir = NULL, *supp_text = NULL;
    bool temp_dir = false;
    int chan = -1;
    bool strict = o->strict || env_true("PQLEAK_STRICT");

    char *shim = find_shim();
    if (!shim)
        goto out;
    if (o->suppressions.n == 1) {
        supp = realpath(o->suppressions.v[0], NULL);
        if (!supp) {
            cli_err("--suppressions %s: %s", o->suppressions.v[0], strerror(errno));
            goto out;
        }
    }
    if (!cli_rules_load_all(&rules, o->suppressions.v, o->suppressions.n, &supp_text))
        goto out;
    if ((o->json && !cli_outfile_check("--json", o->json)) ||
        (o->junit && !cli_outfile_check("--junit", o->junit)))
        goto out;
    if (o->report_dir) {
        if (!cli_dir_prepare("--report-dir", o->report_dir))
            goto out;
        dir = realpath(o->report_dir, NULL);
        if (!dir) {
            cli_err("--report-dir %s: %s", o->report_dir, strerror(errno));
            goto out;
        }
        /* The directory may hold reports of earlier runs; only this run's count. */
        cli_dirsnap_take(&snap, dir);
    } else {
        dir = make_temp_dir();
        if (!dir)
            goto out;
        temp_dir = true;
    }
    /* Several files: the shim reads one, so it gets their rules together in the run's directory. */
    if (o->suppressions.n > 1 && !(supp = write_suppressions(dir, supp_text)))
        goto out;
    setup_env(o, shim, dir, supp);
    chan = channel_open(dir);

    int status;
    rc = spawn_and_wait(o->command, &status);
    if (rc)
        goto out;
    size_t missing = channel_failures(chan, dir);
    int verdict = collect(o, dir, o->report_dir ? &snap : NULL, &rules, strict, missing);
    if (o->no_fail || status != 0)
        rc = status;
    else if (verdict == CLI_EXIT_LEAKS)
        rc = o->exitcode;
    else
        rc = verdict;
out:
    if (chan >= 0)
        close(chan);
    if (supp && o->suppressions.n > 1)
        unlink(supp);
    if (temp_dir)
        remove_tree(dir);
    cli_dirsnap_free(&snap);
    pql_rules_free(&rules);
    free(dir);
    free(supp);
    free(supp_text);
    free(shim);
    return rc;
}
