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


main({f.__name__: f for f in (threads_share_cap, timeout_refusal, self_deadlock, fifo, failed_hold_no_slot,
                              nonblocking_refused, per_target, psql_refused, psycopg2_refused, no_cap_no_trace)})
