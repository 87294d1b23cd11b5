"""Reports as the reader sees them (issue 12): the line to fix for connections a pool hands over (the
worker that kept one, not the filler that opened it), one group per source line whatever the compiler
did to the loop, library frames folded in text stacks, misuse as a finding in the JSON. Each function
is one ctest test: python3 test_report.py NAME."""
import os
import re
import subprocess
import sys

from harness import BIN, PROG, check, eq, frames, leaks, main, run, validate_schema

HANDOFF = os.path.join(BIN, "it_handoff")
UNROLL = os.path.join(BIN, "it_unroll")


def functions(rep, stack_id):
    return [f["function"] for f in frames(rep, stack_id)] if stack_id else []


def pool_handoff():
    r = run([HANDOFF, "pool-leak"], env={"PQLEAK_EXITCODE": "23"})
    eq(r.rc, 23, f"exit status:\n{r.err}")
    rep = r.only_report()
    validate_schema(rep)
    groups = leaks(rep)
    eq([g["count"] for g in groups], [1], "leak groups")
    g = groups[0]
    eq((g["site"]["function"], g["site_from"]), ("run_in_transaction", "last_used"), "the site: where the worker used it")
    check(g["site"]["file"].endswith("handoff.c") and g["site"]["line"] > 0, g["site"])
    conn = next(c for c in rep["connections"] if c["id"] == g["connections"][0])
    check("pool_filler" in functions(rep, conn["stack"]), "opened by the filler")
    last = functions(rep, conn["last_stack"])
    check("worker_keeps" in last and "run_in_transaction" in last, f"last used in the worker: {last}")
    check(re.search(r"opened by pool_filler \(handoff\.c:\d+\).*, last used at run_in_transaction \(handoff\.c:\d+\) "
                    r"<- worker_keeps \(handoff\.c:\d+\):", r.err), f"text headline:\n{r.err}")
    check("last used (its last transaction began) in" in r.err, r.err)


def pool_clean():
    r = run([HANDOFF, "pool-clean"], env={"PQLEAK_EXITCODE": "23"})
    eq(r.rc, 0, f"exit status:\n{r.err}")
    eq(leaks(r.only_report()), [], "leaks of the fixed twin")
    eq(r.err, "", "nothing said")


def unrolled_one_group():
    # The control: the compiler did make two call sites of the one line.
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", UNROLL], capture_output=True, text=True).stdout
    main_body = dis.split("<main>:", 1)[1].split("\n\n", 1)[0] if "<main>:" in dis else ""
    calls = len(re.findall(r"call.*<PQconnectdb@plt>", main_body))
    if calls < 2:
        print(f"SKIP: the compiler left {calls} call of PQconnectdb in main (no unrolling to test)")
        sys.exit(77)
    r = run([UNROLL])
    rep = r.only_report()
    groups = leaks(rep)
    eq([g["count"] for g in groups], [2], f"one group of two connections ({calls} call sites):\n{r.err}")
    eq(len({c["stack"] for c in rep["connections"]}), 1, "the connections' stacks")
    eq(r.err.count("\nLeak of "), 1, f"one group in the text:\n{r.err}")
    eq((groups[0]["site"]["function"], groups[0]["site_from"]), ("main", "stack"), "site")


def folded_stacks():
    r = run([PROG, "two-sites"])
    check(re.search(r"^    \.\.\. \d+ frames in libc\.so\.6$", r.err, re.M), f"libc's frames folded:\n{r.err}")
    check("__libc_start" not in r.err, "no libc frame printed")
    check(re.search(r"^    #\d+ 0x[0-9a-f]+ in main ", r.err, re.M), "the program's own frames printed")
    rep = r.only_report()
    check(any(f["function"] and f["function"].startswith("__libc_start") for s in rep["stacks"].values() for f in s),
          "JSON stacks keep every frame")
    full = run([PROG, "two-sites"], env={"PQLEAK_FULL_STACKS": "1"})
    check("__libc_start" in full.err and " frames in " not in full.err, f"PQLEAK_FULL_STACKS=1:\n{full.err}")


def misuse_json(mode, used_in, closed):
    r = run([PROG, mode])
    eq(r.rc, 0, r.err)
    parent = next(rep for rep in r.reports if rep["utilization"]["opened_total"] == 1)
    children = [rep for rep in r.reports if rep["pid"] != parent["pid"]]
    # The parent's own close of a connection it opened before a fork is a note (pid == opened_by), no finding.
    eq([m for m in parent["misuse"] if m["pid"] != m["opened_by"]], [], "the parent's findings")
    eq(len(children), 1, "a report of the child, which opened nothing but misused a connection")
    child = children[0]
    eq(len(child["misuse"]), 1, "the child's findings")
    m = child["misuse"][0]
    eq((m["kind"], m["closed"], m["pid"], m["opened_by"]), ("fork", closed, child["pid"], parent["pid"]), "finding")
    check(isinstance(m["server_pid"], int) and m["server_pid"] > 0, f"the session it broke: {m}")
    eq(m["site"]["function"], used_in, "named at the using line")
    check(used_in in functions(child, m["stack"]) and "connect_ok" in functions(child, m["open_stack"]), m)
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", m["time"]), m["time"])
    # Fork counts, the hand-off rule's exact order: the child came of the parent's first fork, and the
    # parent's close note says it last used the connection before any fork (at its opening, or the query
    # before the fork).
    eq(m.get("opener_fork"), 1, f"which of the parent's forks made the child: {m}")
    notes = [n for n in parent["misuse"] if n["pid"] == n["opened_by"]]
    eq([n.get("last_use_fork") for n in notes], [0], f"the parent's close note: {parent['misuse']}")
    # Monotonic times in ns, comparable between the two processes: the parent's last use (before the
    # fork) came before the child's.
    check(isinstance(m.get("mono_ns"), int) and isinstance(notes[0].get("mono_ns"), int) and
          notes[0]["mono_ns"] < m["mono_ns"], f"monotonic times: {notes[0]}, {m}")


def misuse_fork_json():
    misuse_json("misuse-fork", "query_in_child", False)


def misuse_close_json():
    misuse_json("misuse-fork-close", "close_in_child", True)


SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")
PYTHON = os.environ.get("PYTHON", "python3")


def need(module, package):
    if subprocess.run([PYTHON, "-c", f"import {module}"], capture_output=True).returncode:
        print(f"SKIP: {module} is not installed (Debian: {package})")
        sys.exit(77)


def python_pool(script, module, package):
    need(module, package)
    # The pool's idle connections are held until exit (not counted); the kept one was in a transaction.
    r = run([PYTHON, os.path.join(SCRIPTS, script), "keeps"], env={"PQLEAK_EXITCODE": "23"})
    eq(r.rc, 23, f"exit status:\n{r.err}")
    rep = r.only_report()
    groups = [g for g in leaks(rep) if g["kind"] != "held"]
    eq(len(groups), 1, f"one leak group:\n{r.err}")
    g = groups[0]
    eq((g["site"]["function"], g["site"]["file"].endswith(script)), ("handle_order", True), f"site: {g}")
    check(g["site_from"] in ("tx_stack", "last_used"), g["site_from"])
    check(re.search(r"last used at handle_order \(" + re.escape(script) + r":\d+\)", r.err), f"text:\n{r.err}")
    clean = run([PYTHON, os.path.join(SCRIPTS, script), "returns"], env={"PQLEAK_EXITCODE": "23", "PQLEAK_STRICT": "1"})
    eq(clean.rc, 0, f"the fixed twin:\n{clean.err}")
    eq(leaks(clean.only_report()), [], "leaks of the fixed twin")


def psycopg2_pool_keeps():
    python_pool("psycopg2_pool.py", "psycopg2", "python3-psycopg2")


main({f.__name__: f for f in (pool_handoff, pool_clean, unrolled_one_group, folded_stacks, misuse_fork_json,
                              misuse_close_json, psycopg2_pool_keeps)})
