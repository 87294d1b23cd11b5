"""Suppression rules against real leaks (docs/suppressions.md), in the shim (PQLEAK_SUPPRESSIONS) and in
the command (pqleak report --suppressions) alike: FUNCTION@FILE names one frame by both; a leak: rule
naming where a pool's connection was last used suppresses it in the shim too; tx: rules match the
transaction stack, leak: rules do not; the shim's "Suppressions used" table and suppressions_used
member; PQLEAK_STRIP_PATH_PREFIX shortens the text report's paths only. Each function is one ctest
test: python3 test_rules.py NAME."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import BIN, PROG, check, eq, environment, leaks, main, read_reports, validate_schema  # noqa: E402

HANDOFF = os.path.join(BIN, "it_handoff")
CLI = os.environ["PQLEAK_CLI"]
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
POOL_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lang", "scripts", "pool_psycopg3.py")
LEAK_EXIT = 23


class Shimmed:
    """A program run under the shim with a report directory of its own (kept for pqleak report) and,
    when rules is given, a suppressions file holding them."""

    def __init__(self, cmd, rules=None, env=None):
        self.dir = tempfile.mkdtemp(prefix="pqleak-rules-")
        self.reports_dir = os.path.join(self.dir, "reports")
        os.mkdir(self.reports_dir, 0o700)
        e = {"PQLEAK_EXITCODE": str(LEAK_EXIT), **(env or {})}
        if rules is not None:
            e["PQLEAK_SUPPRESSIONS"] = self.rules_file(rules)
        p = subprocess.run(cmd, env=environment(e, True, self.reports_dir), capture_output=True, text=True,
                           timeout=120)
        self.rc, self.err = p.returncode, p.stderr
        reps = read_reports(self.reports_dir)
        check(len(reps) == 1, f"expected one report, got {len(reps)}:\n{self.err}")
        self.rep = reps[0]
        validate_schema(self.rep)

    def rules_file(self, rules):
        path = os.path.join(self.dir, f"rules{len(os.listdir(self.dir))}.supp")
        with open(path, "w") as f:
            f.write("".join(r + "\n" for r in rules))
        return path

    def command(self, rules):
        """pqleak report --json on this run's report with the rules: (status, merged report)."""
        p = subprocess.run([CLI, "report", "--json", "--suppressions", self.rules_file(rules), self.reports_dir],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, json.loads(p.stdout)

    def done(self):
        shutil.rmtree(self.dir)


def only_group(rep, kinds=("unclosed", "teardown")):
    groups = [g for g in rep["leaks"] if g["kind"] in kinds]
    check(len(groups) == 1, f"expected one {kinds} group: {json.dumps(rep['leaks'])}")
    return groups[0]


def assert_suppressed(run, rule):
    eq(run.rc, 0, f"exit status with {rule} (PQLEAK_EXITCODE={LEAK_EXIT}):\n{run.err}")
    g = only_group(run.rep)
    eq((g["suppressed"], g["rule"]), (True, rule), "the group's suppression")
    eq(run.rep["suppressions_used"], [{"rule": rule, "count": 1, "groups": 1}], "suppressions_used")


def assert_not_suppressed(run, rule):
    eq(run.rc, LEAK_EXIT, f"exit status with {rule}, which must not match:\n{run.err}")
    g = only_group(run.rep)
    eq((g["suppressed"], g["rule"]), (False, None), f"the group's suppression by {rule}")
    eq(run.rep["suppressions_used"], [], "suppressions_used")


def function_at_file():
    """leak:FUNCTION@FILE matches a frame whose function and file both match: the C pool's filler,
    which opened the connection, in handoff.c; the same function named in another file does not."""
    for rule, hit in (("leak:pool_filler@handoff.c", True), ("leak:pool_filler@*/integration/handoff.c", True),
                      ("leak:pool_filler@prog.c", False), ("leak:pool_fill@handoff.c", False)):
        run = Shimmed([HANDOFF, "pool-leak"], [rule])
        (assert_suppressed if hit else assert_not_suppressed)(run, rule)
        # The command applies the same rule to the report the shim wrote without any.
        plain = Shimmed([HANDOFF, "pool-leak"])
        rc, merged = plain.command([rule])
        eq(rc, 0 if hit else LEAK_EXIT, f"pqleak report --suppressions with {rule}")
        eq([(g["suppressed"], g["rule"]) for g in merged["leaks"] if g["count"]],
           [(True, rule) if hit else (False, None)], f"the command's groups with {rule}")
        run.done()
        plain.done()


def last_used_site():
    """A rule written against the line the headline names (last used at run_in_transaction, in the
    worker: the filler opened the connection) suppresses it in the shim itself, as in the command."""
    run = Shimmed([HANDOFF, "pool-leak"], ["leak:run_in_transaction@handoff.c"])
    g = only_group(run.rep)
    eq((g["site"]["function"], g["site_from"]), ("run_in_transaction", "last_used"), "the site")
    assert_suppressed(run, "leak:run_in_transaction@handoff.c")
    eq(run.err, "", "a process whose leaks are all suppressed says nothing")
    run.done()
    run = Shimmed([HANDOFF, "pool-leak"], ["leak:worker_keeps"])  # in the last-used stack, not the site
    assert_not_suppressed(run, "leak:worker_keeps")
    run.done()


def tx_stack():
    """tx: rules match the stack where the group's transaction began, leak: rules do not: a psycopg_pool
    connection a worker kept and dropped (closed by the garbage collector in its transaction)."""
    if subprocess.run([PYTHON, "-c", "import psycopg_pool"], capture_output=True).returncode:
        print("SKIP: psycopg_pool is not installed (Debian: python3-psycopg-pool)")
        sys.exit(77)
    cmd = [PYTHON, POOL_SCRIPT]
    env = {"POOL_MODE": "keeps"}
    rule = "tx:Connection.execute@connection.py"  # psycopg's, in the transaction stack only
    run = Shimmed(cmd, [rule], env)
    g = only_group(run.rep, ("teardown",))
    check(any(f["function"] == "Connection.execute" for f in run.rep["stacks"][str(g["tx_stack"])]), "control")
    assert_suppressed(run, rule)
    run.done()
    # ... and only there: not the open stack's frames (the pool's connect), for the shim nor the command.
    run = Shimmed(cmd, ["tx:ConnectionPool._connect@pool.py"], env)
    check(any(f["function"] == "ConnectionPool._connect" for f in run.rep["stacks"][str(g["stack"])]), "control")
    assert_not_suppressed(run, "tx:ConnectionPool._connect@pool.py")
    rc, merged = run.command(["tx:ConnectionPool._connect@pool.py"])
    eq(rc, LEAK_EXIT, "pqleak report --suppressions with a tx: rule naming the open stack only")
    run.done()
    run = Shimmed(cmd, ["leak:Connection.execute@connection.py"], env)
    assert_not_suppressed(run, "leak:Connection.execute@connection.py")
    rc, merged = run.command([rule])
    eq(rc, 0, "pqleak report --suppressions with the tx: rule")
    eq([(g["suppressed"], g["rule"]) for g in merged["leaks"] if g["kind"] == "teardown"], [(True, rule)],
       "the command's teardown group")
    run.done()


def suppressions_used():
    """LeakSanitizer's table in the shim's text report: each rule that matched with the connections it
    suppressed; the JSON member lists the same, in file order, rules that matched nothing left out."""
    rules = ["leak:no_such_function", "leak:leak_and_drop@prog.c"]
    run = Shimmed([PROG, "two-sites"], rules)
    eq(run.rc, LEAK_EXIT, run.err)
    eq(run.rep["suppressions_used"], [{"rule": "leak:leak_and_drop@prog.c", "count": 2, "groups": 1}],
       "suppressions_used")
    check(re.search(r"\nSuppressed: 2 connections\n-+\nSuppressions used:\n  count rule\n"
                    r"      2 leak:leak_and_drop@prog\.c\n-+\n", run.err), f"the table:\n{run.err}")
    check("no_such_function" not in run.err, "a rule that matched nothing is not listed")
    check("SUMMARY: pqleak: 1 connection leaked in 1 group" in run.err, run.err)
    run.done()


def strip_path_prefix():
    """PQLEAK_STRIP_PATH_PREFIX cuts the build prefix from the text report's paths, not from the JSON."""
    prog_c = os.path.join(os.environ["PQLEAK_SRC"], "tests", "integration", "prog.c")
    frame = re.compile(r"^    #\d+ 0x[0-9a-f]+ in leak_and_drop (\S+):\d+", re.M)
    run = Shimmed([PROG, "two-sites"])
    m = frame.search(run.err)
    check(m and m.group(1) == prog_c, f"control: the whole path without the setting:\n{run.err}")
    run.done()
    for prefix in (os.path.join(os.environ["PQLEAK_SRC"], "tests") + "/", "/tests/"):
        run = Shimmed([PROG, "two-sites"], env={"PQLEAK_STRIP_PATH_PREFIX": prefix})
        m = frame.search(run.err)
        check(m and m.group(1) == "integration/prog.c", f"PQLEAK_STRIP_PATH_PREFIX={prefix}:\n{run.err}")
        check(prog_c not in run.err, f"the whole path printed anyway:\n{run.err}")
        files = {f["file"] for s in run.rep["stacks"].values() for f in s if f["function"] == "leak_and_drop"}
        eq(files, {prog_c}, "JSON paths stay whole")
        eq(run.rep["settings"]["strip_path_prefix"], prefix, "settings.strip_path_prefix")
        run.done()


main({f.__name__: f for f in (function_at_file, last_used_site, tx_stack, suppressions_used, strip_path_prefix)})
