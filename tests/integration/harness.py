"""Helpers for pqleak's integration tests: run a command with the shim preloaded against the test
server, collect its stderr and JSON reports, and assert with messages that say what was expected."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

SHIM = os.environ["PQLEAK_SHIM"]
BIN = os.environ.get("PQLEAK_BIN", "")
PROG = os.path.join(BIN, "it_prog")


class Run:
    def __init__(self, rc, out, err, reports, report_dir):
        self.rc, self.out, self.err, self.reports, self.report_dir = rc, out, err, reports, report_dir

    def only_report(self):
        check(len(self.reports) == 1, f"expected exactly one report, got {len(self.reports)}:\n{self.err}")
        return self.reports[0]


def environment(env=None, preload=True, report_dir=None):
    """The environment of a command under test: no PQLEAK_* of the caller's, the shim preloaded."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PQLEAK_") or k in ("PQLEAK_SHIM", "PQLEAK_CLI")}
    if preload:
        e["LD_PRELOAD"] = SHIM
    if report_dir:
        e["PQLEAK_REPORT_DIR"] = report_dir
    e.update(env or {})
    return e


def read_reports(d, pattern="*"):
    """Parses every report file in d (checking names, mode and schema), in name order."""
    reports = []
    for f in sorted(glob.glob(os.path.join(d, pattern))):
        check(f.endswith(".json") and os.path.basename(f).startswith("pqleak-"),
              f"unexpected file in report dir: {f}")
        check(os.stat(f).st_mode & 0o777 == 0o600, f"{f} is not mode 0600")
        with open(f) as fh:
            r = json.load(fh)
        check(r.get("schema") == "pqleak/1", f"{f}: wrong schema")
        reports.append(r)
    return reports


def run(cmd, env=None, preload=True, report_dir=True, timeout=120, stdin=None):
    """Runs cmd; report_dir=True gives it a fresh PQLEAK_REPORT_DIR whose reports are parsed."""
    d = tempfile.mkdtemp(prefix="pqleak-it-") if report_dir else None
    e = environment(env, preload, d)
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout, input=stdin)
    reports = []
    if d:
        reports = read_reports(d)
        shutil.rmtree(d)
    return Run(p.returncode, p.stdout, p.stderr, reports, d)


class Background:
    """A command running under the shim while the test examines it; it prints "ready" when set up and
    stops when its stop file appears."""

    def __init__(self, args, env=None, report_dir=True):
        self.dir = tempfile.mkdtemp(prefix="pqleak-bg-")
        self.stop_file = os.path.join(self.dir, "stop")
        self.report_dir = os.path.join(self.dir, "reports") if report_dir else None
        if self.report_dir:
            os.mkdir(self.report_dir, 0o700)
        self.proc = subprocess.Popen(args(self.stop_file) if callable(args) else args,
                                     env=environment(env, True, self.report_dir), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":  # stderr is read only then: reading it waits for the program's end
            check(False, f"background program did not start: {line!r} {self.proc.stderr.read()}")

    def stop(self, timeout=60):
        open(self.stop_file, "w").close()
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def wait_for(pred, what, timeout=30.0):
    """Polls pred until true (the thing it waits for happens in another process)."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    check(False, f"timed out waiting for {what}")


def check(cond, msg):
    if not cond:
        print("FAIL:", msg, file=sys.stderr)
        sys.exit(1)


def eq(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def leaks(report, suppressed=False):
    return [g for g in report["leaks"] if g["suppressed"] == suppressed]


def frames(report, stack_id):
    return report["stacks"][str(stack_id)]


def innermost_user_function(report, stack_id):
    """The first frame of the stack in the test program itself."""
    for f in frames(report, stack_id):
        if f["module"] and os.path.basename(f["module"]) == "it_prog":
            return f["function"]
    return None


def validate_schema(r):
    """The fields docs/report-schema.md promises, present (null where unknown) in every report."""
    for k in ("schema", "trigger", "pid", "program", "time", "settings", "utilization", "connections",
              "stacks"):
        check(k in r, f"report lacks {k}")
    for k in ("open", "peak_open", "cap", "utilization_pct", "opened_total", "closed_total", "failed_total",
              "waits_total", "wait_s_total", "wait_s_max", "timeouts_total", "refused_total"):
        check(k in r["utilization"], f"utilization lacks {k}")
    for c in r["connections"]:
        for k in ("id", "status", "target", "server_pid", "age_s", "idle_s", "tx_status", "thread", "suspect",
                  "stack", "tx_stack"):
            check(k in c, f"connection lacks {k}")
        check(c["status"] in ("ok", "bad"), f"bad status {c['status']}")
        for k in ("host", "port", "dbname", "user", "application_name"):
            check(k in c["target"], f"target lacks {k}")
    if r["trigger"] == "exit":
        for g in r["leaks"]:
            for k in ("stack", "tx_stack", "count", "connections", "kind", "suppressed", "rule"):
                check(k in g, f"leak group lacks {k}")
            check(g["kind"] in ("unclosed", "teardown", "held"), f"bad kind {g['kind']}")
            eq(len(g["connections"]), g["count"], "connections listed in a leak group")
    for sid, fs in r["stacks"].items():
        for f in fs:
            for k in ("function", "file", "line", "module", "offset", "lang"):
                check(k in f, f"frame of stack {sid} lacks {k}")


def main(cases):
    """Runs the case named on the command line."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in cases:
        print(f"unknown case {name!r}; known: {' '.join(sorted(cases))}", file=sys.stderr)
        sys.exit(2)
    cases[name]()
    print(f"PASS {name}")
