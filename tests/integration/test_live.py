"""Integration tests of live diagnosis: reports on a signal, transaction stacks, suspects, metrics,
misuse warnings. Each function is one ctest test: python3 test_live.py NAME."""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (PROG, Background, check, eq, environment, frames, main, read_reports, run, validate_schema,
                     wait_for)


def signal_reports(bg, n=1):
    return wait_for(lambda: (lambda r: r if len(r) >= n else None)(
        read_reports(bg.report_dir, "pqleak-*-signal-*.json")), "a signal report")


def signal_report():
    bg = Background(lambda stop: [PROG, "serve", stop])
    bg.proc.send_signal(signal.SIGUSR1)
    rep = signal_reports(bg)[0]
    validate_schema(rep)
    eq(rep["trigger"], "signal", "trigger")
    eq(rep["pid"], bg.proc.pid, "pid")
    check("leaks" not in rep, "a live report has no leaks")
    conns = rep["connections"]
    eq(len(conns), 2, "open connections")
    eq(sorted(c["tx_status"] for c in conns), ["idle", "intrans"], "transaction status")
    busy = next(c for c in conns if c["tx_status"] == "intrans")
    idle = next(c for c in conns if c["tx_status"] == "idle")
    check(busy["tx_stack"] and idle["tx_stack"] is None, f"tx_stack: {busy['tx_stack']}, {idle['tx_stack']}")
    names = [f["function"] for f in frames(rep, busy["tx_stack"])]
    # Innermost first: the program's own call that began it (exec_ok's PQexec of "begin"), no frame of
    # the shim's and none missing.
    eq(names[:3], ["exec_ok", "forget_commit", "mode_serve"], "transaction began in exec_ok")
    opened = [f["function"] for f in frames(rep, busy["stack"])]
    eq(opened[:2], ["connect_ok", "mode_serve"], "opened in connect_ok")
    check(all(isinstance(c["server_pid"], int) and c["age_s"] >= 0 and c["idle_s"] >= 0 for c in conns), conns)
    eq(rep["utilization"]["open"], 2, "open")
    # A second request replaces the first report: one signal report per process.
    time.sleep(0.05)
    bg.proc.send_signal(signal.SIGUSR1)
    def replaced():
        try:
            reps = read_reports(bg.report_dir, "*-signal-*")
        except FileNotFoundError:  # the old report, removed after the new one is written, between the
            return False           # listing and the reading
        return len(reps) == 1 and reps[0]["time"] != rep["time"]

    wait_for(replaced, "a newer signal report")
    rc, _, err = bg.stop()
    eq(rc, 0, f"exit status:\n{err}")
    check("live report (signal): 2 connections open" in err, f"text live report in the log:\n{err}")
    check("its transaction began" in err and "forget_commit" in err, err)


def track_queries_off():
    # PQLEAK_TRACK_QUERIES=0, the program of signal_report: connects and closes only. Where each
    # connection was opened is known, its transaction and last use are not: unknown, none, since the
    # connect.
    bg = Background(lambda stop: [PROG, "serve", stop], env={"PQLEAK_TRACK_QUERIES": "0"})
    bg.proc.send_signal(signal.SIGUSR1)
    rep = signal_reports(bg)[0]
    validate_schema(rep)
    eq(rep["settings"]["track_queries"], False, "the setting in the report")
    conns = rep["connections"]
    eq(len(conns), 2, "open connections")
    eq([(c["tx_status"], c["tx_stack"]) for c in conns], [("unknown", None)] * 2, "transaction status and stack")
    for c in conns:
        eq([f["function"] for f in frames(rep, c["stack"])][:2], ["connect_ok", "mode_serve"], "opened in")
        check(abs(c["idle_s"] - c["age_s"]) < 0.002, f"idle since the connect: {c}")
    rc, _, err = bg.stop()
    eq(rc, 0, f"exit status:\n{err}")
    check("its transaction began" not in err, err)
    # Two threads on one connection: nothing follows the calls, nothing is found.
    r = run([PROG, "misuse-threads"], env={"PQLEAK_TRACK_QUERIES": "0"})
    check("must not be used by two threads" not in r.err, r.err)
    eq(r.only_report()["utilization"]["opened_total"], 1, "the connection is tracked")
    # The suspect that needs the commands is turned off, with one warning naming both variables.
    r = run([PROG, "idle-tx"], env={"PQLEAK_TRACK_QUERIES": "0", "PQLEAK_SUSPECT_IDLE_TX": "1"})
    eq(r.rc, 0, r.err)
    check("PQLEAK_SUSPECT_IDLE_TX=1 needs the commands followed, which PQLEAK_TRACK_QUERIES=0 turns off; "
          "using 0" in r.err, r.err)
    check("SUSPECT:" not in r.err and r.reports and all(rep["trigger"] == "exit" for rep in r.reports),
          f"no suspect:\n{r.err}")


def tasks(pid):
    """The threads of pid: {tid: (state letter, status fields)}."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
        out[int(tid)] = (stat[stat.rindex(")") + 2], {k: v.strip() for k, v in fields.items()})
    return out


def signal_requests_written(pid, sig=signal.SIGUSR1):
    """True when every sig sent to pid so far has run its handler to the end (so the handler's byte is in
    the reporter's pipe): seen with the process stopped, no sig pending, and no thread but the reporter
    (which blocks every signal) with sig blocked, which a thread has while in the handler."""
    bit = 1 << (sig - 1)
    os.kill(pid, signal.SIGSTOP)
    try:
        ts = wait_for(lambda: (lambda ts: ts if all(st in "Tt" for st, _ in ts.values()) else None)(tasks(pid)),
                      "the process to stop")
        busy = 0
        for _, f in ts.values():
            busy |= int(f["ShdPnd"], 16) | int(f["SigPnd"], 16)
            if not f["Name"].startswith("pqleak"):
                busy |= int(f["SigBlk"], 16)
        return not busy & bit
    finally:
        os.kill(pid, signal.SIGCONT)


def reporter_sleeping(pid):
    """True when pid's reporter thread sleeps on its semaphore with no request pending for it: it answered
    every request (the handler's post makes it runnable at once)."""
    for tid, (_, f) in tasks(pid).items():
        if f["Name"] == "pqleak-sig":
            try:
                try:
                    with open(f"/proc/{pid}/task/{tid}/syscall") as fh:  # "running" unless it sleeps
                        call = fh.read().split()
                    asleep = bool(call) and call[0] == "202"  # futex (x86-64): sem_clockwait
                except PermissionError:  # ptrace restricted: where it sleeps, "0" unless it sleeps
                    with open(f"/proc/{pid}/task/{tid}/wchan") as fh:
                        asleep = "futex" in fh.read()
                return asleep and not int(f["SigPnd"], 16) & (1 << (signal.SIGUSR1 - 1))
            except FileNotFoundError:
                return False
    check(False, f"no pqleak-sig thread in {pid}")


def signal_burst():
    bg = Background(lambda stop: [PROG, "storm", stop])
    pid = bg.proc.pid
    for _ in range(1000):
        os.kill(pid, signal.SIGUSR1)
    # The storm goes on while the reporter answers. Wait (without guessing a time) until it has answered
    # every request of the burst: each handler has written its byte, then the reporter sleeps again.
    wait_for(lambda: signal_requests_written(pid), "the burst's signals to be handled")
    wait_for(lambda: reporter_sleeping(pid), "the reporter to answer every request")
    # However many reports the burst gave, each replaced the one before: one signal report remains.
    live = glob.glob(os.path.join(bg.report_dir, f"pqleak-{pid}-signal-*.json"))
    eq(len(live), 1, f"signal reports of the running process: {os.listdir(bg.report_dir)}")
    eq(sorted(os.listdir(bg.report_dir)), [os.path.basename(live[0])], "files in the report dir while running")
    rc, _, err = bg.stop()
    eq(rc, 0, f"the program survives 1000 signals during a connect storm:\n{err[-2000:]}")
    # No request came after: the exit cannot race a live report.
    files = sorted(os.listdir(bg.report_dir))
    reports = read_reports(bg.report_dir)  # every file valid JSON with the schema
    eq([r["trigger"] for r in reports], ["exit", "signal"], f"reports left: {files}")
    eq(files[1], os.path.basename(live[0]), "the signal report is still the one seen while running")
    exit_rep = reports[0]
    u = exit_rep["utilization"]
    check(u["opened_total"] > 0 and u["opened_total"] == u["closed_total"], f"counts exact: {u}")
    eq(exit_rep["leaks"], [], "leaks")
    check(err.count("live report (signal)") >= 1, f"text live report in the log:\n{err[-2000:]}")


def suspect_idle_tx():
    r = run([PROG, "idle-tx"], env={"PQLEAK_SUSPECT_IDLE_TX": "1"})
    eq(r.rc, 0, r.err)
    warnings = [l for l in r.err.splitlines() if "SUSPECT" in l]
    eq(len(warnings), 1, f"one warning per suspect:\n{r.err}")
    check("idle in a transaction" in warnings[0], warnings[0])
    check("its transaction began at:" in r.err and "forget_commit" in r.err, r.err)
    check(any("reported as a suspect, returned after" in l for l in r.err.splitlines()), f"returned line:\n{r.err}")
    sus = [x for x in r.reports if x["trigger"] == "suspect"]
    eq(len(sus), 1, "suspect reports")
    c = sus[0]["connections"][0]
    eq((c["suspect"], c["tx_status"]), ("idle_tx", "intrans"), "suspect kind and status")
    names = [f["function"] for f in frames(sus[0], c["tx_stack"])]
    check("forget_commit" in names, names)


def suspect_age():
    r = run([PROG, "idle-tx"], env={"PQLEAK_SUSPECT_AGE": "1"})
    warnings = [l for l in r.err.splitlines() if "SUSPECT" in l]
    eq(len(warnings), 1, f"one warning:\n{r.err}")
    check("has been open" in warnings[0] and "PQLEAK_SUSPECT_AGE=1" in warnings[0], warnings[0])


# Every metric family the shim writes (src/output/metrics.c), with its type.
METRICS = {
    "pqleak_connections_open": "gauge",
    "pqleak_connections_peak": "gauge",
    "pqleak_connections_cap": "gauge",
    "pqleak_connections_in_state": "gauge",
    "pqleak_connections_opened_total": "counter",
    "pqleak_connections_closed_total": "counter",
    "pqleak_connections_failed_total": "counter",
    "pqleak_checkout_waiting": "gauge",
    "pqleak_checkout_waits_total": "counter",
    "pqleak_checkout_wait_seconds_total": "counter",
    "pqleak_checkout_wait_duration_seconds": "histogram",
    "pqleak_checkout_timeouts_total": "counter",
    "pqleak_checkout_refused_total": "counter",
    "pqleak_suspects_open": "gauge",
    "pqleak_suspects_total": "counter",
}
STATES = ["idle", "active", "idle in transaction", "idle in transaction (aborted)"]
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"]


def read_metrics(path, pid, service="it_prog"):
    """The metrics file as {sample: value} (a sample with a label beyond service, program and pid is
    keyed 'name{label="value"}'), checked line by line: a HELP and a TYPE line per family, then its
    samples labelled with the service, program and pid; and parsed by prometheus_client too (which
    strips _total from counter family names: samples keep it)."""
    from prometheus_client.parser import text_string_to_metric_families
    text = open(path).read()
    values = {}
    eq(dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)), METRICS, "metric families written and their types")
    samples = {"gauge": lambda n: [n], "counter": lambda n: [n],
               "histogram": lambda n: [f'{n}_bucket{{le="{b}"}}' for b in BUCKETS] + [f"{n}_sum", f"{n}_count"]}
    expected = []
    for name, type_ in METRICS.items():
        expected += [f"# HELP {name}", f"# TYPE {name} {type_}"]
        expected += ([f'{name}{{state="{s}"}}' for s in STATES] if name == "pqleak_connections_in_state"
                     else samples[type_](name))
    got = []
    for line in text.splitlines():
        if line.startswith("# "):
            got.append(" ".join(line.split(" ")[:4 if line.startswith("# TYPE") else 3]))
            continue
        m = re.fullmatch(r'(\w+)\{service="((?:[^"\\]|\\.)*)",program="([^"]*)",pid="(\d+)"(,\w+="[^"]*")?\} (\S+)', line)
        check(m, f"sample line: {line!r}")
        eq(m.group(2), service, f"service label: {line!r}")
        check(m.group(3).endswith("/it_prog") and int(m.group(4)) == pid, f"labels: {line!r}")
        key = m.group(1) + (f"{{{m.group(5)[1:]}}}" if m.group(5) else "")
        check(key not in values, f"{key} twice")
        values[key] = float(m.group(6))
        got.append(key)
    eq(got, expected, "lines of the file, in order")
    families = [f.name for f in text_string_to_metric_families(text)]
    eq(len(families), len(set(families)), f"family names prometheus_client reads are distinct: {families}")
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            extra = {k: v for k, v in s.labels.items() if k not in ("service", "program", "pid")}
            key = s.name + "".join(f'{{{k}="{v}"}}' for k, v in extra.items())
            eq(s.value, values[key], f"{key} as prometheus_client reads it")
            eq(s.labels["pid"], str(pid), f"pid label of {key}")
    return values


def wait_histogram(v, waits):
    """Takes the wait-time histogram out of v: waits ended waits, each of 0.2 s to 0.5 s."""
    name = "pqleak_checkout_wait_duration_seconds"
    buckets = [v.pop(f'{name}_bucket{{le="{b}"}}') for b in BUCKETS]
    eq(buckets, [0] * 5 + [waits] * 8, "cumulative buckets of the waits")
    eq(v.pop(f"{name}_count"), waits, "histogram count")
    eq(v.pop(f"{name}_sum"), v["pqleak_checkout_wait_seconds_total"], "histogram sum: the seconds waited")


def metrics():
    # Cap 2, both slots held; the checkout of a third connection waits 0.2 s and is refused; three
    # connects fail; a connection idle in a transaction becomes a suspect after 1 s.
    env = {"PQLEAK_MAX_CONNS": "2", "PQLEAK_CHECKOUT_TIMEOUT": "0.2", "PQLEAK_SUSPECT_IDLE_TX": "1",
           "PQLEAK_SIGNAL": "none"}
    states = {f'pqleak_connections_in_state{{state="{s}"}}': n for s, n in zip(STATES, [1, 0, 1, 0])}
    running = {"pqleak_connections_open": 2, "pqleak_connections_peak": 2, "pqleak_connections_cap": 2,
               "pqleak_connections_opened_total": 5, "pqleak_connections_closed_total": 3,
               "pqleak_connections_failed_total": 3, "pqleak_checkout_waiting": 0, "pqleak_checkout_waits_total": 1,
               "pqleak_checkout_timeouts_total": 1, "pqleak_checkout_refused_total": 1, "pqleak_suspects_open": 1,
               "pqleak_suspects_total": 1, **states}
    # While it runs: the file is rewritten every 0.2 s; the suspect comes last, so a file that shows it
    # shows every other value final too. %p in the path becomes the pid.
    first_dir = tempfile_dir()
    path = os.path.join(first_dir, "pqleak-%p.prom")
    bg = Background(lambda stop: [PROG, "metrics", stop],
                    env=dict(env, PQLEAK_METRICS=path, PQLEAK_METRICS_INTERVAL="0.2"))
    path = path.replace("%p", str(bg.proc.pid))
    wait_for(lambda: os.path.exists(path), "the metrics file")
    v = wait_for(lambda: (lambda v: v if v["pqleak_suspects_total"] == 1 else None)(read_metrics(path, bg.proc.pid)),
                 "the suspect in the metrics")
    wait_histogram(v, 1)
    wait_s = v.pop("pqleak_checkout_wait_seconds_total")
    check(0.2 <= wait_s < 30, f"seconds waited at the cap: {wait_s}")
    eq(v, running, "metrics while running")
    rc, _, err = bg.stop()
    eq(rc, 0, err)
    # At a normal exit the file goes (a textfile collector would serve a dead process's numbers on), and
    # no temp file is left; PQLEAK_SERVICE names the service.
    eq(os.listdir(first_dir), [], "files left after exit")
    path = os.path.join(first_dir, "pqleak.prom")
    bg = Background(lambda stop: [PROG, "metrics", stop],
                    env=dict(env, PQLEAK_METRICS=path, PQLEAK_METRICS_INTERVAL="0.2", PQLEAK_SERVICE='checkout "api"'))
    wait_for(lambda: os.path.exists(path), "the metrics file")
    read_metrics(path, bg.proc.pid, service='checkout \\"api\\"')
    rc, _, err = bg.stop()
    eq(rc, 0, err)
    eq(os.listdir(first_dir), [], "files left after exit")
    shutil.rmtree(first_dir)


def tempfile_dir():
    import tempfile
    return tempfile.mkdtemp(prefix="pqleak-metrics-")


def fork_warnings(err):
    """The fork-misuse warnings in err: (warning pid, opener pid, child pid, used-at functions,
    opened-at functions) each."""
    found = []
    head = re.compile(r"^==(\d+)==pqleak: WARNING: connection #\d+, opened by process (\d+), is used by its "
                      r"forked child (\d+): a libpq connection cannot be shared across fork")
    lines = err.splitlines()
    for i, line in enumerate(lines):
        m = head.match(line)
        if not m:
            continue
        sections, cur = {}, None
        for l in lines[i + 1:]:
            if l in ("  used at:", "  opened at:"):
                cur = sections.setdefault(l.strip(" :"), [])
            elif cur is not None and re.match(r"^    #\d+ ", l):
                fn = re.match(r"^    #\d+ 0x[0-9a-f]+ in (\S+)", l)
                cur.append(fn.group(1) if fn else "?")
            elif cur is not None and re.match(r"^    \.\.\. \d+ frames in ", l):
                continue  # a folded run of library frames
            else:
                break
        found.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), sections.get("used at", []),
                      sections.get("opened at", [])))
    return found


def check_fork_warning(r, used_in, mode_fn):
    eq(r.rc, 0, f"exit status:\n{r.err}")
    lines = [l for l in r.err.splitlines() if "cannot be shared across fork" in l]
    eq(len(lines), 1, f"one warning:\n{r.err}")
    (pid, opener, child, used, opened), = fork_warnings(r.err)
    parent = next(rep["pid"] for rep in r.reports if rep["utilization"]["opened_total"] == 1)
    eq((opener, child, pid), (parent, pid, pid), "opener (the parent), child and warning process")
    check(pid != parent, f"the warning comes from the child, not the parent {parent}")
    check(used and used[0] == used_in and mode_fn in used, f"used at: the child's {used_in}: {used}")
    check("connect_ok" not in used, f"used at is not the opening stack: {used}")
    check(opened and opened[0] == "connect_ok" and mode_fn in opened and used_in not in opened,
          f"opened at: the parent's connect_ok in {mode_fn}: {opened}")


def misuse_fork():
    # The child only queries the parent's connection: the query path warns.
    r = run([PROG, "misuse-fork"])
    check_fork_warning(r, "query_in_child", "mode_misuse_fork")


def misuse_fork_close():
    # The child only closes the parent's connection (PQfinish ends the parent's session): the close path
    # warns, once.
    r = run([PROG, "misuse-fork-close"])
    check_fork_warning(r, "close_in_child", "mode_misuse_fork_close")


def misuse_fork_notice():
    # The child is forked inside a query call (a notice processor) and queries after it: still warned.
    r = run([PROG, "misuse-fork-notice"])
    check_fork_warning(r, "query_in_child", "mode_misuse_fork_notice")


def misuse_threads():
    r = run([PROG, "misuse-threads"])
    lines = [l for l in r.err.splitlines() if "must not be used by two threads at once" in l]
    eq(len(lines), 1, f"one warning:\n{r.err}")
    check("used at:" in r.err and "mode_misuse_threads" in r.err, r.err)


def no_handler_over_the_programs():
    # python installs no SIGUSR2 handler by default, but this script does: pqleak must keep its hands off.
    script = ("import signal, psycopg2, os\n"
              "got = []\n"
              "signal.signal(signal.SIGUSR2, lambda *a: got.append(1))\n"
              "c = psycopg2.connect('')\n"
              "os.kill(os.getpid(), signal.SIGUSR2)\n"
              "c.close()\n"
              "print('handled', len(got))\n")
    r = run([os.environ.get("PYTHON", "python3"), "-c", script], env={"PQLEAK_SIGNAL": "USR2"})
    eq(r.out, "handled 1\n", f"the program's own handler runs:\n{r.err}")
    check("PQLEAK_SIGNAL=USR2: the program handles SIGUSR2 itself" in r.err, r.err)
    # The way out it suggests is the other signal, not the one the program took.
    check("(choose PQLEAK_SIGNAL=USR1, or none)" in r.err, r.err)


# ---- pqleak status probes: only the shim's thread sees them ----

def status(pid, *args):
    """pqleak status PID: (status, stdout, stderr)."""
    p = subprocess.run([os.environ["PQLEAK_CLI"], "status", *args, str(pid)], capture_output=True, text=True,
                       timeout=60, env=environment(preload=False))
    return p.returncode, p.stdout, p.stderr


def probed(mode, probes=6, env=None, args=(), tmp=None):
    """Runs `it_prog MODE STOP` with its own TMPDIR (so its own private report directory), asks it for
    probes live reports with pqleak status (each must answer OK), stops it; returns (bg, status, out, err)."""
    tmp = tmp or tempfile.mkdtemp(prefix="pqleak-tmp-")
    bg = Background(lambda stop: [PROG, mode, stop, *args], env={"TMPDIR": tmp, **(env or {})}, report_dir=False)
    bg.tmp = tmp
    for i in range(probes):
        rc, out, err = status(bg.proc.pid)
        eq(rc, 0, f"probe {i}: pqleak status answered\n{out}{err}")
        check(out.startswith("PQLEAK OK - "), out)
        time.sleep(0.1)
    return bg


def status_waits_whole():
    # select, poll, nanosleep and sleep in the program run their full time while status probes it (a
    # process-directed signal would interrupt one of them: SA_RESTART does not restart these).
    bg = probed("waits", probes=8)
    rc, _, err = bg.stop()
    check("cut short" not in err and "early" not in err, f"the program's waits:\n{err}")
    eq(rc, 0, f"exit status:\n{err}")
    # A probe writes JSON only: the service's log gets nothing.
    check("live report (signal)" not in err, f"status probes wrote text reports to the log:\n{err[-2000:]}")


def status_after_closing_fds():
    # The program closes every fd >= 3 after connecting and makes pipes that take the lowest numbers:
    # pqleak must neither read from nor write into them, probed by status or by the user's kill.
    bg = probed("close-fds", probes=4)
    d = os.path.join(bg.tmp, f"pqleak-{os.getuid()}")
    before = sorted(glob.glob(os.path.join(d, f"pqleak-{bg.proc.pid}-signal-*.json")))
    eq(len(before), 1, f"one signal report of the process: {os.listdir(d)}")
    os.kill(bg.proc.pid, signal.SIGUSR1)  # a user's kill: a process signal, text to the log as well
    wait_for(lambda: (lambda n: n and n != before)(sorted(glob.glob(os.path.join(d, "pqleak-*-signal-*.json")))),
             "a report for the user's kill")
    rc, _, err = bg.stop()
    eq(rc, 0, f"the program's pipes after closing its fds:\n{err}")
    eq(err.count("live report (signal)"), 1, f"one text report, the user's kill's:\n{err[-3000:]}")


def added_fds(out, label):
    """The fds `it_prog fds` listed after label: [(fd, target, cloexec)]."""
    line = next(l for l in out.splitlines() if l.startswith(label + ":"))
    fds = [(x.split(":", 1)[0], x.split(":", 1)[1].rsplit(":", 1)) for x in line.split()[1:]]
    return [(int(f), t, c == "cloexec") for f, (t, c) in fds]


def status_fds():
    # Under RLIMIT_NOFILE=16, the reporter thread holds no fd of the host's: the first connection adds as
    # many fds with live reports (PQLEAK_SIGNAL) as without (no reporter thread at all), and every fd
    # pqleak opens is close-on-exec.
    bg = probed("fds", probes=3, args=("16",))
    rc, out, err = bg.stop()
    eq(rc, 0, err)
    bare = run([PROG, "fds", "/", "16"], env={"PQLEAK_SIGNAL": "none"})
    eq(bare.rc, 0, bare.err)
    live, base = added_fds(out, "connected"), added_fds(bare.out, "connected")
    eq(len(live), len(base), f"fds added by the first connection with a reporter thread {live} and without {base}")
    check(all(c for _, _, c in live), f"fds that a child would inherit: {live}")
    # Live reports keep only the symbolizer's ELF files (src/output/symbolize.c: libdw's session), no
    # pipe or socket, and none of them passes to a program the host executes.
    after = added_fds(out, "after")
    check(after and all(t.startswith("/") for _, t, _ in after), f"fds added by live reports: {after}")
    check(all(c for _, _, c in after), f"ELF fds of the symbolizer that a child would inherit: {after}")


def status_verifies():
    # A thread named pqleak-sig is not proof: without pqleak's advertisement, no signal is sent.
    bg = Background(lambda stop: [PROG, "fake-reporter", stop], env={"TMPDIR": tempfile.mkdtemp()})
    rc, out, err = status(bg.proc.pid)
    eq(rc, 3, out + err)
    check("does not run pqleak's signal handler (it has a thread named pqleak-sig, but no advertisement" in out,
          out)
    rc, _, err = bg.stop()
    eq(rc, 0, f"the program got no SIGUSR1:\n{err}")
    # The program set PQLEAK_SIGNAL=USR2 with setenv before connecting: its /proc environ still says
    # nothing, but the shim answers USR2, and a SIGUSR1 would kill it.
    # A killed process's advertisement (its pid gone) is removed by the next reporter that starts.
    tmp = tempfile.mkdtemp(prefix="pqleak-tmp-")
    d = os.path.join(tmp, f"pqleak-{os.getuid()}")
    os.mkdir(d, 0o700)
    stale = os.path.join(d, "pqleak-4194304.reporter")  # above any pid_max
    with open(stale, "w") as f:
        f.write("pqleak-reporter pid=4194304 tid=4194305 signal=10 start=1 token=0000000000000001\n")
    bg = probed("setenv-usr2", probes=2, tmp=tmp)
    check(not os.path.exists(stale), "the stale advertisement was removed")
    # The advertisement must name this very process: one with another start time (an earlier process
    # with the same pid) is refused, and nothing is sent.
    mine = os.path.join(d, f"pqleak-{bg.proc.pid}.reporter")
    with open(mine) as f:
        good = f.read()
    with open(mine + ".x", "w") as f:
        f.write(re.sub(r"start=\d+", "start=1", good))
    os.rename(mine + ".x", mine)
    rc, out, _ = status(bg.proc.pid)
    eq(rc, 3, out)
    check("was left by an earlier process with the same pid" in out, out)
    with open(mine + ".x", "w") as f:
        f.write(good)
    os.rename(mine + ".x", mine)
    eq(status(bg.proc.pid)[0], 0, "asked again with its own advertisement")
    rc, _, err = bg.stop()
    eq(rc, 0, f"probed with the shim's signal, USR2:\n{err}")
    check(not os.path.exists(mine), "the advertisement is removed at exit")
    # pqleak run's own process runs no shim: status says so without claiming it handles a signal.
    run_ = subprocess.Popen([os.environ["PQLEAK_CLI"], "run", "--", "sleep", "30"], env=environment(preload=False),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rc, out, _ = status(run_.pid)
        eq(rc, 3, out)
        check("(no pqleak reporter in it: it does not run the shim, or has not opened a connection yet)" in out
              and "handles" not in out, out)
    finally:
        run_.kill()
        run_.wait()


def status_signalfd():
    # A program that reads SIGUSR1 from a signalfd (blocked everywhere) gets every kill -USR1: pqleak's
    # reporter never takes a signal sent to the process. pqleak status still gets its report.
    bg = probed("signalfd", probes=2)
    os.kill(bg.proc.pid, signal.SIGUSR1)
    time.sleep(0.8)  # the reporter wakes every quarter second: it has looked at least twice
    rc, out, err = bg.stop()
    eq(rc, 0, err)
    eq(out.strip().splitlines()[-1], "got 1", f"the program's signalfd read the SIGUSR1:\n{err[-2000:]}")


def suspect_once():
    # The second suspect's scan must not log the first again: one SUSPECT warning per connection.
    r = run([PROG, "two-suspects"], env={"PQLEAK_SUSPECT_IDLE_TX": "1"})
    eq(r.rc, 0, r.err)
    ids = re.findall(r"SUSPECT: connection #(\d+) ", r.err)
    eq(sorted(ids), sorted(set(ids)), f"each suspect logged once:\n{r.err}")
    eq(len(ids), 2, f"two suspects:\n{r.err}")


def warning_escaped():
    # A setting's value with a newline cannot forge a log line: control bytes are written as \xNN.
    r = run([PROG, "open-close", "1"], env={"PQLEAK_SIGNAL": "USR3\n==1==pqleak: ERROR: forged"})
    eq(r.rc, 0, r.err)
    check("PQLEAK_SIGNAL='USR3\\x0a==1==pqleak: ERROR: forged' is not" in r.err, r.err)
    check(not any(l.startswith("==1==") for l in r.err.splitlines()), f"a forged line:\n{r.err}")


main({f.__name__: f for f in (signal_report, track_queries_off, signal_burst, suspect_idle_tx, suspect_age, metrics, misuse_fork,
                              misuse_fork_close, misuse_fork_notice, misuse_threads, no_handler_over_the_programs, status_waits_whole,
                              status_after_closing_fds, status_fds, status_verifies, status_signalfd, suspect_once,
                              warning_escaped)})
