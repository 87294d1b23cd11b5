"""ops.options_*: PQLEAK_OPTIONS and misspelled names (docs/settings.md), with psycopg2 (tests/ops/client.py)
under the shim against the test server.

usage: test_options.py CASE"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["PQLEAK_SRC"], "tests", "integration"))
from harness import check, eq, run  # noqa: E402

CLIENT = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "client.py")]
WARNING = re.compile(r"^pqleak: .*$", re.M)


def warnings(err):
    return WARNING.findall(err)


def options_apply():
    # A cap of 1 without waiting, from PQLEAK_OPTIONS alone: the second connect is refused.
    r = run(CLIENT + ["connect", "2"], env={"PQLEAK_OPTIONS": "max_conns=1:checkout_timeout=0"})
    check(r.out.startswith("refused:") and "PQLEAK_MAX_CONNS=1 reached" in r.out, f"refusal:\n{r.out}\n{r.err}")
    eq([w for w in warnings(r.err) if "CRITICAL: 1 of PQLEAK_MAX_CONNS=1" not in w], [], "warnings")
    s = r.only_report()["settings"]
    eq((s["max_conns"], s["checkout_timeout_s"]), (1, 0), "settings in the report")


def variable_wins():
    r = run(CLIENT + ["connect", "2"], env={"PQLEAK_OPTIONS": "max_conns=1:checkout_timeout=0:strict=1",
                                            "PQLEAK_MAX_CONNS": "2"})
    eq(r.out.strip(), "ok 2", f"the variable's cap of 2 holds:\n{r.err}")
    s = r.only_report()["settings"]
    eq((s["max_conns"], s["checkout_timeout_s"], s["strict"]), (2, 0, True), "settings in the report")


def help_runs_on():
    # help=1 lists the table at the first connection, then the shim stands aside: no report, no cap.
    table = subprocess.run([os.path.join(os.environ["PQLEAK_BIN"], "docs_settings_help")], check=True,
                           capture_output=True, text=True).stdout.split("\n--\n")[0].splitlines()
    r = run(CLIENT + ["connect", "2"], env={"PQLEAK_OPTIONS": "help=1:max_conns=1"})
    eq(r.rc, 0, r.err)
    eq(r.out.strip(), "ok 2", f"the program runs on, uncapped:\n{r.err}")
    lines = r.err.splitlines()
    check(lines and lines[0].startswith("pqleak: the settings, as PQLEAK_NAME=VALUE variables or as PQLEAK_OPTIONS"),
          f"help header:\n{r.err}")
    eq(lines[1:1 + len(table)], table, "every setting with its default and meaning")
    check(len(table) >= 20 and any(line.startswith("PQLEAK_MAX_CONNS ") for line in table), "the table")
    eq(r.reports, [], "reports written after help")
    # A process that never connects reads no setting: nothing at all.
    r = run(CLIENT + ["nothing"], env={"PQLEAK_OPTIONS": "help=1"})
    eq((r.rc, r.out, r.err, r.reports), (0, "", "", []), "a process that never connects")


def misspelled():
    r = run(CLIENT + ["connect", "1"], env={"PQLEAK_MAXCONNS": "1", "PQLEAK_OPTIONS": "checkout_timout=0:strict=1",
                                            "PQLEAK_MY_OWN_SCRIPT_VAR": "x"})
    eq(sorted(warnings(r.err)), [
        "pqleak: PQLEAK_MAXCONNS is not a setting (the nearest is PQLEAK_MAX_CONNS); ignored",
        "pqleak: PQLEAK_OPTIONS: 'checkout_timout' is not a setting (the nearest is checkout_timeout, "
        "PQLEAK_CHECKOUT_TIMEOUT); ignored"], "one warning for each misspelled name")
    eq(r.only_report()["settings"]["strict"], True, "the other option applies")


def malformed():
    r = run(CLIENT + ["connect", "2"], env={"PQLEAK_OPTIONS": "max_conns=1:strict"})
    eq(warnings(r.err), ["pqleak: PQLEAK_OPTIONS='max_conns=1:strict' is malformed at item 2 (a name must be "
                         "followed by '='); expected name=value:name=value; ignored"], "one warning")
    eq(r.out.strip(), "ok 2", "the malformed value is ignored whole")
    eq(r.only_report()["settings"]["max_conns"], 0, "max_conns")
    r = run(CLIENT + ["connect", "1"], env={"PQLEAK_OPTIONS": "max_conns=ten"})
    eq(warnings(r.err), ["pqleak: PQLEAK_OPTIONS max_conns='ten' is not a whole number from 0 to 1000000; "
                         "using 0"], "a bad value")


CASES = {f.__name__: f for f in (options_apply, variable_wins, help_runs_on, misspelled, malformed)}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
