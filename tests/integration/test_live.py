"""Integration tests of live diagnosis: reports on a signal, transaction stacks, suspects, metrics,
misuse warnings. Each function is one ctest test: python3 test_live.py NAME."""
import glob
import os
import signal
import time

from harness import PROG, Background, check, eq, frames, main, read_reports, run, validate_schema, wait_for


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
    check("forget_commit" in names and "mode_serve" in names, f"transaction began in forget_commit: {names}")
    check(all(isinstance(c["server_pid"], int) and c["age_s"] >= 0 and c["idle_s"] >= 0 for c in conns), conns)
    eq(rep["utilization"]["open"], 2, "open")
    # A second request replaces the first report: one signal report per process.
    time.sleep(0.05)
    bg.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: len(glob.glob(os.path.join(bg.report_dir, "*-signal-*"))) == 1 and
             read_reports(bg.report_dir, "*-signal-*")[0]["time"] != rep["time"], "a newer signal report")
    rc, _, err = bg.stop()
    eq(rc, 0, f"exit status:\n{err}")
    check("live report (signal): 2 connections open" in err, f"text live report in the log:\n{err}")
    check("its transaction began" in err and "forget_commit" in err, err)


def signal_burst():
    bg = Background(lambda stop: [PROG, "storm", stop])
    for _ in range(1000):
        os.kill(bg.proc.pid, signal.SIGUSR1)
    # The storm goes on while the reporter answers; stop only once an answer is there (a loaded machine
    # may take a while).
    signal_reports(bg)
    rc, _, err = bg.stop()
    eq(rc, 0, f"the program survives 1000 signals during a connect storm:\n{err[-2000:]}")
    files = glob.glob(os.path.join(bg.report_dir, "*"))
    reports = read_reports(bg.report_dir)  # every file valid JSON with the schema
    check(any(r["trigger"] == "signal" for r in reports), "at least one signal report")
    check(not glob.glob(os.path.join(bg.report_dir, ".*")), "no temp files left")
    exit_rep = next(r for r in reports if r["trigger"] == "exit")
    u = exit_rep["utilization"]
    check(u["opened_total"] > 0 and u["opened_total"] == u["closed_total"], f"counts exact: {u}")
    eq(exit_rep["leaks"], [], "leaks")
    check(len(files) <= 3, f"signal reports coalesce: {files}")


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


def metrics():
    from prometheus_client.parser import text_string_to_metric_families
    d = os.path.dirname(glob.os.path.abspath(__file__))
    path = os.path.join(tempfile_dir(), "pqleak.prom")
    bg = Background(lambda stop: [PROG, "serve", stop], env={"PQLEAK_METRICS": path, "PQLEAK_METRICS_INTERVAL": "0.2",
                                                             "PQLEAK_MAX_CONNS": "10", "PQLEAK_SIGNAL": "none"})
    wait_for(lambda: os.path.exists(path), "the metrics file")
    # The file is rewritten every 0.2 s; the first one may predate the second connection.
    def parsed():
        text = open(path).read()
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        return (text, fams) if fams["pqleak_connections_open"].samples[0].value == 2 else None
    text, fams = wait_for(parsed, "two open connections in the metrics")
    for name in ("pqleak_connections_open", "pqleak_connections_peak", "pqleak_connections_cap",
                 "pqleak_checkout_waits", "pqleak_checkout_wait_seconds", "pqleak_checkout_timeouts",
                 "pqleak_checkout_refused", "pqleak_suspects", "pqleak_leaked_connections",
                 "pqleak_connections_opened", "pqleak_connections_closed"):
        check(name in fams, f"metric {name} in:\n{text}")
    sample = fams["pqleak_connections_open"].samples[0]
    eq(sample.value, 2, "open connections")
    eq(sample.labels["pid"], str(bg.proc.pid), "pid label")
    check(sample.labels["program"].endswith("it_prog"), sample.labels)
    eq(fams["pqleak_connections_cap"].samples[0].value, 10, "cap")
    rc, _, err = bg.stop()
    eq(rc, 0, err)
    final = {f.name: f for f in text_string_to_metric_families(open(path).read())}
    eq(final["pqleak_connections_open"].samples[0].value, 0, "open after exit")
    check(not [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")], "no temp file left")
    del d


def tempfile_dir():
    import tempfile
    return tempfile.mkdtemp(prefix="pqleak-metrics-")


def misuse_fork():
    r = run([PROG, "misuse-fork"])
    lines = [l for l in r.err.splitlines() if "cannot be shared across fork" in l]
    eq(len(lines), 1, f"one warning:\n{r.err}")
    check("used at:" in r.err and "opened at:" in r.err and "mode_misuse_fork" in r.err, r.err)


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


main({f.__name__: f for f in (signal_report, signal_burst, suspect_idle_tx, suspect_age, metrics, misuse_fork,
                              misuse_threads, no_handler_over_the_programs)})
