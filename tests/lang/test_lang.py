"""Language runtimes under the shim, against the test server: for each client library a leaking and a
clean script (scripts/), whose reports must say what leaked, of which kind, and on which line of the
script (Python, Perl, Ruby and PHP frames in the stacks). Each function is one ctest test:
python3 test_lang.py NAME."""
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import check, environment, eq, frames, main, run, validate_schema  # noqa: E402

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
INTERPRETERS = {".py": [PYTHON], ".pl": ["/usr/bin/perl"], ".rb": ["/usr/bin/ruby"], ".php": ["/usr/bin/php"]}
LEAK_EXIT = "23"  # PQLEAK_EXITCODE in every run: the exit status tells what counted as a leak
TIMEOUT = 60
# Ruby and PHP install their own SIGUSR1 handlers: the shim says once that it keeps its hands off.
SIGNAL_TAKEN = re.compile(r"^pqleak: PQLEAK_SIGNAL=USR1: the program handles SIGUSR1 itself")
SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests (CMakeLists.txt)

# What a test needs besides the shim: a command that succeeds (run without the shim) when it is there,
# and the Debian packages that bring it (tools/deps installs them).
REQUIREMENTS = {
    "psycopg2": ([PYTHON, "-c", "import psycopg2"], "python3-psycopg2"),
    "psycopg": ([PYTHON, "-c", "import psycopg"], "python3-psycopg"),
    "psycopg_pool": ([PYTHON, "-c", "import psycopg_pool"], "python3-psycopg-pool"),
    "sqlalchemy": ([PYTHON, "-c", "import sqlalchemy"], "python3-sqlalchemy"),
    "DBD::Pg": (["/usr/bin/perl", "-MDBI", "-MDBD::Pg", "-e", "1"], "libdbd-pg-perl"),
    "ruby pg": (["/usr/bin/ruby", "-rpg", "-e", "1"], "ruby ruby-pg"),
    "PHP pgsql": (["/usr/bin/php", "-r", "exit(extension_loaded('pgsql') ? 0 : 1);"], "php-cli php-pgsql"),
    "PHP pdo_pgsql": (["/usr/bin/php", "-r", "exit(extension_loaded('pdo_pgsql') ? 0 : 1);"], "php-cli php-pgsql"),
    # The unclosed PHP scripts leave through libc's exit, called by FFI (PHP's own exits shut down first).
    "PHP FFI": (["/usr/bin/php", "-r", "FFI::cdef('int abs(int);')->abs(-1);"], "php-cli"),
}
ALL_RUNTIMES = tuple(REQUIREMENTS)


def missing(requirement):
    cmd, _ = REQUIREMENTS[requirement]
    try:
        p = subprocess.run(cmd, env=environment(preload=False), capture_output=True, timeout=TIMEOUT)
    except FileNotFoundError:
        return True
    return p.returncode != 0


def needs(*requirements):
    """The test runs only where its client libraries are installed; elsewhere it is skipped (exit 77),
    saying which Debian packages to install, so that a missing package never passes for a success."""
    def wrap(test):
        @functools.wraps(test)
        def guarded():
            absent = [q for q in requirements if missing(q)]
            if absent:
                pkgs = " ".join(REQUIREMENTS[q][1] for q in absent)
                print(f"SKIP {test.__name__}: {', '.join(absent)} not installed (Debian: {pkgs})", file=sys.stderr)
                sys.exit(SKIP)
            test()
        return guarded
    return wrap


def script(name):
    return os.path.join(SCRIPTS, name)


def marker_line(name, tag):
    """The line of the script marked `# pqleak-test: TAG` (so that the scripts can be edited freely)."""
    with open(script(name)) as f:
        lines = [i for i, text in enumerate(f, 1) if re.search(rf"pqleak-test: {tag}\b", text)]
    eq(len(lines), 1, f"lines of {name} marked {tag!r}")
    return lines[0]


def run_script(name, env=None, stdout=r"done\n", interpreter=None):
    """Runs a script under the shim with its own report directory; it must end normally having printed
    'done' (its whole output must match the regular expression STDOUT). Returns the harness's Run and the
    script's only report (validated)."""
    cmd = ([interpreter] if interpreter else INTERPRETERS[os.path.splitext(name)[1]]) + [script(name)]
    r = run(cmd, env={"PQLEAK_EXITCODE": LEAK_EXIT, **(env or {})}, timeout=TIMEOUT)
    check(re.fullmatch(stdout, r.out), f"{name} did not run to its end: stdout {r.out!r}, status {r.rc}\n{r.err}")
    rep = r.only_report()
    validate_schema(rep)
    eq(rep["trigger"], "exit", "trigger")
    check(rep["utilization"]["opened_total"] >= 1, f"{name}: no connection seen:\n{json.dumps(rep)[:2000]}")
    return r, rep


def one_leak(rep, kind):
    groups = rep["leaks"]
    check(len(groups) == 1, f"expected one leak group, got {json.dumps(groups)}")
    g = groups[0]
    eq((g["kind"], g["count"], g["suppressed"]), (kind, 1, False), "kind, count, suppressed")
    return g


# The lang of a script's frames in the stacks, by the script's extension.
LANGS = {".py": "python", ".pl": "perl", ".rb": "ruby", ".php": "php"}


def app_frame(rep, stack_id, name, line):
    """The frame of script NAME at LINE in the stack, in the script's language, or a failure listing the
    stack."""
    lang = LANGS[os.path.splitext(name)[1]]
    check(stack_id is not None, f"no stack for {name}:{line}")
    fs = frames(rep, stack_id)
    if lang != "python":  # every frame read is a place in a script: no C method or dummy frame
        junk = [f for f in fs if f["lang"] == lang and (f["file"] in (None, "?") or f["line"] <= 0)]
        eq(junk, [], f"{lang} frames without a script place")
    for i, f in enumerate(fs):
        if f["lang"] == lang and f["file"] == script(name) and f["line"] == line:
            eq(f["module"], None, f"module of a {lang} frame")
            # Innermost first: the library's code that called libpq comes before the script.
            check(all(g["lang"] == "c" or g["file"] != script(name) for g in fs[:i]), "innermost first")
            return f
    listing = "\n".join(f"  {f['lang']} {f['function']} {f['file']}:{f['line']} {f['module']}" for f in fs)
    check(False, f"stack {stack_id} has no {lang} frame {script(name)}:{line}:\n{listing}")


python_frame = app_frame


def site_names_line(r, what, name, line):
    """The text report's one-line site (WHAT: "opened by", "its transaction began in") names the
    script's line: the program's own code, not the client library's."""
    # The first site named (before any " <- " caller).
    site = re.compile(rf"{what} (?:(?! <- )[^\n])*? \({re.escape(os.path.basename(name))}:{line}\)")
    check(site.search(r.err), f"text report: {what} does not name {os.path.basename(name)}:{line}:\n{r.err}")


def text_names_line(r, name, line):
    """The text report on stderr shows the script's line too, as a frame of the script's language: what
    a developer reads first (the shim's "#N (perl) in FUNCTION FILE:LINE", pqleak run's "#N FUNCTION
    FILE:LINE [perl]")."""
    lang = LANGS[os.path.splitext(name)[1]]
    at = re.escape(f"{script(name)}:{line}")
    frame = re.compile(rf"^ +#\d+ (\({lang}\) +in \S.* {at}|\S.* {at} \[{lang}\])$", re.M)
    check(frame.search(r.err), f"text report has no ({lang}) frame {script(name)}:{line}:\n{r.err}")


def assert_clean(name, opened_at_least=1):
    r, rep = run_script(name)
    eq(r.rc, 0, f"exit status of a clean script (PQLEAK_EXITCODE={LEAK_EXIT}):\n{r.err}")
    eq(rep["leaks"], [], "leaks")
    eq(rep["connections"], [], "connections left")
    u = rep["utilization"]
    check(u["opened_total"] >= opened_at_least and u["opened_total"] == u["closed_total"], f"counts: {u}")
    noise = [l for l in r.err.splitlines() if "pqleak" in l and not SIGNAL_TAKEN.search(l)]
    eq(noise, [], f"pqleak output of a clean script:\n{r.err}")


def assert_unclosed(name, interpreter=None):
    r, rep = run_script(name, interpreter=interpreter)
    eq(r.rc, int(LEAK_EXIT), f"exit status with PQLEAK_EXITCODE={LEAK_EXIT} (the program called _exit(0)):\n{r.err}")
    g = one_leak(rep, "unclosed")
    eq(g["tx_stack"], None, "tx_stack of an idle connection")
    check("(unclosed)" in r.err and "SUMMARY: pqleak: 1 connection leaked" in r.err, r.err)
    app_frame(rep, g["stack"], name, marker_line(name, "open"))
    text_names_line(r, name, marker_line(name, "open"))
    site_names_line(r, "opened by", name, marker_line(name, "open"))
    return rep, g


def assert_teardown(name):
    r, rep = run_script(name)
    eq(r.rc, int(LEAK_EXIT), f"exit status with PQLEAK_EXITCODE={LEAK_EXIT}: teardown leaks count:\n{r.err}")
    g = one_leak(rep, "teardown")
    check(g["tx_stack"] is not None, f"a teardown leak says where its transaction began: {g}")
    check(g["stack"] != g["tx_stack"], "open and transaction stacks differ")
    check("teardown" in r.err and "its transaction began" in r.err, f"text report:\n{r.err}")
    app_frame(rep, g["stack"], name, marker_line(name, "open"))
    app_frame(rep, g["tx_stack"], name, marker_line(name, "begin"))
    text_names_line(r, name, marker_line(name, "begin"))
    site_names_line(r, "opened by", name, marker_line(name, "open"))
    site_names_line(r, "its transaction began in", name, marker_line(name, "begin"))
    return rep, g


def assert_held(name):
    """Idle at exit, closed by the runtime: listed as held, failing only in strict mode."""
    r, rep = run_script(name)
    eq(r.rc, 0, f"exit status: a held connection is no leak by default:\n{r.err}")
    g = one_leak(rep, "held")
    eq(g["tx_stack"], None, "tx_stack of an idle connection")
    python_frame(rep, g["stack"], name, marker_line(name, "open"))
    check("leaked" not in r.err, f"no leak report by default:\n{r.err}")
    r, rep = run_script(name, env={"PQLEAK_STRICT": "1"})
    eq(r.rc, int(LEAK_EXIT), f"exit status with PQLEAK_STRICT=1:\n{r.err}")
    one_leak(rep, "held")
    check("SUMMARY: pqleak: 1 connection leaked" in r.err, f"strict mode reports it:\n{r.err}")
    text_names_line(r, name, marker_line(name, "open"))
    site_names_line(r, "opened by", name, marker_line(name, "open"))


def module_names(rep, stack_id):
    return [os.path.basename(f["module"] or "") for f in frames(rep, stack_id)]


# ------------------------------------------------------------------------------------------ psycopg2

@needs("psycopg2")
def psycopg2_unclosed():
    rep, g = assert_unclosed("psycopg2_unclosed.py")
    f = python_frame(rep, g["stack"], "psycopg2_unclosed.py", marker_line("psycopg2_unclosed.py", "open"))
    eq(f["function"], "open_db", "function of the opening frame")
    eq(rep["connections"][0]["target"]["application_name"], "psycopg2_unclosed", "application_name")


@needs("psycopg2")
def psycopg2_teardown():
    rep, g = assert_teardown("psycopg2_teardown.py")
    f = python_frame(rep, g["tx_stack"], "psycopg2_teardown.py", marker_line("psycopg2_teardown.py", "begin"))
    eq(f["function"], "record", "function where the transaction began")


@needs("psycopg2")
def psycopg2_held():
    assert_held("psycopg2_held.py")


@needs("psycopg2")
def psycopg2_clean():
    assert_clean("psycopg2_clean.py", opened_at_least=4)


@needs("psycopg2")
def psycopg2_track_queries_off():
    """PQLEAK_TRACK_QUERIES=0: no command is followed, yet a connection the runtime closes inside a
    transaction is still a teardown leak (libpq's own status, read at the close) and an idle one held;
    only where the transaction began is unknown."""
    off = {"PQLEAK_TRACK_QUERIES": "0"}
    r, rep = run_script("psycopg2_teardown.py", env=off)
    eq(r.rc, int(LEAK_EXIT), f"exit status: a teardown leak counts:\n{r.err}")
    g = one_leak(rep, "teardown")
    eq(g["tx_stack"], None, "tx_stack without the query hooks")
    app_frame(rep, g["stack"], "psycopg2_teardown.py", marker_line("psycopg2_teardown.py", "open"))
    eq(rep["settings"]["track_queries"], False, "the setting in the report")
    r, rep = run_script("psycopg2_held.py", env=off)
    eq(r.rc, 0, f"exit status: a held connection is no leak:\n{r.err}")
    one_leak(rep, "held")


@needs("psycopg2")
def psycopg2_python_off():
    """PQLEAK_PYTHON=off: the same leak, its stacks without Python frames."""
    r, rep = run_script("psycopg2_teardown.py", env={"PQLEAK_PYTHON": "off"})
    g = one_leak(rep, "teardown")
    langs = {f["lang"] for s in (g["stack"], g["tx_stack"]) for f in frames(rep, s)}
    eq(langs, {"c"}, "frame languages with PQLEAK_PYTHON=off")


@needs("psycopg2")
def suspect_never_returned():
    """A connection idle in a transaction is reported as a suspect (PQLEAK_SUSPECT_IDLE_TX); the program
    never returns it, Python's finalization closes it at exit: the log says so exactly once, and the exit
    report has it as a teardown leak. The script waits for the suspect report, not for a time."""
    name = "psycopg2_suspect.py"
    r = run([PYTHON, script(name)], env={"PQLEAK_EXITCODE": LEAK_EXIT, "PQLEAK_SUSPECT_IDLE_TX": "0.2"},
            timeout=TIMEOUT)
    eq((r.out, r.rc), ("done\n", int(LEAK_EXIT)), f"stdout and exit status (a teardown leak):\n{r.err}")
    for rep in r.reports:
        validate_schema(rep)
    triggers = sorted(rep["trigger"] for rep in r.reports)
    eq(triggers, ["exit", "suspect"], f"reports written:\n{r.err}")
    sus = next(rep for rep in r.reports if rep["trigger"] == "suspect")
    ex = next(rep for rep in r.reports if rep["trigger"] == "exit")
    eq(len(sus["connections"]), 1, "connections in the suspect report")
    c = sus["connections"][0]
    eq((c["suspect"], c["tx_status"], c["target"]["application_name"]), ("idle_tx", "intrans", "psycopg2_suspect"),
       "suspect kind, transaction status, application_name")
    g = one_leak(ex, "teardown")
    eq(g["connections"], [c["id"]], "the suspect is the connection that leaked")
    python_frame(ex, g["stack"], name, marker_line(name, "open"))
    python_frame(ex, g["tx_stack"], name, marker_line(name, "begin"))
    lines = r.err.splitlines()
    warnings = [l for l in lines if "SUSPECT:" in l]
    eq(len(warnings), 1, f"one SUSPECT warning:\n{r.err}")
    check(f"connection #{c['id']} " in warnings[0] and "idle in a transaction" in warnings[0], warnings[0])
    verdicts = [l for l in lines if "reported as a suspect" in l]
    eq(len(verdicts), 1, f"one line about the suspect's end:\n{r.err}")
    check(re.fullmatch(rf"pqleak: connection #{c['id']}, reported as a suspect, was never returned: closed by the "
                       r"runtime at exit after \d+ s", verdicts[0]), f"the suspect's end:\n{r.err}")
    eq(r.err.count("was never returned: closed by the runtime at exit"), 1, f"said exactly once:\n{r.err}")
    check(lines.index(warnings[0]) < lines.index(verdicts[0]) < next(i for i, l in enumerate(lines)
                                                                     if "pqleak: ERROR:" in l),
          f"order: warning, then its end, then the exit report:\n{r.err}")


# ------------------------------------------------------------------------------------------ psycopg 3

@needs("psycopg")
def psycopg3_unclosed():
    rep, g = assert_unclosed("psycopg3_unclosed.py")
    eq(rep["connections"][0]["target"]["application_name"], "psycopg3_unclosed", "application_name")


@needs("psycopg")
def psycopg3_teardown():
    assert_teardown("psycopg3_teardown.py")


@needs("psycopg")
def psycopg3_held():
    assert_held("psycopg3_held.py")


@needs("psycopg")
def psycopg3_clean():
    assert_clean("psycopg3_clean.py", opened_at_least=4)


@needs("psycopg_pool")
def psycopg_pool_keeps():
    """A psycopg_pool connection a worker checks out and never gives back: the garbage collector closes
    it when the handler returns (psycopg_pool keeps no reference), inside the handler's transaction. That
    is the runtime closing what the program forgot (teardown), named where the worker last used it: the
    pool's own thread opened it."""
    name = "pool_psycopg3.py"
    r, rep = run_script(name, env={"POOL_MODE": "keeps"})
    eq(r.rc, int(LEAK_EXIT), f"exit status:\n{r.err}")
    line = marker_line(name, "kept")
    groups = [g for g in rep["leaks"] if g["kind"] != "held"]  # the pool's idle one, closed at exit
    check(len(groups) == 1, f"one leak group besides the pool's idle connection: {json.dumps(rep['leaks'])}")
    g = groups[0]
    eq((g["kind"], g["count"], g["suppressed"]), ("teardown", 1, False), "kind, count, suppressed")
    eq((g["site"]["function"], g["site"]["file"], g["site"]["line"]), ("handle_order", script(name), line),
       "the site: the worker's line")
    check(g["site_from"] in ("tx_stack", "last_used"), f"site_from {g['site_from']}")
    python_frame(rep, g["tx_stack"], name, line)
    check(all(f["file"] != script(name) for f in frames(rep, g["stack"])), "opened by the pool's thread")
    check(re.search(rf"last used at handle_order \(pool_psycopg3\.py:{line}\):", r.err), f"text headline:\n{r.err}")
    check("by its garbage collector inside a transaction" in r.err, r.err)
    # pqleak run's summary names the worker's line as well.
    cli = run([os.environ["PQLEAK_CLI"], "run", "--", PYTHON, script(name)], env={"POOL_MODE": "keeps"},
              preload=False, report_dir=False, timeout=TIMEOUT)
    eq(cli.rc, int(LEAK_EXIT), f"pqleak run status:\n{cli.err}")
    check(re.search(rf"1 connection leaked \(teardown[^\n]*\), last used at handle_order \(pool_psycopg3\.py:{line}\)",
                    cli.err), f"pqleak run's summary:\n{cli.err}")


@needs("psycopg_pool")
def psycopg_pool_clean():
    """The fixed twin: the handler commits and puts the connection back; the pool is closed. Nothing
    leaks, even in strict mode."""
    r, rep = run_script("pool_psycopg3.py", env={"POOL_MODE": "returns", "PQLEAK_STRICT": "1"})
    eq(r.rc, 0, f"exit status:\n{r.err}")
    eq(rep["leaks"], [], "leaks")
    u = rep["utilization"]
    check(u["opened_total"] >= 2 and u["opened_total"] == u["closed_total"], f"counts: {u}")
    eq([l for l in r.err.splitlines() if "pqleak" in l], [], f"pqleak output of the fixed twin:\n{r.err}")


@needs("psycopg", "psycopg2")
def psycopg3_hook_off():
    """PQLEAK_HOOK_DLSYM=0: ctypes finds libpq's own functions, so psycopg 3's connection goes unseen,
    while the shim stays active in the process (psycopg2, which links libpq, is still seen). Control:
    by default and with PQLEAK_HOOK_DLSYM=1 the same script's psycopg 3 connection leaks (teardown)."""
    name = "psycopg3_hook_off.py"
    for env in ({}, {"PQLEAK_HOOK_DLSYM": "1"}):
        r, rep = run_script(name, env=env)
        eq(r.rc, int(LEAK_EXIT), f"exit status with the hook on ({env}):\n{r.err}")
        g = one_leak(rep, "teardown")
        eq([c["target"]["application_name"] for c in rep["connections"]], ["psycopg3_hook_off_psycopg3"],
           f"connections left at exit with the hook on ({env})")
        python_frame(rep, g["stack"], name, marker_line(name, "open"))
        python_frame(rep, g["tx_stack"], name, marker_line(name, "begin"))
        u = rep["utilization"]
        eq((u["opened_total"], u["closed_total"]), (2, 2), f"connections seen with the hook on ({env})")
    r, rep = run_script(name, env={"PQLEAK_HOOK_DLSYM": "0", "PQLEAK_TRACE": "1"})
    eq(r.rc, 0, f"exit status with PQLEAK_HOOK_DLSYM=0: psycopg 3's leak must go unseen:\n{r.err}")
    eq(rep["leaks"], [], "leaks with PQLEAK_HOOK_DLSYM=0")
    eq(rep["connections"], [], "connections left at exit with PQLEAK_HOOK_DLSYM=0")
    u = rep["utilization"]
    eq((u["opened_total"], u["closed_total"]), (1, 1), "connections seen with PQLEAK_HOOK_DLSYM=0 (psycopg2's only)")
    opens = [l for l in r.err.splitlines() if re.match(r"pqleak: open #\d+ ", l)]
    eq(len(opens), 1, f"traced opens with PQLEAK_HOOK_DLSYM=0 (psycopg2's only):\n{r.err}")
    check("leaked" not in r.err, f"no leak report with PQLEAK_HOOK_DLSYM=0:\n{r.err}")


def pyenv_pythons(version):
    """pyenv's interpreters of CPython VERSION, newest-named last."""
    pyenv = os.path.expanduser("~/.pyenv/versions")
    if not os.path.isdir(pyenv):
        return []
    return [os.path.join(pyenv, d, "bin", f"python{version}") for d in sorted(os.listdir(pyenv))
            if d.startswith(version + ".")]


def first_interpreter(candidates, skip_reason):
    """The first executable of candidates; the test is skipped (77) with skip_reason when there is none."""
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    print(f"SKIP: {skip_reason}", file=sys.stderr)
    sys.exit(SKIP)


def cpython(version):
    """A CPython VERSION ("3.12") interpreter: PQLEAK_TEST_PYTHON3XX, /usr/bin/pythonX.Y or pyenv's; the
    test is skipped (77) when there is none (Debian 12 has 3.11 only)."""
    var = "PQLEAK_TEST_PYTHON" + version.replace(".", "")
    return first_interpreter([os.environ.get(var, ""), f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
                             + pyenv_pythons(version), f"no CPython {version} (set {var})")


def ctypes_unclosed(version):
    """libpq called through ctypes from CPython VERSION: its frames are read (3.11's, 3.12's and 3.13's
    layouts differ) and the leak is named at the script's line."""
    assert_unclosed("ctypes_unclosed.py", interpreter=cpython(version))


def python311_frames():
    ctypes_unclosed("3.11")


def python312_frames():
    ctypes_unclosed("3.12")


def python313_frames():
    ctypes_unclosed("3.13")


def unoptimized_cpython(version):
    """pyenv's CPython VERSION, or PQLEAK_TEST_PYTHON3XX_PLAIN: built without link-time optimization, which
    (as Debian's) inlines the finalizer functions the shim looks for into the deallocators. Skipped (77)
    when there is none."""
    var = "PQLEAK_TEST_PYTHON" + version.replace(".", "") + "_PLAIN"
    return first_interpreter([os.environ.get(var, "")] + pyenv_pythons(version),
                             f"no CPython {version} built without LTO (pyenv's; or set {var})")


def finalizer_teardown(mode, interpreter, open_tag, begin_tag, env=None):
    """A connection in a transaction closed by a Python finalizer (scripts/python_finalizer.py, FINALIZER=
    mode): the runtime closing what the program forgot (teardown), named where it was opened and where its
    transaction began."""
    name = "python_finalizer.py"
    r, rep = run_script(name, env={"FINALIZER": mode, **(env or {})}, interpreter=interpreter)
    eq(r.rc, int(LEAK_EXIT), f"exit status ({mode}, {interpreter}):\n{r.err}")
    g = one_leak(rep, "teardown")
    app_frame(rep, g["stack"], name, marker_line(name, open_tag))
    app_frame(rep, g["tx_stack"], name, marker_line(name, begin_tag))


def finalizers(version):
    """Python finalizers closing forgotten connections, under CPython VERSION: the shim walks the stack
    for them only where the thread's state shows that one can be running (pyframes.c's may_finalize): a
    dropped object's __del__ (inside the dealloc's trashcan) and a dropped generator's finally block
    (GeneratorExit handled). 3.13's state is not read: there every close walks, and finds them too."""
    py = unoptimized_cpython(version)
    finalizer_teardown("del", py, "open", "begin")
    finalizer_teardown("generator", py, "gen_open", "begin")


def python311_finalizers():
    finalizers("3.11")


def python312_finalizers():
    finalizers("3.12")


def python313_finalizers():
    finalizers("3.13")


def python311_generator_local():
    """A dropped generator's local psycopg2 connection (no finally), released with the generator's frame
    when the GeneratorExit's traceback goes: teardown. psycopg2 is Debian's, built for 3.11."""
    py = unoptimized_cpython("3.11")
    env = {"PYTHONPATH": "/usr/lib/python3/dist-packages"}
    if subprocess.run([py, "-c", "import psycopg2"], env=environment(env, preload=False),
                      capture_output=True, timeout=TIMEOUT).returncode != 0:
        print(f"SKIP: {py} cannot import Debian's psycopg2 (python3-psycopg2)", file=sys.stderr)
        sys.exit(SKIP)
    finalizer_teardown("generator_local", py, "local_open", "local_begin", env)


def c_with_libpython():
    """A C program that loaded libpython without running it connects from 40 nested C calls: no interpreter
    frame among the first frames walked, so the capture walks the whole stack (stack.c), and the report
    keeps PQLEAK_STACK_DEPTH (32) frames of it, not the first few."""
    lib = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
    if not os.path.exists(lib):
        print(f"SKIP: no {lib} (Debian: libpython3.11)", file=sys.stderr)
        sys.exit(SKIP)
    r = run([os.path.join(os.environ["PQLEAK_BIN"], "lang_deep_c"), lib, "40"], env={"PQLEAK_EXITCODE": LEAK_EXIT})
    eq((r.out, r.rc), ("0\n", int(LEAK_EXIT)), f"stdout and exit status (one unclosed connection):\n{r.err}")
    rep = r.only_report()
    g = one_leak(rep, "unclosed")
    names = [f["function"] for f in frames(rep, g["stack"])]
    eq(len(names), 32, f"frames kept: {names}")
    check(names.count("deep_call") >= 25, f"the nested calls: {names}")


# ------------------------------------------------------------------------------------------ SQLAlchemy

@needs("sqlalchemy", "psycopg2")
def sqlalchemy_teardown():
    """A pooled connection: opened by the pool for warm_up(), its transaction begun by the forgotten
    session in count_orders(). The second is the culprit."""
    name = "sqlalchemy_teardown.py"
    rep, g = assert_teardown(name)
    eq(python_frame(rep, g["stack"], name, marker_line(name, "open"))["function"], "warm_up", "opened in")
    eq(python_frame(rep, g["tx_stack"], name, marker_line(name, "begin"))["function"], "count_orders",
       "transaction begun in")
    tx_files = [f["file"] for f in frames(rep, g["tx_stack"]) if f["lang"] == "python"]
    check(any("/sqlalchemy/" in (f or "") for f in tx_files), f"SQLAlchemy's own frames listed too: {tx_files}")


@needs("sqlalchemy", "psycopg2")
def sqlalchemy_idle_pool():
    assert_held("sqlalchemy_idle_pool.py")


@needs("sqlalchemy", "psycopg2")
def sqlalchemy_clean():
    assert_clean("sqlalchemy_clean.py")


# ------------------------------------------------------------------------------------------ Perl DBD::Pg

@needs("DBD::Pg")
def dbd_pg_teardown():
    rep, g = assert_teardown("dbd_pg_teardown.pl")
    check("Pg.so" in module_names(rep, g["stack"]), f"opened in DBD::Pg: {module_names(rep, g['stack'])}")
    check("Pg.so" in module_names(rep, g["tx_stack"]), f"began in DBD::Pg: {module_names(rep, g['tx_stack'])}")


@needs("DBD::Pg")
def dbd_pg_teardown_lexical():
    assert_teardown("dbd_pg_teardown_lexical.pl")


@needs("DBD::Pg")
def dbd_pg_unclosed():
    rep, g = assert_unclosed("dbd_pg_unclosed.pl")
    check("Pg.so" in module_names(rep, g["stack"]), f"opened in DBD::Pg: {module_names(rep, g['stack'])}")


@needs("DBD::Pg")
def dbd_pg_held():
    assert_held("dbd_pg_held.pl")


@needs("DBD::Pg")
def dbd_pg_clean():
    assert_clean("dbd_pg_clean.pl")


def dbd_pg_scoped():
    assert_clean("dbd_pg_scoped.pl", opened_at_least=4)


def dbd_pg_end_block():
    assert_clean("dbd_pg_end_block.pl")


def assert_perl_exit(name, base, how):
    """Two handles in transactions when the program leaves through HOW: a global, destroyed in Perl's
    global destruction, and a lexical of the sub that leaves, freed while HOW unwinds the program's
    scopes. Both are teardown leaks with their transaction's stack."""
    r, rep = run_script(name)
    eq(r.rc, int(LEAK_EXIT), f"exit status with PQLEAK_EXITCODE={LEAK_EXIT}: teardown leaks count:\n{r.err}")
    conns = {c["target"]["application_name"]: c for c in rep["connections"]}
    group_of = {cid: g for g in rep["leaks"] for cid in g["connections"]}
    for handle, freed in (("global", "in Perl's global destruction"), ("lexical", f"while {how} unwinds")):
        app = f"{base}_{handle}"
        check(app in conns, f"the {handle} handle (freed {freed}) is not in the exit report: its rolled-back "
                            f"transaction went unreported; connections: {sorted(conns)}\n{r.err}")
        g = group_of.get(conns[app]["id"])
        check(g is not None, f"the {handle} handle is in no leak group: {json.dumps(rep['leaks'])}")
        eq((g["kind"], g["suppressed"]), ("teardown", False), f"kind of the {handle} handle's leak (freed {freed})")
        check(g["tx_stack"] is not None and g["tx_stack"] != g["stack"],
              f"the {handle} handle's leak says where its transaction began: {g}")
        for what in ("stack", "tx_stack"):
            check("Pg.so" in module_names(rep, g[what]), f"{what} in DBD::Pg: {module_names(rep, g[what])}")
    eq(sum(g["count"] for g in rep["leaks"]), 2, f"leaked connections: {json.dumps(rep['leaks'])}")
    check("SUMMARY: pqleak: 2 connections leaked" in r.err and "its transaction began in" in r.err,
          f"text report:\n{r.err}")
    return r


@needs("DBD::Pg")
def dbd_pg_exit():
    assert_perl_exit("dbd_pg_exit.pl", "dbd_pg_exit", "exit")


@needs("DBD::Pg")
def dbd_pg_die():
    r = assert_perl_exit("dbd_pg_die.pl", "dbd_pg_die", "die")
    check("dbd_pg_die: giving up" in r.err, f"the program died:\n{r.err}")


# A refusal at PQLEAK_MAX_CONNS=1 while this thread holds the only connection: no wait is possible.
REFUSAL = re.compile(r"connection refused by pqleak \((?P<why>[^)]*)\): PQLEAK_MAX_CONNS=1 reached, 1 open, "
                     r"waited (?P<waited>\d+\.\d) s; 1 held by (?P<holder>.+), oldest \d+\.\d s")


def assert_refused(name, whys):
    """Runs a refusal script: it holds one connection, is refused a second, prints 'refused: MESSAGE' as
    its client library gave it, closes the first and connects again. The holder is named by the script's
    line that opened it (marked open). Returns the report."""
    r, rep = run_script(name, env={"PQLEAK_MAX_CONNS": "1", "PQLEAK_CHECKOUT_TIMEOUT": "5"},
                        stdout=r"refused: [^\n]*\ndone\n")
    eq(r.rc, 0, f"exit status (no connection leaked):\n{r.err}")
    msg = r.out.splitlines()[0][len("refused: "):]
    m = REFUSAL.fullmatch(msg)
    check(m, f"the client library's error is not pqleak's refusal: {msg!r}\n{r.err}")
    check(m["why"] in whys, f"refused without waiting ({' or '.join(whys)}): {msg!r}")
    eq(m["waited"], "0.0", f"waited: {msg!r}")
    site = f"({os.path.basename(name)}:{marker_line(name, 'open')})"
    check(site in m["holder"], f"the holder is named by the script's line that opened it {site}: {msg!r}")
    u = rep["utilization"]
    eq((u["cap"], u["peak_open"], u["refused_total"], u["opened_total"], u["closed_total"], u["open"]),
       (1, 1, 1, 2, 2, 0), f"cap, peak, refused, opened, closed, open: {u}")
    eq((u["waits_total"], u["timeouts_total"]), (0, 0), f"waits and timeouts: {u}")
    return rep


@needs("DBD::Pg")
def dbd_pg_refused():
    """DBI->connect returns undef and $DBI::errstr is pqleak's message."""
    rep = assert_refused("dbd_pg_refused.pl",
                         ["would wait forever: this thread holds connections and every other holder is waiting"])
    eq(rep["leaks"], [], "leaks (DBD::Pg finishes the refused connection itself)")
    eq(rep["connections"], [], "connections left")


# ------------------------------------------------------------------------------------------ Ruby pg

@needs("ruby pg")
def ruby_pg_teardown():
    rep, g = assert_teardown("ruby_pg_teardown.rb")
    check("pg_ext.so" in module_names(rep, g["stack"]), f"opened in pg_ext: {module_names(rep, g['stack'])}")


@needs("ruby pg")
def ruby_pg_thread_teardown():
    """A worker thread's connect and transaction first, then the main program's leak: what the shim learns
    on the worker's stack (no ruby_run_node there) is that thread's alone, the main thread's teardown is
    still seen."""
    rep, g = assert_teardown("ruby_pg_thread_teardown.rb")
    u = rep["utilization"]
    eq((u["opened_total"], u["closed_total"]), (2, 2), "the worker's connection and the leaked one")


@needs("ruby pg")
def ruby_pg_unclosed():
    assert_unclosed("ruby_pg_unclosed.rb")


@needs("ruby pg")
def ruby_pg_held():
    assert_held("ruby_pg_held.rb")


@needs("ruby pg")
def ruby_pg_clean():
    assert_clean("ruby_pg_clean.rb")


@needs("ruby pg")
def ruby_pg_refused():
    """PG::ConnectionBad's message is pqleak's. pg connects without blocking (PQconnectStart), which is
    refused at once; a pg that connected blocking would get the would-wait-forever refusal."""
    rep = assert_refused("ruby_pg_refused.rb",
                         ["non-blocking connect, no free slot",
                          "would wait forever: this thread holds connections and every other holder is waiting"])
    # pg raises without finishing the refused PGconn; its finalizer frees it at exit: a refused connection
    # held nothing, so that is no leak, not even "held" (PQLEAK_STRICT=1 would count one).
    eq(rep["leaks"], [], "leaks (the refused connection freed by the runtime is none)")


# ------------------------------------------------------------------------------------------ PHP

@needs("PHP pgsql")
def php_pgsql_teardown():
    assert_teardown("php_pgsql_teardown.php")


@needs("PHP pgsql", "PHP FFI")
def php_pgsql_unclosed():
    assert_unclosed("php_pgsql_unclosed.php")


@needs("PHP pgsql", "PHP FFI")
def php_ffi_underscore_exit():
    """_exit called through PHP FFI: the shim's _exit (PHP loads ffi.so with RTLD_DEEPBIND, dropped)."""
    assert_unclosed("php_ffi_underscore_exit.php")


@needs("PHP pgsql")
def php_pgsql_held():
    assert_held("php_pgsql_held.php")


@needs("PHP pgsql")
def php_pgsql_clean():
    assert_clean("php_pgsql_clean.php")


@needs("PHP pdo_pgsql")
def pdo_pgsql_teardown():
    assert_teardown("pdo_pgsql_teardown.php")


@needs("PHP pdo_pgsql", "PHP FFI")
def pdo_pgsql_unclosed():
    assert_unclosed("pdo_pgsql_unclosed.php")


@needs("PHP pdo_pgsql")
def pdo_pgsql_held():
    assert_held("pdo_pgsql_held.php")


@needs("PHP pdo_pgsql")
def pdo_pgsql_clean():
    assert_clean("pdo_pgsql_clean.php")


@needs("PHP pgsql", "PHP pdo_pgsql")
def php_frames():
    """The extension that opened the connection is named in the stack (PHP unloads its extensions at
    shutdown, before the exit report is written)."""
    for name, ext in (("php_pgsql_teardown.php", "pgsql.so"), ("pdo_pgsql_teardown.php", "pdo_pgsql.so")):
        _, rep = run_script(name)
        g = one_leak(rep, "teardown")
        mods = module_names(rep, g["stack"])
        check(ext in mods, f"{name}: the opening stack names {ext}: {mods}")
        stray = [m for m in mods if m and m not in (ext, "pdo.so", "libpq.so.5") and not m.startswith("php")
                 and not m.startswith("libc.so")]
        eq(stray, [], f"{name}: frames attributed to libraries PHP did not call through")


# ------------------------------------------------------------------------------------------ strict mode

@needs("psycopg2", "DBD::Pg")
def strict_shim():
    """The shim itself (no pqleak command that would count held connections again) honours PQLEAK_STRICT:
    a connection closed idle by the runtime at exit is listed as held, and fails the process only in
    strict mode."""
    for name in ("psycopg2_held.py", "dbd_pg_held.pl"):
        for strict in (None, "0", "1"):
            env = {"PQLEAK_STRICT": strict} if strict else {}
            r, rep = run_script(name, env=env)
            on = strict == "1"
            what = f"{name} with PQLEAK_STRICT={strict or 'unset'}"
            eq(rep["settings"]["strict"], on, f"{what}: settings.strict of the report")
            g = one_leak(rep, "held")
            eq(g["tx_stack"], None, f"{what}: tx_stack of an idle connection")
            eq([(c["status"], c["tx_status"]) for c in rep["connections"]], [("ok", "idle")],
               f"{what}: the held connection")
            if on:
                eq(r.rc, int(LEAK_EXIT), f"{what}: exit status (PQLEAK_EXITCODE={LEAK_EXIT}):\n{r.err}")
                check("(held: closed idle by the runtime at exit or by its garbage collector)" in r.err and
                      "SUMMARY: pqleak: 1 connection leaked in 1 group" in r.err, f"{what}: text report:\n{r.err}")
            else:
                eq(r.rc, 0, f"{what}: exit status (a held connection is no leak):\n{r.err}")
                check("leaked" not in r.err and "SUMMARY" not in r.err, f"{what}: no leak report:\n{r.err}")


# ------------------------------------------------------------------------------------------ pqleak run

def write_mixed(names):
    """A shell script running the given scripts one after the other; returns its path."""
    d = tempfile.mkdtemp(prefix="pqleak-lang-")
    path = os.path.join(d, "mixed.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nset -e\n")
        for n in names:
            f.write(" ".join(INTERPRETERS[os.path.splitext(n)[1]] + [script(n)]) + "\n")
    os.chmod(path, 0o755)
    return path, d


def pqleak_run(names, *opts):
    path, d = write_mixed(names)
    json_path = os.path.join(d, "merged.json")
    r = run([os.environ["PQLEAK_CLI"], "run", "--json", json_path, *opts, "--", path], preload=False,
            report_dir=False, timeout=4 * TIMEOUT)
    with open(json_path) as f:
        merged = json.load(f)
    shutil.rmtree(d)
    eq(merged["trigger"], "merged", "trigger")
    return r, merged


PROGRAMS = ("python3", "perl", "ruby", "php")


def program_kind(program):
    base = os.path.basename(program or "")
    return next((p for p in PROGRAMS if base.startswith(p)), base)


@needs(*ALL_RUNTIMES)
def mixed_leaks():
    names = ["psycopg2_teardown.py", "psycopg3_unclosed.py", "sqlalchemy_teardown.py", "dbd_pg_teardown.pl",
             "ruby_pg_teardown.rb", "php_pgsql_teardown.php", "pdo_pgsql_teardown.php", "psycopg2_held.py"]
    r, merged = pqleak_run(names)
    eq(r.rc, 23, f"pqleak run status:\n{r.err}")
    eq(len(merged["processes"]), len(names), f"processes: {merged['processes']}")
    eq(sorted({program_kind(p["program"]) for p in merged["processes"]}), sorted(PROGRAMS), "programs")
    counted = [g for g in merged["leaks"] if g["kind"] != "held"]
    eq(sum(g["count"] for g in counted), 7, f"leaked connections: {json.dumps(merged['leaks'])}")
    kinds = sorted(g["kind"] for g in merged["leaks"])
    eq(kinds, ["held"] + ["teardown"] * 6 + ["unclosed"], "leak kinds")
    for p in PROGRAMS:
        check(any(program_kind(q["program"]) == p for g in counted for q in g["processes"]),
              f"a leak of {p} in the merged report")
    check(re.search(r"7 connections leaked in 7 groups across \d+ processes", r.err), f"summary:\n{r.err}")
    for p in ("python3", "perl", "ruby", "php"):
        check(re.search(rf"in: \S*/{p}\S* \(pid \d+\)", r.err), f"{p} named in the summary:\n{r.err}")
    # The developer's line is in the merged text too.
    text_names_line(r, "sqlalchemy_teardown.py", marker_line("sqlalchemy_teardown.py", "begin"))
    # Strict: the held connection counts as well.
    r, merged = pqleak_run(["psycopg2_held.py", "sqlalchemy_idle_pool.py"])
    eq(r.rc, 0, f"pqleak run status with held connections only:\n{r.err}")
    r, merged = pqleak_run(["psycopg2_held.py", "sqlalchemy_idle_pool.py"], "--strict")
    eq(r.rc, 23, f"pqleak run --strict status with held connections:\n{r.err}")


@needs(*ALL_RUNTIMES)
def mixed_clean():
    names = ["psycopg2_clean.py", "psycopg3_clean.py", "sqlalchemy_clean.py", "dbd_pg_clean.pl", "ruby_pg_clean.rb",
             "php_pgsql_clean.php", "pdo_pgsql_clean.php"]
    r, merged = pqleak_run(names, "--strict")
    eq(r.rc, 0, f"pqleak run status:\n{r.err}")
    eq(merged["leaks"], [], "leaks")
    eq(len(merged["processes"]), len(names), f"processes: {merged['processes']}")
    eq(sorted({program_kind(p["program"]) for p in merged["processes"]}), sorted(PROGRAMS), "programs")


main({f.__name__: f for f in (psycopg2_unclosed, psycopg2_teardown, psycopg2_held, psycopg2_clean,
                              psycopg2_track_queries_off, psycopg2_python_off,
                              suspect_never_returned,
                              psycopg3_unclosed, psycopg3_teardown, psycopg3_held, psycopg3_clean, psycopg3_hook_off,
                              psycopg_pool_keeps, psycopg_pool_clean, python311_frames, python312_frames, python313_frames,
                              python311_finalizers, python312_finalizers, python313_finalizers,
                              python311_generator_local, c_with_libpython,
                              sqlalchemy_teardown, sqlalchemy_idle_pool, sqlalchemy_clean,
                              dbd_pg_teardown, dbd_pg_teardown_lexical, dbd_pg_unclosed, dbd_pg_held, dbd_pg_clean, dbd_pg_scoped, dbd_pg_end_block,
                              dbd_pg_exit, dbd_pg_die, dbd_pg_refused,
                              ruby_pg_teardown, ruby_pg_thread_teardown, ruby_pg_unclosed, ruby_pg_held, ruby_pg_clean, ruby_pg_refused,
                              php_pgsql_teardown, php_pgsql_unclosed, php_pgsql_held, php_pgsql_clean,
                              php_ffi_underscore_exit,
                              pdo_pgsql_teardown, pdo_pgsql_unclosed, pdo_pgsql_held, pdo_pgsql_clean, php_frames,
                              strict_shim, mixed_leaks, mixed_clean)})
