"""Integration tests of pool-style caps (PQLEAK_MAX_CONNS, PQLEAK_CHECKOUT_TIMEOUT,
PQLEAK_MAX_CONNS_PER_TARGET) against the real server: waits, refusals and their messages in a C
program, psql and psycopg2. Each function is one ctest test: python3 test_caps.py NAME."""
import os
import re
import tempfile

from harness import PROG, check, eq, main, run

PYTHON = os.environ.get("PYTHON", "python3")
HOLDERS = re.compile(r"; 2 held by connect_ok \(prog\.c:\d+\) <- hold_connections \(prog\.c:\d+\), oldest [\d.]+ s\n")


def parse(out):
    status = re.search(r"status=(\w+) after=([\d.]+)", out)
    msg = re.search(r"message=(.*)", out, re.S)
    check(status and msg, f"program output:\n{out}")
    return status.group(1), float(status.group(2)), msg.group(1)


def threads_share_cap():
    r = run([PROG, "cap-threads"], env={"PQLEAK_MAX_CONNS": "3"})
    eq(r.rc, 0, f"all 10 threads finish:\n{r.err}")
    u = r.only_report()["utilization"]
    eq((u["peak_open"], u["cap"], u["opened_total"], u["closed_total"]), (3, 3, 30, 30),
       "peak, cap, opened, closed")
    check(u["waits_total"] > 0 and u["wait_s_total"] > 0 and u["wait_s_max"] > 0, f"waits counted: {u}")
    eq((u["timeouts_total"], u["refused_total"]), (0, 0), "timeouts, refusals")
    eq(u["utilization_pct"], 0, "utilization at exit")
    crit = [l for l in r.err.splitlines() if "CRITICAL" in l]
    check(crit and "3 of PQLEAK_MAX_CONNS=3 connections open" in crit[0], f"critical-level warning:\n{r.err}")


def timeout_refusal():
    r = run([PROG, "cap-timeout"], env={"PQLEAK_MAX_CONNS": "2", "PQLEAK_CHECKOUT_TIMEOUT": "1"})
    status, after, msg = parse(r.out)
    eq(status, "bad", "status of the refused connect")
    check(after >= 0.9, f"waited the timeout: {after}")
    check(msg.startswith("connection refused by pqleak (checkout timeout): PQLEAK_MAX_CONNS=2 reached, 2 open, "
                         "waited 1.0 s"), msg)
    check(HOLDERS.search(msg), f"the message names the holders:\n{msg}")
    u = r.only_report()["utilization"]
    eq((u["waits_total"], u["timeouts_total"], u["refused_total"]), (1, 1, 1), "waits, timeouts, refusals")
    eq(r.only_report()["leaks"], [], "a refused connection passed to PQfinish is no leak")


def self_deadlock():
    # The timeout is long: a refusal well before it shows the deadlock was seen, not waited out.
    r = run([PROG, "cap-deadlock"], env={"PQLEAK_MAX_CONNS": "2", "PQLEAK_CHECKOUT_TIMEOUT": "120"})
    status, after, msg = parse(r.out)
    eq(status, "bad", "status")
    check(after < 60, f"refused at once, not after the timeout: {after} s")
    check("would wait forever" in msg and HOLDERS.search(msg), msg)
    eq(r.only_report()["utilization"]["waits_total"], 0, "no wait")


def fifo():
    d = tempfile.mkdtemp()
    log = os.path.join(d, "trace.log")
    r = run([PROG, "cap-fifo", log], env={"PQLEAK_MAX_CONNS": "1", "PQLEAK_TRACE": "1", "PQLEAK_LOG": log})
    eq(r.rc, 0, f"exit status:\n{r.err}")
    eq(r.out, "012345\n", "waiters served in arrival order")
    eq(r.only_report()["utilization"]["waits_total"], 6, "waits")


def failed_hold_no_slot():
    r = run([PROG, "cap-failed"], env={"PQLEAK_MAX_CONNS": "1", "PQLEAK_CHECKOUT_TIMEOUT": "0"})
    eq(r.rc, 0, f"a connect after five failed ones gets the only slot:\n{r.err}{r.out}")
    u = r.only_report()["utilization"]
    eq((u["failed_total"], u["refused_total"]), (5, 0), "failed, refused")


def nonblocking_refused():
    r = run([PROG, "cap-nonblocking"], env={"PQLEAK_MAX_CONNS": "1", "PQLEAK_CHECKOUT_TIMEOUT": "120"})
    status, after, msg = parse(r.out)
    eq(status, "bad", "status")
    check(after < 60, f"never waits: {after} s")
    check(msg.startswith("connection refused by pqleak (non-blocking connect, no free slot): PQLEAK_MAX_CONNS=1"),
          msg)


def refused_target():
    # Refused by PQLEAK_MAX_CONNS alone and never finished: the report names its target all the same.
    r = run([PROG, "cap-refused-leak"], env={"PQLEAK_MAX_CONNS": "1", "PQLEAK_CHECKOUT_TIMEOUT": "0"})
    eq(r.rc, 0, r.err)
    bad = [c for c in r.only_report()["connections"] if c["status"] == "bad"]
    eq(len(bad), 1, f"the refused connection: {bad}")
    t = bad[0]["target"]
    eq((t["host"], t["dbname"], t["user"]), (os.environ["PGHOST"], os.environ["PGDATABASE"], os.environ["PGUSER"]),
       f"the refused connection's target: {t}")


def per_target():
    r = run([PROG, "cap-per-target"], env={"PQLEAK_MAX_CONNS_PER_TARGET": "1", "PQLEAK_CHECKOUT_TIMEOUT": "0"})
    eq(r.rc, 0, f"a connection to another database is allowed:\n{r.err}")
    status, _, msg = parse(r.out)
    eq(status, "bad", "second connection to the same database")
    check(f"PQLEAK_MAX_CONNS_PER_TARGET=1 reached, 1 open to host={os.environ['PGHOST']} port=5432 "
          f"dbname={os.environ['PGDATABASE']} user={os.environ['PGUSER']}" in msg, msg)
    check(re.search(r"; 1 held by connect_ok \(prog\.c:\d+\)", msg), msg)


def psql_refused():
    # \connect opens the new connection before closing the old one: at a cap of 1, psql's own thread
    # holds the only slot, so the wait could never end and is refused at once.
    r = run(["psql", "-X", "-c", "\\connect postgres"], env={"PQLEAK_MAX_CONNS": "1", "PQLEAK_CHECKOUT_TIMEOUT": "120"})
    check("\\connect: connection refused by pqleak (would wait forever" in r.err, r.err)
    check("PQLEAK_MAX_CONNS=1 reached, 1 open" in r.err and "1 held by" in r.err, r.err)


PSYCOPG2_CAP = """
import psycopg2, threading
held = psycopg2.connect("")
def worker():
    try:
        psycopg2.connect("")
        print("connected")
    except psycopg2.OperationalError as e:
        print("OperationalError:", e)
t = threading.Thread(target=worker); t.start(); t.join()
held.close()
"""


def psycopg2_refused():
    r = run([PYTHON, "-c", PSYCOPG2_CAP], env={"PQLEAK_MAX_CONNS": "1", "PQLEAK_CHECKOUT_TIMEOUT": "1"})
    eq(r.rc, 0, r.err)
    check(r.out.startswith("OperationalError: connection refused by pqleak (checkout timeout): "
                           "PQLEAK_MAX_CONNS=1 reached, 1 open, waited 1.0 s; 1 held by "), r.out)


def no_cap_no_trace():
    r = run([PROG, "threads"], env={"PQLEAK_TRACE": "1"})
    check(not re.search(r"wait:|refused", r.err), f"no cap: no waits or refusals:\n{r.err}")
    u = r.only_report()["utilization"]
    eq((u["cap"], u["utilization_pct"], u["waits_total"]), (0, None, 0), "cap, utilization, waits")


def secret_refusal():
    """Refused connects whose password was given in a conninfo string (PQconnectdb), in an expanded
    dbname (PQconnectdbParams) or as PQsetdbLogin's pwd, with the password in two fields of the target:
    the host (a socket directory whose path contains it, a symlink to the server's) and the
    application_name. Neither the refusal message nor the log nor any report may show it; "[redacted]"
    stands where those fields were."""
    import json
    import shutil
    pw = "Zq9Sec"
    d = tempfile.mkdtemp(prefix="pqleak-sec-")
    host = os.path.join(d, f"sock-{pw}")
    os.symlink(os.environ["PGHOST"], host)
    try:
        r = run([PROG, "secret-refusal", host, pw], env={"PQLEAK_MAX_CONNS_PER_TARGET": "1",
                                                          "PQLEAK_CHECKOUT_TIMEOUT": "0", "PQLEAK_TRACE": "1"})
    finally:
        shutil.rmtree(d)
    eq(r.rc, 0, f"exit status:\n{r.err}")
    got = re.findall(r"^(\S+): status=(\w+) refused=(\d)\n--message--\n(.*?)--end--\n", r.out, re.M | re.S)
    eq([g[:3] for g in got],
       [("conninfo", "bad", "1"), ("expanded-dbname", "bad", "1"), ("setdblogin", "bad", "1")],
       f"each connect refused by pqleak (the same target as the held connection):\n{r.out}")
    for way, _, _, msg in got:
        check(pw not in msg, f"{way}: the password in the refusal message:\n{msg}")
        check(f"PQLEAK_MAX_CONNS_PER_TARGET=1 reached, 1 open to host=[redacted] port={os.environ['PGPORT']} "
              f"dbname={os.environ['PGDATABASE']} user={os.environ['PGUSER']}" in msg, f"{way}: message:\n{msg}")
    check(pw not in r.out, f"the password in the program's output:\n{r.out}")
    check(pw not in r.err, f"the password in the log:\n{r.err}")
    rep = r.only_report()
    check(pw not in json.dumps(rep), f"the password in the report:\n{json.dumps(rep, indent=1)}")
    # The three refused connections, leaked: their targets are listed, the two fields redacted.
    eq(sorted((c["status"], c["target"]["host"], c["target"]["application_name"]) for c in rep["connections"]),
       [("bad", "[redacted]", "[redacted]")] * 3, "targets of the refused connections in the report")
    eq(len(re.findall(r"^Leak of 1 connection .* to host=\[redacted\] port=\S+ dbname=\S+ user=\S+ "
                      r"application_name=\[redacted\],", r.err, re.M)), 3, f"text report:\n{r.err}")
    eq(len([l for l in r.err.splitlines() if l.startswith("pqleak: refused: ") and "host=[redacted]" in l]), 3,
       f"trace lines of the refusals:\n{r.err}")


def levels():
    """The WARNING and CRITICAL lines of PQLEAK_WARN_PCT and PQLEAK_CRIT_PCT: said once per crossing,
    re-armed only below 75% of the level, re-armed crossings said at most once a minute (so this test
    waits a minute). The program opens or closes connections to the number the test writes to its
    stdin and answers "ok N"; the test reads the log after each answer."""
    import subprocess
    import time
    from harness import environment
    d = tempfile.mkdtemp(prefix="pqleak-levels-")
    log = os.path.join(d, "log")
    # Cap 20: the warning level (50%) is 10 connections, re-armed at 7 (below 37.5%); the critical level
    # (80%) is 16, re-armed at 11 (below 60%).
    env = environment({"PQLEAK_MAX_CONNS": "20", "PQLEAK_WARN_PCT": "50", "PQLEAK_CRIT_PCT": "80",
                       "PQLEAK_LOG": log})
    p = subprocess.Popen([PROG, "levels"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    said = []

    def to(n, warnings=0, criticals=0, why=""):
        p.stdin.write(f"{n}\n")
        p.stdin.flush()
        eq(p.stdout.readline(), f"ok {n}\n", "the program's answer")
        lines = open(log).read().splitlines() if os.path.exists(log) else []
        new = lines[len(said):]
        said.extend(new)
        want = []
        if warnings:
            want.append(f"pqleak: WARNING: {n} of PQLEAK_MAX_CONNS=20 connections open ({n * 5}%, warning level 50%)")
        if criticals:
            want.append(f"pqleak: CRITICAL: {n} of PQLEAK_MAX_CONNS=20 connections open ({n * 5}%, critical level "
                        f"80%)")
        eq(new, want, f"lines logged at {n} open ({why})")

    to(9, why="below the warning level")
    to(10, warnings=1, why="the warning level crossed")
    to(15, why="between the levels")
    to(16, criticals=1, why="the critical level crossed")
    first = time.monotonic()  # both levels were last said before this
    to(20, why="at the cap: already said")
    to(12, why="60%: not below 75% of the critical level")
    to(16, why="the critical level again, not re-armed")
    to(8, why="40%: the critical level re-armed, not the warning level")
    to(10, why="the warning level again, not re-armed")
    to(16, why="the critical level again, re-armed but said less than a minute ago")
    to(7, why="35%: the warning level re-armed")
    to(10, why="the warning level again, re-armed but said less than a minute ago")
    to(7, why="below the warning level")
    elapsed = time.monotonic() - first
    check(elapsed < 50, f"the steps within the minute took {elapsed:.0f} s: too slow a machine for this test")
    time.sleep(first + 61 - time.monotonic())
    to(10, warnings=1, why="the warning level crossed, re-armed, a minute later")
    to(16, criticals=1, why="the critical level crossed, re-armed, a minute later")
    to(20, why="at the cap: already said")
    to(0, why="all closed")
    p.stdin.close()
    eq(p.wait(timeout=60), 0, "exit status")
    eq(len(said), 4, f"lines logged in all:\n{chr(10).join(said)}")
    import shutil
    shutil.rmtree(d)


main({f.__name__: f for f in (threads_share_cap, timeout_refusal, self_deadlock, fifo, failed_hold_no_slot,
                              nonblocking_refused, per_target, psql_refused, psycopg2_refused, no_cap_no_trace, secret_refusal, levels,
                              refused_target)})
