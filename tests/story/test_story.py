"""The story of issue 6, end to end: the FastAPI + SQLAlchemy + psycopg2 app of app.py, served by uvicorn
under the shim against the test server, driven over HTTP until its pool times out. `pqleak status`, the
signal report, the suspect warnings and the exit report must all point at the route's line where the
stuck transactions began; the same app with the route fixed shows no suspect and no leak.
Each function is one ctest test: python3 test_story.py NAME."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import check, environment, eq, frames, main, read_reports, validate_schema, wait_for  # noqa: E402
from story import APP, Server, drive, marker_line  # noqa: E402

CLI = os.environ["PQLEAK_CLI"]
LINE = marker_line(APP, "begin")  # the route's query: where each forgotten session's transaction begins


def start(fixed):
    report_dir = tempfile.mkdtemp(prefix="pqleak-story-reports-")
    env = environment({"PQLEAK_SUSPECT_IDLE_TX": "1", "STORY_FIXED": "1" if fixed else "0"}, True, report_dir)
    return Server(env), report_dir


def cleanup(srv, report_dir):
    shutil.rmtree(srv.dir, ignore_errors=True)
    shutil.rmtree(report_dir, ignore_errors=True)


def status(pid, *opts):
    p = subprocess.run([CLI, "status", *opts, str(pid)], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def route_frame(rep, stack_id):
    """The frame of the route's line in a stack, or None."""
    return next((f for f in frames(rep, stack_id) if f["lang"] == "python" and f["file"] == APP
                 and f["line"] == LINE), None)


def listing(rep, stack_id):
    return "\n".join(f"  {f['lang']} {f['function']} {f['file']}:{f['line']}" for f in frames(rep, stack_id))


def check_stuck(rep, what):
    """Both pooled connections idle in a transaction begun by the route, in a live report."""
    validate_schema(rep)
    conns = rep["connections"]
    eq(len(conns), 2, f"{what}: open connections (pool_size=2)")
    for c in conns:
        eq((c["tx_status"], c["suspect"]), ("intrans", "idle_tx"), f"{what}: connection #{c['id']}")
        f = route_frame(rep, c["tx_stack"])
        check(f is not None, f"{what}: connection #{c['id']}'s transaction began at app.py:{LINE}:\n"
              f"{listing(rep, c['tx_stack'])}")
        eq((f["function"], f["module"]), ("get_order", None), "the route's frame")
    eq(rep["utilization"]["open"], 2, f"{what}: open")


def leaky():
    srv, report_dir = start(fixed=False)
    with srv:
        log = drive(srv.base)
        eq([(p, s) for p, s, _ in log], [("/orders/1", 200), ("/orders/2", 200), ("/orders/3", 500), ("/health", 500)],
           f"responses (the pool of 2 exhausted by the forgotten sessions, then SQLAlchemy's TimeoutError):\n"
           f"{srv.stderr()[-3000:]}")
        check(log[2][2] >= 1.5, f"the third order waited for the pool (pool_timeout=2): {log[2][2]:.2f} s")
        check("QueuePool limit of size 2 overflow 0 reached" in srv.stderr(), "SQLAlchemy's TimeoutError logged")

        # PQLEAK_SUSPECT_IDLE_TX=1: one warning per stuck connection, naming the route's line.
        def suspects():
            text = srv.stderr()
            return text if len(re.findall(r"pqleak: SUSPECT: connection #\d+ .*idle in a transaction", text)) >= 2 else None
        err = wait_for(suspects, "two suspect warnings in uvicorn's stderr", timeout=20)
        check(f"{APP}:{LINE}" in err and "get_order" in err, f"the warnings name app.py:{LINE}:\n{err[-4000:]}")

        # pqleak status --json: the live report itself.
        rc, out, errs = status(srv.proc.pid, "--json")
        eq(rc, 1, f"pqleak status --json (suspects: WARNING, cap or no cap):\n{errs}")
        rep = json.loads(out)
        eq((rep["trigger"], rep["pid"]), ("signal", srv.proc.pid), "trigger and pid")
        check_stuck(rep, "pqleak status --json")
        # The signal report it asked for, where uvicorn's own PQLEAK_REPORT_DIR points.
        sig = read_reports(report_dir, f"pqleak-{srv.proc.pid}-signal-*.json")
        eq(len(sig), 1, "signal reports in uvicorn's report directory")
        check_stuck(sig[0], "signal report")

        # pqleak status, text: what an operator reads. It names the route's file and line.
        rc, out, errs = status(srv.proc.pid)
        eq(rc, 1, f"pqleak status (suspects: WARNING):\n{out}{errs}")
        check(out.startswith("PQLEAK WARNING - "), f"the plugin line:\n{out}")
        check(re.search(rf"app\.py:{LINE}\b", out), f"pqleak status names app.py:{LINE} as where the transactions"
              f" began:\n{out}")
        check(out.count("idle in transaction") >= 2 or out.count("intrans") >= 2, f"two stuck connections:\n{out}")

        rc = srv.stop()
    eq(rc, 0, f"uvicorn's exit status after SIGTERM:\n{srv.stderr()[-3000:]}")
    # At exit Python's finalization closes the two forgotten connections: teardown leaks, their
    # transactions begun by the route.
    exits = [r for r in read_reports(report_dir) if r["trigger"] == "exit"]
    eq(len(exits), 1, "exit reports")
    validate_schema(exits[0])
    groups = exits[0]["leaks"]
    eq(sum(g["count"] for g in groups if g["kind"] == "teardown"), 2, f"teardown leaks: {json.dumps(groups)}")
    for g in groups:
        check(route_frame(exits[0], g["tx_stack"]) is not None, f"exit report: began at app.py:{LINE}:\n"
              f"{listing(exits[0], g['tx_stack'])}")
    check(f"app.py:{LINE}" in srv.stderr(), "the text exit report names the route's line")
    cleanup(srv, report_dir)


def fixed():
    srv, report_dir = start(fixed=True)
    with srv:
        log = drive(srv.base)
        eq([s for _, s, _ in log], [200] * 7, f"responses of the fixed app: {log}\n{srv.stderr()[-3000:]}")
        time.sleep(2.5)  # longer than PQLEAK_SUSPECT_IDLE_TX=1, with the reporter's check period
        rc, out, errs = status(srv.proc.pid, "--json")
        eq(rc, 0, f"pqleak status --json:\n{errs}")
        rep = json.loads(out)
        validate_schema(rep)
        check(1 <= len(rep["connections"]) <= 2, f"the pool's idle connections: {rep['connections']}")
        for c in rep["connections"]:
            eq((c["tx_status"], c["suspect"], c["tx_stack"]), ("idle", None, None), f"connection #{c['id']}")
        rc, out, errs = status(srv.proc.pid)
        eq(rc, 0, f"pqleak status:\n{out}{errs}")
        check("SUSPECT" not in out, f"no suspect in pqleak status:\n{out}")
        rc = srv.stop()
    eq(rc, 0, f"uvicorn's exit status after SIGTERM:\n{srv.stderr()[-3000:]}")
    check("SUSPECT" not in srv.stderr() and "leaked" not in srv.stderr(), f"uvicorn's stderr:\n{srv.stderr()[-3000:]}")
    exits = [r for r in read_reports(report_dir) if r["trigger"] == "exit"]
    eq(len(exits), 1, "exit reports")
    eq(exits[0]["leaks"], [], "leaks at exit (the pool disposed of at shutdown)")
    eq([r["trigger"] for r in read_reports(report_dir) if r["trigger"] == "suspect"], [], "suspect reports")
    cleanup(srv, report_dir)


main({f.__name__: f for f in (leaky, fixed)})
