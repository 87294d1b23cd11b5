"""Stress tests of the preloaded shim, each bounded in time: many threads connecting under a cap with a
storm of live-report signals (counts must be exact), forks while other threads connect (no hang, the
child works), a report directory that is missing, read-only or full (a warning, the report goes to
the log, the program's exit status is its own), and a process killed with SIGKILL in the middle of a
report (no half-written report; the previous one stays valid).

    stress.py CASE        run by ctest through tools/pgserver exec (PGHOST & co.)

Exits 0 on success, 1 on failure (with what was expected), 77 when the case cannot run here (not root,
mounting not permitted), which ctest shows as skipped."""
import glob
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

SHIM = os.environ["PQLEAK_SHIM"]
CLI = os.environ["PQLEAK_CLI"]
PROG = os.environ["STRESS_PROG"]
KILLPOINT = os.environ["STRESS_KILLPOINT"]
SKIP = 77


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def environment(extra):
    """No PQLEAK_* of the caller's; the shim preloaded; extra on top."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PQLEAK_")}
    e["LD_PRELOAD"] = SHIM
    e.update(extra)
    return e


def run(args, env, timeout):
    p = subprocess.Popen(args, env=environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"{args} still running after {timeout} s (killed)\n{err[-3000:]}")
    return p.pid, p.returncode, out, err


def report_files(d, pid=None, trigger="*"):
    return sorted(glob.glob(os.path.join(d, f"pqleak-{pid if pid else '*'}-{trigger}-*.json")))


def load(path):
    """A report file, checked: mode 0600, valid JSON, our schema."""
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, f"{path} is not mode 0600")
    with open(path) as f:
        try:
            r = json.load(f)
        except ValueError as e:
            raise AssertionError(f"{path} is not valid JSON: {e}")
    check(r.get("schema") == "pqleak/1", f"{path}: schema {r.get('schema')!r}")
    return r


def only(d, pid, trigger):
    files = report_files(d, pid, trigger)
    check(len(files) == 1, f"expected one {trigger} report of pid {pid} in {d}, found {files}")
    return load(files[0])


def no_temp_files(d):
    left = glob.glob(os.path.join(d, ".pqleak-*.tmp"))
    check(not left, f"temp files left in {d}: {left}")


def shim_problems(err):
    """The shim's lines on stderr other than the utilization levels a cap is expected to cross."""
    return [l for l in err.splitlines() if l.startswith("pqleak:") and "of PQLEAK_MAX_CONNS=" not in l]


def summary_of(out):
    """The program's "ok key=value ..." line as a dict."""
    line = [l for l in out.splitlines() if l.startswith("ok ")]
    check(line, f"the program printed no result line:\n{out}")
    return {k: float(v) for k, v in (kv.split("=") for kv in line[-1].split()[1:])}


# ---------------------------------------------------------------------------------------------- cases

def case_cycles(tmp):
    """32 threads x 1000 connect/finish cycles under a cap of 16, with a storm of SIGUSR1 live-report
    requests all along: every count exact, nothing left open, the last live report intact."""
    cap = 16
    pid, rc, out, err = run([PROG, "cycles", "32", "1000", "signals"],
                            {"PQLEAK_MAX_CONNS": str(cap), "PQLEAK_CHECKOUT_TIMEOUT": "300",
                             "PQLEAK_REPORT_DIR": tmp}, timeout=900)
    check(rc == 0, f"exit status {rc}\n{err[-3000:]}")
    s = summary_of(out)
    print(f"cycles: {s}")
    check(s["signals"] > 100, f"only {s['signals']} signals were sent during the run")
    u = only(tmp, pid, "exit")["utilization"]
    n = int(s["opened"])
    check(n == 32 * 1000 + 1, f"the program opened {n}")
    check(u["opened_total"] == n and u["closed_total"] == n, f"opened/closed {u['opened_total']}/{u['closed_total']}, "
          f"the program opened and closed {n}")
    check(u["open"] == 0, f"{u['open']} open at exit")
    check(u["failed_total"] == 0 and u["refused_total"] == 0 and u["timeouts_total"] == 0,
          f"failed {u['failed_total']}, refused {u['refused_total']}, timeouts {u['timeouts_total']}")
    check(0 < u["peak_open"] <= cap, f"peak_open {u['peak_open']} with a cap of {cap}")
    check(u["waits_total"] > 0, "32 threads under a cap of 16 never waited")
    # The reporter keeps one signal report per process: the last one, whole.
    sig = report_files(tmp, pid, "signal")
    check(len(sig) == 1, f"expected the one last signal report, found {sig}")
    load(sig[0])
    no_temp_files(tmp)
    check(not shim_problems(err), f"the shim complained:\n" + "\n".join(shim_problems(err)[:20]))


def case_fork(tmp):
    """8 threads connect in a loop (half of them non-blocking, refused at the cap) while the main thread
    forks 100 times: every child connects, reads PQerrorMessage, queries and exits cleanly within the
    program's 60 s watchdog; every process's counts are exact."""
    pid, rc, out, err = run([PROG, "fork", "8", "100"],
                            {"PQLEAK_MAX_CONNS": "4", "PQLEAK_REPORT_DIR": tmp}, timeout=600)
    check(rc == 0, f"exit status {rc}\n{err[-3000:]}")
    s = summary_of(out)
    print(f"fork: {s}")
    u = only(tmp, pid, "exit")["utilization"]
    check(u["opened_total"] == s["opened"] == u["closed_total"] and u["open"] == 0,
          f"parent: opened {u['opened_total']}, closed {u['closed_total']}, open {u['open']}; the program opened "
          f"{s['opened']}")
    check(u["refused_total"] == s["refused"] > 0, f"parent: {u['refused_total']} refused, the program saw {s['refused']}")
    children = [f for f in report_files(tmp, None, "exit") if f"pqleak-{pid}-" not in f]
    check(len(children) == 100, f"{len(children)} exit reports of children, expected 100")
    for f in children:
        r = load(f)
        u = r["utilization"]
        check(u["opened_total"] == 1 and u["closed_total"] == 1 and u["open"] == 0 and not r["leaks"],
              f"{f}: a child's counts are not its own one connection: {u}")
    no_temp_files(tmp)
    check(not shim_problems(err), f"the shim complained:\n" + "\n".join(shim_problems(err)[:20]))


def expect_log_fallback(rc, err, d, why, leaked):
    check(rc == 5, f"exit status {rc}, expected the program's own 5\n{err}")
    check(f"cannot write a report in PQLEAK_REPORT_DIR='{d}' ({why}); the report goes to the log instead" in err,
          f"no warning naming the directory and '{why}':\n{err}")
    check(f"SUMMARY: pqleak: {leaked} connection{'s' if leaked != 1 else ''} leaked" in err,
          f"the text report did not go to the log:\n{err}")


def case_report_dir_missing(tmp):
    """A missing report directory is created (mode 0700); one whose parent is missing too cannot be:
    a warning, the text report on stderr (even with text reports off), the exit status kept."""
    d = os.path.join(tmp, "new")
    pid, rc, out, err = run([PROG, "leak", "2", "failed", "5"], {"PQLEAK_REPORT_DIR": d}, timeout=60)
    check(rc == 5, f"exit status {rc}\n{err}")
    check(stat.S_IMODE(os.stat(d).st_mode) == 0o700, f"{d} was not created with mode 0700")
    r = only(d, pid, "exit")
    check(sum(l["count"] for l in r["leaks"]) == 2, "the report does not list the 2 leaks")
    d2 = os.path.join(tmp, "a", "b")
    pid, rc, out, err = run([PROG, "leak", "2", "failed", "5"], {"PQLEAK_REPORT_DIR": d2, "PQLEAK_TEXT_REPORT": "0"},
                            timeout=60)
    expect_log_fallback(rc, err, d2, "No such file or directory", 2)
    check(not os.path.exists(d2), f"{d2} appeared")


def mount_tmpfs(d, options):
    """Mounts a tmpfs on d; Skip when this process may not mount."""
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", d], capture_output=True, text=True)
    if p.returncode != 0:
        raise Skip(f"mount -t tmpfs not permitted here: {p.stderr.strip()}")


def umount(d):
    subprocess.run(["umount", "-l", d], capture_output=True)


def case_report_dir_readonly(tmp):
    """A report directory that cannot be written: owned by the user but mode 0500 (as nobody: root ignores
    permissions), and a read-only tmpfs (as root). Both: warning, report to the log, status kept."""
    ran = []
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        nobody = None
    if os.geteuid() == 0 and nobody and shutil.which("runuser"):
        # The program, the shim and the directory must all be reachable by nobody: copies in a 0755 dir.
        base = os.path.join(tmp, "nobody")
        os.mkdir(base)
        os.chmod(tmp, 0o755)
        os.chmod(base, 0o755)
        prog, shim = os.path.join(base, "stress_prog"), os.path.join(base, "libpqleak.so")
        shutil.copy(PROG, prog)
        shutil.copy(SHIM, shim)
        d = os.path.join(base, "ro")
        os.mkdir(d)
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
        os.chmod(d, 0o500)
        env = environment({})
        env.pop("LD_PRELOAD")
        p = subprocess.run(["runuser", "-u", "nobody", "--", "env", f"LD_PRELOAD={shim}", f"PQLEAK_REPORT_DIR={d}",
                            prog, "leak", "2", "failed", "5"], env=env, capture_output=True, text=True, timeout=60)
        expect_log_fallback(p.returncode, p.stderr, d, "Permission denied", 2)
        check(os.listdir(d) == [], f"{d} is not empty: {os.listdir(d)}")
        ran.append("mode 0500 as nobody")
    d = os.path.join(tmp, "rofs")
    os.mkdir(d)
    try:
        mount_tmpfs(d, "ro,size=64k")
        try:
            pid, rc, out, err = run([PROG, "leak", "2", "failed", "5"], {"PQLEAK_REPORT_DIR": d}, timeout=60)
            expect_log_fallback(rc, err, d, "Read-only file system", 2)
            ran.append("read-only tmpfs")
        finally:
            umount(d)
    except Skip as e:
        print(f"read-only tmpfs skipped: {e}")
    if not ran:
        raise Skip("neither runuser as root nor mounting is possible here")
    print("ran: " + ", ".join(ran))


def case_report_dir_full(tmp):
    """A full file system (a 64 KiB tmpfs) under the report directory: the write fails part-way, the temp
    file is removed, a warning, the report goes to the log, the exit status is kept."""
    d = os.path.join(tmp, "full")
    os.mkdir(d)
    mount_tmpfs(d, "size=64k,mode=0700")
    try:
        # 600 leaked connections: a JSON report of well over 64 KiB.
        pid, rc, out, err = run([PROG, "leak", "600", "failed", "5"], {"PQLEAK_REPORT_DIR": d}, timeout=120)
        expect_log_fallback(rc, err, d, "No space left on device", 600)
        check(os.listdir(d) == [], f"something was left in the full directory: {os.listdir(d)}")
    finally:
        umount(d)


# ---- issue 13: exits and writes in odd places ----

def case_exit_in_signal_handler(tmp):
    """_exit from a signal handler that interrupts malloc/free: the exit report is not made there (it
    would wait for malloc's lock forever, 9 runs in 10 without the fix); one fixed line says so, the
    status is the program's own, PQLEAK_EXITCODE does not apply, no report file is written."""
    d = os.path.join(tmp, "reports")
    os.mkdir(d)
    for i in range(5):
        pid, rc, out, err = run([PROG, "sigexit", "3", "7"],
                                {"PQLEAK_REPORT_DIR": d, "PQLEAK_EXITCODE": "23", "PQLEAK_TEXT_REPORT": "0"},
                                timeout=20)
        check(rc == 7, f"run {i}: exit status {rc}, expected the program's own 7\n{err}")
        check("pqleak: _exit was called in a signal handler: no exit report" in err,
              f"run {i}: no line saying the report was skipped:\n{err}")
    check(os.listdir(d) == [], f"files in {d}: {os.listdir(d)}")
    # A plain _exit still reports (os._exit's case): stress_prog vfork's parent returns from main,
    # so use leak with PQLEAK_EXITCODE to check the ordinary path is intact.
    pid, rc, out, err = run([PROG, "leak", "2", "failed", "5"], {"PQLEAK_REPORT_DIR": d, "PQLEAK_EXITCODE": "23"},
                            timeout=60)
    check(rc == 23, f"an ordinary exit with leaks: status {rc}, expected 23\n{err}")
    only(d, pid, "exit")


def case_vfork_exit(tmp):
    """A vfork child whose exec fails calls _exit(127): it shares the parent's memory and must not report
    or change its status. The child exits 127, the leaking parent 23, one report, the parent's pid."""
    d = os.path.join(tmp, "reports")
    os.mkdir(d)
    pid, rc, out, err = run([PROG, "vfork", "2"],
                            {"PQLEAK_REPORT_DIR": d, "PQLEAK_EXITCODE": "23", "PQLEAK_TEXT_REPORT": "0"}, timeout=60)
    check("child=127" in out, f"the vfork child's status changed: {out!r}\n{err}")
    check(rc == 23, f"the leaking parent exited {rc}, expected 23\n{err}")
    files = report_files(d)
    check(len(files) == 1, f"expected one exit report, found {files}")
    r = only(d, pid, "exit")
    check(r["pid"] == pid, f"the report carries pid {r['pid']}, not the parent's {pid}")
    check(sum(l["count"] for l in r["leaks"]) == 2, "the report does not list the parent's 2 leaks")


def limited_fsize(blocks):
    import resource
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (blocks * 512, blocks * 512))


def case_file_size_limit(tmp):
    """ulimit -f: a report (and a log file) that would pass the file-size limit fails with EFBIG instead
    of killing the host with SIGXFSZ; no temp file is left; the report goes to the log; status kept."""
    d = os.path.join(tmp, "reports")
    os.mkdir(d)
    p = subprocess.run([PROG, "leak", "300", "failed", "5"], env=environment({"PQLEAK_REPORT_DIR": d}),
                       preexec_fn=limited_fsize(8), capture_output=True, text=True, timeout=120)
    check(p.returncode == 5, f"exit status {p.returncode} (153 is SIGXFSZ), expected 5\n{p.stderr[-2000:]}")
    expect_log_fallback(p.returncode, p.stderr, d, "File too large", 300)
    check(os.listdir(d) == [], f"left in the report directory: {os.listdir(d)}")
    log = os.path.join(tmp, "log")
    p = subprocess.run([PROG, "leak", "300", "failed", "5"], env=environment({"PQLEAK_LOG": log}),
                       preexec_fn=limited_fsize(8), capture_output=True, text=True, timeout=120)
    check(p.returncode == 5, f"with PQLEAK_LOG: exit status {p.returncode}, expected 5\n{p.stderr[-2000:]}")
    check(os.path.getsize(log) <= 8 * 512, f"{log} passed the limit")


def case_special_files(tmp):
    """Special files never block or fool the shim or the command: PQLEAK_LOG on a FIFO without a reader
    or a directory (warning, stderr), PQLEAK_SUPPRESSIONS on a FIFO, /dev/zero or a directory (warning,
    no suppressions, the first connect does not block), pqleak report on a FIFO (status 2)."""
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    for log, why in ((fifo, "No such device or address"), (tmp, "Is a directory")):
        pid, rc, out, err = run([PROG, "leak", "1", "failed", "5"], {"PQLEAK_LOG": log}, timeout=20)
        check(rc == 5, f"PQLEAK_LOG={log}: status {rc}\n{err}")
        check(f"PQLEAK_LOG='{log}' cannot be opened ({why}); using stderr" in err, f"PQLEAK_LOG={log}: {err}")
        check("SUMMARY: pqleak: 1 connection leaked" in err, f"PQLEAK_LOG={log}: no report on stderr\n{err}")
    for supp, what in ((fifo, "is a FIFO"), ("/dev/zero", "is a device"), (tmp, "is a directory")):
        pid, rc, out, err = run([PROG, "leak", "1", "failed", "5"], {"PQLEAK_SUPPRESSIONS": supp}, timeout=20)
        check(rc == 5, f"PQLEAK_SUPPRESSIONS={supp}: status {rc}\n{err}")
        check(f"PQLEAK_SUPPRESSIONS: {supp}: cannot read suppressions: {what}" in err
              and "using no suppressions" in err, f"PQLEAK_SUPPRESSIONS={supp}: no warning\n{err}")
    p = subprocess.run([CLI, "report", fifo], capture_output=True, text=True, timeout=20)
    check(p.returncode == 2, f"pqleak report FIFO: status {p.returncode}\n{p.stderr}")
    check("not a regular file" in p.stderr, f"pqleak report FIFO: {p.stderr}")


def cli_run(args, env=None, timeout=120, **kw):
    e = {k: v for k, v in os.environ.items() if not k.startswith("PQLEAK_") and k != "LD_PRELOAD"}
    e["PQLEAK_LIB"] = SHIM
    e.update(env or {})
    return subprocess.run([CLI, "run"] + args, env=e, capture_output=True, text=True, timeout=timeout, **kw)


def case_run_fails_closed(tmp):
    """pqleak run: a process that connected but left no report fails the run (2), never passes it: one
    whose exit report cannot be written for want of descriptors, one that calls _exit in a signal
    handler, one running as another user that cannot write into the run's private directory (root),
    and a full report directory (a tmpfs, root). A symbolic link among the reports is never followed."""
    ran = []
    # nofds without the reporter thread: a descriptor it holds for a moment while starting (its
    # advertisement) may be the one left free when the program has taken every other, and the report
    # then gets written. Which comes first is luck; the exit report's failure is what is tested.
    for args, why, env in (([PROG, "nofds", "2"], "Too many open files", {"PQLEAK_SIGNAL": "none"}),
                           ([PROG, "sigexit", "2", "0"], "called _exit in a signal handler", None)):
        p = cli_run(["--"] + args, env=env)
        check(p.returncode == 2, f"{args}: pqleak run exited {p.returncode}, expected 2\n{p.stderr}")
        check("connected to PostgreSQL but left no report" in p.stderr and why in p.stderr,
              f"{args}: no line naming the process and '{why}'\n{p.stderr}")
        check("no process opened a PostgreSQL connection" not in p.stderr, p.stderr)
        ran.append(args[1])
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        nobody = None
    if os.geteuid() == 0 and nobody and shutil.which("runuser"):
        base = os.path.join(tmp, "nobody")
        os.mkdir(base)
        os.chmod(tmp, 0o755)
        os.chmod(base, 0o755)
        prog = os.path.join(base, "stress_prog")
        shutil.copy(PROG, prog)
        shim = os.path.join(base, "libpqleak.so")
        shutil.copy(SHIM, shim)
        p = cli_run(["--", "runuser", "-u", "nobody", "--", prog, "leak", "2", "failed", "0"],
                    env={"PQLEAK_LIB": shim})
        check(p.returncode == 2, f"as nobody: pqleak run exited {p.returncode}, expected 2\n{p.stderr}")
        check("left no report" in p.stderr and "Permission denied" in p.stderr, f"as nobody:\n{p.stderr}")
        ran.append("runuser nobody")
        d = os.path.join(tmp, "full")
        os.mkdir(d)
        try:
            mount_tmpfs(d, "size=64k,mode=0700")
            try:
                p = cli_run(["--report-dir", d, "--", PROG, "leak", "600", "failed", "0"])
                check(p.returncode == 2, f"full --report-dir: pqleak run exited {p.returncode}\n{p.stderr}")
                check("left no report" in p.stderr and "No space left on device" in p.stderr, p.stderr)
                ran.append("full report directory")
            finally:
                umount(d)
        except Skip as e:
            print(f"full report directory skipped: {e}")
    # A report directory with a planted link: pqleak report refuses it.
    d = os.path.join(tmp, "planted")
    os.mkdir(d)
    p = cli_run(["--report-dir", d, "--", PROG, "leak", "1", "failed", "0"])
    check(p.returncode == 23, f"--report-dir {d}: {p.returncode}\n{p.stderr}")
    real = report_files(d)[0]
    os.rename(real, os.path.join(tmp, "elsewhere.json"))
    os.symlink(os.path.join(tmp, "elsewhere.json"), real)
    p = subprocess.run([CLI, "report", d], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2 and "a symbolic link in a report directory, not followed" in p.stderr,
          f"a planted link: pqleak report exited {p.returncode}\n{p.stderr}")
    print("ran: " + ", ".join(ran))


def case_run_late_orphan(tmp):
    """A process still running when pqleak run gives up on it (5 s) must not re-create the run's
    private report directory after the run removed it."""
    t = os.path.join(tmp, "tmpdir")
    os.mkdir(t)
    p = cli_run(["--", "sh", "-c", f"{PROG} sleepleak 1 8000 >/dev/null 2>&1 &"], env={"TMPDIR": t})
    check(p.returncode == 0, f"pqleak run exited {p.returncode}\n{p.stderr}")
    check("still running" in p.stderr, f"the orphan was not waited for:\n{p.stderr}")
    deadline = time.time() + 30
    while time.time() < deadline and subprocess.run(["pgrep", "-f", f"{PROG} sleepleak"],
                                                    capture_output=True).returncode == 0:
        time.sleep(0.2)
    time.sleep(0.5)
    # The per-user live-report directory (pqleak-UID, where the reporter advertises itself) may stay;
    # the run's private report directory (pqleak-run.*) must not come back.
    left = [f for f in os.listdir(t) if f != f"pqleak-{os.getuid()}"]
    check(left == [], f"left in TMPDIR after the orphan exited: {left}")


def state_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_until(what, cond, timeout=60):
    end = time.monotonic() + timeout
    while not cond():
        check(time.monotonic() < end, f"timed out waiting for {what}")
        time.sleep(0.02)


def serve(d, stop_at):
    """stress_prog serve with 3000 leaked connections and the kill point armed at the stop_at-th report."""
    p = subprocess.Popen([PROG, "serve", "3000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=environment({"LD_PRELOAD": f"{SHIM} {KILLPOINT}", "KILLPOINT_AT": str(stop_at),
                                                     "PQLEAK_REPORT_DIR": d,
                                                     # a live report's text (3000 lines) would fill the unread pipe
                                                     "PQLEAK_LOG": os.path.join(os.path.dirname(d), "log-%p")}))
    line = p.stdout.readline()
    check(line.strip() == "ready", f"the program did not start: {line!r} {p.stderr.read() if p.poll() is not None else ''}")
    return p


def kill_when_stopped(p, d):
    """Waits for the kill point to stop p in the middle of a report, checks the half-written temp file,
    kills p with SIGKILL; returns the temp file's path."""
    wait_until("the writer to stop in the middle of a report", lambda: state_of(p.pid) == "T")
    temps = glob.glob(os.path.join(d, f".pqleak-{p.pid}-*.tmp"))
    check(len(temps) == 1, f"expected one dot-prefixed temp file while the report is written, found {os.listdir(d)}")
    with open(temps[0]) as f:
        text = f.read()
    check(text, "the temp file is empty: the kill point did not write half")
    try:
        json.loads(text)
        raise AssertionError("the half-written temp file is valid JSON: the kill point stopped nothing")
    except ValueError:
        pass
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    for f in (p.stdin, p.stdout, p.stderr):
        if f and not f.closed:
            f.close()
    check(p.returncode == -signal.SIGKILL, f"status {p.returncode}, not killed")
    return temps[0]


def cli_report(d):
    p = subprocess.run([CLI, "report", d], capture_output=True, text=True, timeout=60)
    check(".tmp" not in p.stderr, f"pqleak report read the temp file:\n{p.stderr}")
    return p


def case_kill_mid_report(tmp):
    """SIGKILL in the middle of writing a report: the previous report stays whole and valid, only a
    dot-prefixed temp file is left, which the command does not read. Once for a live (signal) report
    following another, once for the exit report next to an earlier process's."""
    d = os.path.join(tmp, "live")
    os.mkdir(d, 0o700)
    p = serve(d, 2)
    p.send_signal(signal.SIGUSR1)
    wait_until("the first signal report", lambda: report_files(d, p.pid, "signal"))
    first = report_files(d, p.pid, "signal")[0]
    check(len(load(first)["connections"]) == 3000, "the first signal report does not list the 3000 connections")
    p.send_signal(signal.SIGUSR1)
    kill_when_stopped(p, d)
    check(report_files(d) == [first], f"report files after the kill: {report_files(d)}, expected only {first}")
    load(first)
    c = cli_report(d)
    check(c.returncode == 0, f"pqleak report on the directory: status {c.returncode}\n{c.stderr}")

    d = os.path.join(tmp, "exit")
    os.mkdir(d, 0o700)
    pid, rc, out, err = run([PROG, "leak", "1", "failed", "0"], {"PQLEAK_REPORT_DIR": d}, timeout=60)
    earlier = report_files(d, pid, "exit")
    check(rc == 0 and len(earlier) == 1, f"no earlier report: {rc} {os.listdir(d)}\n{err}")
    p = serve(d, 1)
    p.stdin.close()  # the program returns from main: the exit report begins
    kill_when_stopped(p, d)
    check(report_files(d) == earlier, f"report files after the kill: {report_files(d)}, expected only {earlier}")
    load(earlier[0])
    c = cli_report(d)
    check(c.returncode == 23, f"pqleak report: status {c.returncode}, expected 23 for the earlier report's leak\n"
          f"{c.stdout}{c.stderr}")


def case_exit_mid_live_report(tmp):
    """A live report asked for after the exit report, while the process ends (the kill point's destructor
    runs after the shim's, sends SIGUSR1 and lets the process end once the live report's write is held):
    no temp file is left, and the exit report is whole."""
    d = os.path.join(tmp, "reports")
    os.mkdir(d, 0o700)
    p = subprocess.Popen([PROG, "serve", "20"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=environment({"LD_PRELOAD": f"{SHIM} {KILLPOINT}", "KILLPOINT_AT": "2",
                                          "KILLPOINT_HOLD_MS": "2000", "KILLPOINT_EXIT_SIGNAL": "1",
                                          "PQLEAK_REPORT_DIR": d, "PQLEAK_LOG": os.path.join(tmp, "log")}))
    check(p.stdout.readline().strip() == "ready", "the program did not start")
    p.stdin.close()  # the program returns from main: the exit report, then the kill point's destructor
    err = p.stderr.read()
    p.wait(timeout=120)
    p.stdout.close()
    p.stderr.close()
    check(p.returncode == 0, f"exit status {p.returncode}\n{err[-2000:]}")
    no_temp_files(d)
    only(d, p.pid, "exit")


def main():
    if len(sys.argv) != 2 or f"case_{sys.argv[1]}" not in globals():
        print(f"usage: stress.py CASE (one of {[n[5:] for n in globals() if n.startswith('case_')]})", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix=f"pqleak-stress-{sys.argv[1]}-")
    t0 = time.monotonic()
    try:
        globals()[f"case_{sys.argv[1]}"](tmp)
    except Skip as e:
        print(f"SKIP: {e}")
        return SKIP
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"PASS ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
