"""Integration tests of the core shim: a real server (fixture "pg"), the C test program it_prog and
real clients. Each function is one ctest test: python3 test_core.py NAME."""
import os
import re
import subprocess
import tempfile

from harness import (PROG, SHIM, check, eq, frames, innermost_user_function, leaks, main, run,
                     validate_schema)

PQLEAK_LINE = re.compile(r"^(==\d+==)?pqleak", re.M)


def two_sites():
    r = run([PROG, "two-sites"])
    eq(r.rc, 0, "exit status (PQLEAK_EXITCODE unset)")
    rep = r.only_report()
    validate_schema(rep)
    eq(rep["trigger"], "exit", "trigger")
    eq(rep["utilization"]["opened_total"], 4, "opened_total")
    eq(rep["utilization"]["closed_total"], 1, "closed_total")
    groups = leaks(rep)
    eq(sorted(g["count"] for g in groups), [1, 2], "leak group counts")
    by_fn = {}
    for g in groups:
        fs = frames(rep, g["stack"])
        names = [f["function"] for f in fs]
        check("connect_ok" == names[0], f"innermost frame is the caller of PQconnectdb: {names}")
        fn = next(n for n in names if n in ("leak_into_global", "leak_and_drop"))
        f = fs[names.index(fn)]
        check(f["file"] and f["file"].endswith("prog.c") and f["line"] > 0, f"file:line of {fn}: {f}")
        eq(f["lang"], "c", "lang")
        eq(g["kind"], "unclosed", "kind")
        by_fn[fn] = g
    eq(sorted(by_fn), ["leak_and_drop", "leak_into_global"], "leaking functions")
    eq(by_fn["leak_and_drop"]["count"], 2, "connections leaked by leak_and_drop")
    eq(len(rep["connections"]), 3, "leaked connections listed")
    # The text report names both functions with file and line, and ends with the summary.
    for fn in ("leak_into_global", "leak_and_drop"):
        check(re.search(rf"in {fn} \S*prog\.c:\d+", r.err), f"text report lacks {fn} with file:line:\n{r.err}")
    check("SUMMARY: pqleak: 3 connections leaked in 2 groups" in r.err, f"summary line:\n{r.err}")


def entry_points_clean():
    r = run([PROG, "entry-points"])
    eq(r.rc, 0, "exit status")
    check(not PQLEAK_LINE.search(r.err), f"no pqleak output expected:\n{r.err}")
    rep = r.only_report()
    validate_schema(rep)
    # One record per connection however libpq nests its calls; PQping's own connection not counted.
    eq(rep["utilization"]["opened_total"], 6, "opened_total")
    eq(rep["utilization"]["closed_total"], 6, "closed_total")
    eq(rep["utilization"]["peak_open"], 6, "peak_open")
    eq(rep["leaks"], [], "leaks")


def entry_points_leak():
    r = run([PROG, "entry-points-leak"])
    rep = r.only_report()
    eq(rep["utilization"]["opened_total"], 6, "opened_total")
    eq(sum(g["count"] for g in leaks(rep)), 6, "leaked connections")
    for c in rep["connections"]:
        eq(c["status"], "ok", "status")
        check(isinstance(c["server_pid"], int), "server pid")
    names = [c["target"]["application_name"] for c in rep["connections"]]
    eq(names.count("entry-points"), 4, f"application_name of the connections that set it: {names}")
    # PQreset kept the record: still 6 connections, the first with its new server pid.
    eq(len(rep["connections"]), 6, "connections")


def threads():
    r = run([PROG, "threads"])
    eq(r.rc, 0, "exit status")
    check(not PQLEAK_LINE.search(r.err), f"no pqleak output expected:\n{r.err}")
    u = r.only_report()["utilization"]
    eq((u["opened_total"], u["closed_total"], u["open"], u["failed_total"]), (200, 200, 0, 0),
       "opened, closed, open, failed")


def failed_freed():
    r = run([PROG, "failed"])
    eq(r.rc, 0, "exit status")
    rep = r.only_report()
    eq(rep["leaks"], [], "leaks")
    eq(rep["utilization"]["failed_total"], 1, "failed_total")
    eq(rep["utilization"]["open"], 0, "a failed connection holds no slot")


def failed_leaked():
    r = run([PROG, "failed-leak"])
    rep = r.only_report()
    groups = leaks(rep)
    eq(len(groups), 1, "groups")
    eq(innermost_user_function(rep, groups[0]["stack"]), "leak_failed", "leaking function")
    eq(rep["connections"][0]["status"], "bad", "status of a failed connection")
    check("failed to connect" in r.err, f"text says the connection failed:\n{r.err}")


def secrets():
    r = run([PROG, "secrets"], env={"PQLEAK_TRACE": "1"})
    rep = r.only_report()
    eq(sum(g["count"] for g in leaks(rep)), 4, "leaked connections")
    text = r.err + str(rep)
    check("Secret" not in text, f"a password leaked into the output:\n{text}")
    users = sorted(c["target"]["user"] or "" for c in rep["connections"])
    check("alice" in users and "bob" in users and "carol" in users, f"users kept: {users}")


def exitcode():
    r = run([PROG, "two-sites"], env={"PQLEAK_EXITCODE": "7"})
    eq(r.rc, 7, "exit status with leaks")
    r = run([PROG, "entry-points"], env={"PQLEAK_EXITCODE": "7"})
    eq(r.rc, 0, "exit status without leaks")
    r = run([PROG, "stdout"], env={"PQLEAK_EXITCODE": "7"})
    eq(r.rc, 7, "exit status with leaks")
    eq(r.out, "buffered output survives\n", "the program's buffered stdout")


def underscore_exit():
    r = run([PROG, "_exit"])
    eq(r.rc, 5, "the program's own _exit status")
    eq(sum(g["count"] for g in leaks(r.only_report())), 1, "leak reported through _exit")
    r = run([PROG, "_exit"], env={"PQLEAK_EXITCODE": "9"})
    eq(r.rc, 9, "PQLEAK_EXITCODE through _exit")


def underscore_Exit():
    r = run([PROG, "_Exit"])
    eq(r.rc, 6, f"the program's own _Exit status:\n{r.err}")
    rep = r.only_report()
    eq(sum(g["count"] for g in leaks(rep)), 1, "leak reported through _Exit")
    eq(innermost_user_function(rep, leaks(rep)[0]["stack"]), "connect_ok", "leak site")
    check("SUMMARY: pqleak: 1 connection leaked in 1 group" in r.err, f"text report through _Exit:\n{r.err}")
    r = run([PROG, "_Exit"], env={"PQLEAK_EXITCODE": "9"})
    eq(r.rc, 9, "PQLEAK_EXITCODE through _Exit")


def trace():
    """PQLEAK_TRACE=1: one line per open and one per close, naming the same connection."""
    n = 7
    r = run([PROG, "open-close", str(n)], env={"PQLEAK_TRACE": "1"})
    eq(r.rc, 0, f"exit status:\n{r.err}")
    opens = re.findall(r"^pqleak: open #(\d+) ok host=(\S+) port=\S+ dbname=\S+ user=\S+ \(thread \d+\)$", r.err, re.M)
    closes = re.findall(r"^pqleak: close #(\d+) after [\d.]+ s$", r.err, re.M)
    eq(len(opens), n, f"open lines:\n{r.err}")
    eq(len(closes), n, f"close lines:\n{r.err}")
    eq([int(i) for i, _ in opens], list(range(1, n + 1)), "connections opened, in order")
    eq([int(i) for i in closes], list(range(1, n + 1)), "connections closed, in order")
    check(all(h == os.environ["PGHOST"] for _, h in opens), f"hosts: {opens}")
    eq(len(r.err.splitlines()), 2 * n, f"no other line:\n{r.err}")
    u = r.only_report()["utilization"]
    eq((u["opened_total"], u["closed_total"]), (n, n), "opened, closed")
    # Every entry point (blocking, non-blocking, PQreset, PQping): still one open and one close line per
    # connection.
    r = run([PROG, "entry-points"], env={"PQLEAK_TRACE": "1"})
    eq(r.rc, 0, f"exit status:\n{r.err}")
    eq(sorted(int(i) for i in re.findall(r"^pqleak: open #(\d+) ", r.err, re.M)), list(range(1, 7)),
       f"open lines of the six connections:\n{r.err}")
    eq(sorted(int(i) for i in re.findall(r"^pqleak: close #(\d+) ", r.err, re.M)), list(range(1, 7)),
       f"close lines of the six connections:\n{r.err}")
    # Without PQLEAK_TRACE: no line at all.
    r = run([PROG, "open-close", str(n)])
    eq((r.rc, r.err), (0, ""), "status and log without PQLEAK_TRACE")


def client_port():
    """client_port is the client's local TCP port (the server's pg_stat_activity.client_port), null for a
    unix socket. The test server has no TCP listener: a forwarder here accepts on 127.0.0.1 and relays
    each connection to the server's unix socket, noting the client's port."""
    import socket
    import threading
    sock_path = os.path.join(os.environ["PGHOST"], f".s.PGSQL.{os.environ['PGPORT']}")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    peers = []

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            try:
                c, addr = lsock.accept()
            except OSError:
                return
            peers.append(addr[1])
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(sock_path)
            threading.Thread(target=pump, args=(c, u), daemon=True).start()
            threading.Thread(target=pump, args=(u, c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    port = lsock.getsockname()[1]
    r = run([PROG, "client-port", f"host=127.0.0.1 port={port} sslmode=disable gssencmode=disable"])
    lsock.close()
    eq(r.rc, 0, f"exit status:\n{r.out}{r.err}")
    eq(len(peers), 1, f"connections through the forwarder: {peers}")
    m = re.fullmatch(r"tcp=(\d+) unix=(\d+)\n", r.out)
    check(m, f"program output: {r.out!r}")
    by_pid = {c["server_pid"]: c for c in r.only_report()["connections"]}
    eq(sorted(by_pid), sorted([int(m.group(1)), int(m.group(2))]), "server pids of the leaked connections")
    tcp, unix = by_pid[int(m.group(1))], by_pid[int(m.group(2))]
    eq((tcp["target"]["host"], tcp["target"]["port"]), ("127.0.0.1", str(port)), "target of the TCP connection")
    eq(tcp["client_port"], peers[0], "client_port of the TCP connection (its local port)")
    eq(unix["target"]["host"], os.environ["PGHOST"], "target of the unix-socket connection")
    eq(unix["client_port"], None, "client_port of the unix-socket connection")


def fork():
    r = run([PROG, "fork"])
    eq(r.rc, 0, "exit status")
    eq(len(r.reports), 2, "reports (parent and child)")
    parent = [x for x in r.reports if not x["leaks"]]
    child = [x for x in r.reports if x["leaks"]]
    eq((len(parent), len(child)), (1, 1), "one clean parent report, one leaking child report")
    eq(child[0]["utilization"]["opened_total"], 1, "the child counts only its own connections")
    eq(len(child[0]["connections"]), 1, "the child reports only its own connection")
    check(child[0]["pid"] != parent[0]["pid"], "different pids")


def atexit_close():
    r = run([PROG, "atexit"])
    eq(r.only_report()["leaks"], [], "connection closed in an atexit handler is no leak")


def quiet():
    logdir = tempfile.mkdtemp()
    log = os.path.join(logdir, "log-%p")
    env = {"PQLEAK_LOG": log, "PQLEAK_MAX_CONNS": "bogus"}
    r = run([PROG, "quiet"], env=env)
    eq(r.rc, 3, "the program's exit status")
    eq((r.out, r.err), ("", ""), "output")
    eq(r.reports, [], "reports")
    eq(os.listdir(logdir), [], "files in the log directory")
    for cmd in (["sh", "-c", "exit 4"], ["true"]):
        r = run(cmd, env=env)
        eq((r.rc != 0, r.err, r.reports), (cmd[0] == "sh", "", []), f"{cmd} under the shim")
    eq(os.listdir(logdir), [], "files in the log directory")


def malformed_setting():
    r = run([PROG, "two-sites"], env={"PQLEAK_STACK_DEPTH": "lots", "PQLEAK_EXITCODE": "-3"})
    warnings = [l for l in r.err.splitlines() if l.startswith("pqleak: PQLEAK_")]
    eq(len(warnings), 2, f"one warning per malformed variable:\n{r.err}")
    check("PQLEAK_EXITCODE='-3'" in warnings[0] and "using 0" in warnings[0], warnings[0])
    check("PQLEAK_STACK_DEPTH='lots'" in warnings[1] and "using 32" in warnings[1], warnings[1])
    eq(r.rc, 0, "exit status with the default exit code")


def disable():
    r = run([PROG, "two-sites"], env={"PQLEAK_DISABLE": "1"})
    eq((r.rc, r.err, r.reports), (0, "", []), "status, output, reports when disabled")


def stack_depth():
    r = run([PROG, "two-sites"], env={"PQLEAK_STACK_DEPTH": "1"})
    for fs in r.only_report()["stacks"].values():
        eq(len(fs), 1, "frames per stack")


def suppressions():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "supp")
    # A malformed line refuses the whole file, as pqleak does: nothing is suppressed (a gate fails closed).
    with open(path, "w") as f:
        f.write("# known leak in the dropper\nleak:leak_and_*\n\nnot a rule\n")
    r = run([PROG, "two-sites"], env={"PQLEAK_SUPPRESSIONS": path, "PQLEAK_EXITCODE": "7"})
    check(f"{path}:4: not a suppression rule" in r.err and "using no suppressions" in r.err,
          f"malformed line named with file:line:\n{r.err}")
    eq((len(leaks(r.only_report(), suppressed=True)), r.rc), (0, 7), "suppressed groups and status of a refused file")
    with open(path, "w") as f:
        f.write("# known leak in the dropper\nleak:leak_and_*  # the dropper, see #123\n\n")
    r = run([PROG, "two-sites"], env={"PQLEAK_SUPPRESSIONS": path, "PQLEAK_EXITCODE": "7"})
    rep = r.only_report()
    sup = leaks(rep, suppressed=True)
    eq(len(sup), 1, "suppressed groups")
    eq((sup[0]["count"], sup[0]["rule"]), (2, "leak:leak_and_*"), "suppressed group")
    eq(len(leaks(rep)), 1, "unsuppressed groups")
    check("2 leak:leak_and_*" in r.err, f"rule with hit count in text:\n{r.err}")
    eq(r.rc, 7, "exit status: one unsuppressed leak remains")
    # Suppress everything, by module path and by file name: exit status unchanged, no text report.
    with open(path, "w") as f:
        f.write("leak:*/it_prog\n")
    r = run([PROG, "two-sites"], env={"PQLEAK_SUPPRESSIONS": path, "PQLEAK_EXITCODE": "7"})
    eq((r.rc, r.err), (0, ""), "all suppressed by module")
    with open(path, "w") as f:
        f.write("leak:prog.c\n")
    r = run([PROG, "two-sites"], env={"PQLEAK_SUPPRESSIONS": path, "PQLEAK_EXITCODE": "7"})
    eq(r.rc, 0, "all suppressed by file")
    r = run([PROG, "two-sites"], env={"PQLEAK_SUPPRESSIONS": "/nonexistent/supp"})
    check("PQLEAK_SUPPRESSIONS: /nonexistent/supp: cannot read suppressions" in r.err and
          "using no suppressions" in r.err, r.err)
    # A FIFO with no writer is refused at once, never waited on.
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    r = run([PROG, "two-sites"], env={"PQLEAK_SUPPRESSIONS": fifo}, timeout=20)
    check("PQLEAK_SUPPRESSIONS: " in r.err and "using no suppressions" in r.err, r.err)


def log_file():
    d = tempfile.mkdtemp()
    r = run([PROG, "two-sites"], env={"PQLEAK_LOG": os.path.join(d, "leaks-%p.log")}, report_dir=False)
    eq(r.err, "", "stderr when logging to a file")
    files = os.listdir(d)
    eq(len(files), 1, "log files")
    check(re.fullmatch(r"leaks-\d+\.log", files[0]), files[0])
    text = open(os.path.join(d, files[0])).read()
    check("SUMMARY: pqleak: 3 connections leaked" in text, text)


def log_after_closing_fds():
    """A program that closes every fd >= 3 and opens files of its own (taking the log's number) gets no
    line of pqleak's in them: the log's fd is checked before each write and the log opened again."""
    d = tempfile.mkdtemp()
    log = os.path.join(d, "pqleak.log")
    r = run([PROG, "log-close-fds", d], env={"PQLEAK_LOG": log, "PQLEAK_TRACE": "1"}, report_dir=False)
    eq(r.rc, 0, r.err)
    text = open(log).read()
    check(re.search(r"open #2 ", text) and re.search(r"close #2 ", text),
          f"the second connection's lines are in the log:\n{text}")


def unwind_fds():
    """libunwind's pipe (its memory checks) never becomes the program's files: a program that closes
    every fd >= 3 and opens files of its own (taking the pipe's numbers) then connects on a new thread
    (a stack libunwind checks): its files are neither read, written nor closed."""
    d = tempfile.mkdtemp()
    r = run([PROG, "unwind-fds", d])
    eq(r.rc, 0, r.err)
    eq(len(leaks(r.only_report())), 1, f"the first connection (its socket closed by the program):\n{r.err}")


def unwritable_report_dir():
    r = run([PROG, "two-sites"], env={"PQLEAK_REPORT_DIR": "/proc/pqleak-nope", "PQLEAK_TEXT_REPORT": "0"},
            report_dir=False)
    eq(r.rc, 0, "exit status")
    check("cannot write a report in PQLEAK_REPORT_DIR='/proc/pqleak-nope'" in r.err, r.err)
    check("SUMMARY: pqleak: 3 connections leaked" in r.err, f"report goes to the log instead:\n{r.err}")


def no_text_report():
    r = run([PROG, "two-sites"], env={"PQLEAK_TEXT_REPORT": "0"})
    eq(r.err, "", "stderr")
    eq(len(leaks(r.only_report())), 2, "JSON still written")


def exports():
    out = subprocess.run(["nm", "-D", "--defined-only", SHIM], capture_output=True, text=True, check=True).stdout
    syms = sorted(l.split()[-1] for l in out.splitlines() if l.strip())
    want = sorted("PQconnectdb PQconnectdbParams PQsetdbLogin PQconnectStart PQconnectStartParams "
                  "PQconnectPoll PQfinish PQreset PQresetStart PQresetPoll PQping PQpingParams PQerrorMessage "
                  "PQexec PQexecParams PQexecPrepared PQprepare PQsendQuery PQsendQueryParams "
                  "PQsendQueryPrepared PQsendPrepare PQgetResult "
                  "_exit _Exit dlsym dlopen".split())
    eq(syms, want, "exported symbols")
    dyn = subprocess.run(["readelf", "-d", SHIM], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", dyn)
    eq(needed, ["libc.so.6"], "DT_NEEDED (no libpq, libunwind or libdw)")


def rtld_next():
    nextcheck = os.path.join(os.path.dirname(SHIM), "libnextcheck.so")
    # Shim first, the other interposer after it: RTLD_NEXT from nextcheck must still mean "after nextcheck".
    r = run([PROG, "puts"], env={"LD_PRELOAD": f"{SHIM}:{nextcheck}"}, report_dir=False)
    eq((r.rc, r.out), (0, "[nextcheck] hello\n"), f"puts through the second preload:\n{r.err}")
    r = run([PROG, "puts"], env={"LD_PRELOAD": f"{nextcheck}:{SHIM}"}, report_dir=False)
    eq((r.rc, r.out), (0, "[nextcheck] hello\n"), f"and in the other order:\n{r.err}")


def lsan_alongside():
    import sys
    prog = os.path.join(os.path.dirname(PROG), "it_lsan")
    # Stacks are not roots: what must not keep the PGconn reachable is the shim's heap and globals, and a
    # stale copy of the pointer in a dead stack frame would hide the leak with or without the shim.
    lsan = {"LSAN_OPTIONS": "use_stacks=0:use_registers=0"}
    bare = run([prog], env=lsan, preload=False, report_dir=False)
    shim = run([prog], env=lsan)
    # The PGconn itself: a direct leak allocated under PQconnectStart (its buffers leak indirectly).
    pgconn = re.compile(r"Direct leak of (\d+) byte\(s\) in 1 object\(s\) allocated from:\n(?:.*\n){0,3}.*PQconnectStart")
    b, w = pgconn.search(bare.err), pgconn.search(shim.err)
    if not b:  # the control: LeakSanitizer itself, without pqleak, did not find the leak here
        print(f"SKIP: LeakSanitizer does not find the lost PGconn even without the shim:\n{bare.err}")
        sys.exit(77)
    check(w, f"LeakSanitizer still finds the lost PGconn with the shim preloaded:\n{shim.err}")
    eq(w.group(1), b.group(1), "size of the PGconn LeakSanitizer reports")
    eq(sum(g["count"] for g in leaks(shim.only_report())), 1, "pqleak's own leak count")


def secure_exec():
    """A set-user-ID program: glibc preloads only set-user-ID libraries from the system directories into
    it, by bare name. The shim, installed so for the test, must stay inert there: no report, no output."""
    import shutil
    import stat
    import sys
    if os.geteuid() != 0:
        print("SKIP: needs root to install a set-user-ID library")
        sys.exit(77)
    libdir = "/usr/lib/x86_64-linux-gnu" if os.path.isdir("/usr/lib/x86_64-linux-gnu") else "/usr/lib"
    name = f"libpqleak-sectest-{os.getpid()}.so"
    lib = os.path.join(libdir, name)
    d = tempfile.mkdtemp(prefix="pqleak-sec-")
    try:
        shutil.copy(SHIM, lib)
        os.chmod(lib, 0o4755)
        prog = os.path.join(d, "it_prog")
        shutil.copy(PROG, prog)
        os.chmod(d, 0o755)
        os.chmod(prog, 0o755)
        reports = os.path.join(d, "reports")
        os.mkdir(reports)
        os.chmod(reports, 0o777)
        env = {"LD_PRELOAD": name, "PQLEAK_REPORT_DIR": reports, "PQLEAK_EXITCODE": "9"}
        # Control: the same library, preloaded by name into an ordinary process, does report.
        plain = run(["runuser", "-u", "nobody", "--", prog, "failed-leak"], env=env, report_dir=False)
        eq(plain.rc, 9, f"the shim works when loaded by name:\n{plain.err}")
        for f in os.listdir(reports):
            os.unlink(os.path.join(reports, f))
        os.chmod(prog, 0o4755 | stat.S_IXOTH)
        secure = run(["runuser", "-u", "nobody", "--", prog, "failed-leak"], env=env, report_dir=False)
        eq((secure.rc, secure.err, os.listdir(reports)), (0, "", []), "set-user-ID run: status, output, reports")
    finally:
        os.unlink(lib) if os.path.exists(lib) else None
        shutil.rmtree(d, ignore_errors=True)


def psql():
    r = run(["psql", "-X", "-At", "-c", "select 1"])
    eq((r.rc, r.out), (0, "1\n"), "psql result")
    check(not PQLEAK_LINE.search(r.err), f"no pqleak output:\n{r.err}")
    rep = r.only_report()  # psql is a perl wrapper: perl never connects, so it writes nothing
    check(rep["program"].endswith("/psql"), rep["program"])
    eq(rep["leaks"], [], "leaks")
    check(rep["utilization"]["opened_total"] >= 1, "psql connected")


def pgbench():
    r = run(["pgbench", "-i", "-q", "-s", "1"], timeout=300)
    eq(r.rc, 0, f"pgbench -i:\n{r.err}")
    r = run(["pgbench", "-C", "-S", "-c", "2", "-j", "2", "-t", "20", "-n"], timeout=300)
    eq(r.rc, 0, f"pgbench -C:\n{r.err}")
    check(not PQLEAK_LINE.search(r.err), f"no pqleak output:\n{r.err}")
    rep = r.only_report()
    eq(rep["leaks"], [], "leaks")
    check(rep["utilization"]["opened_total"] >= 40, f"opened_total {rep['utilization']['opened_total']}")


def libpq_dlclose():
    import sys
    prog = os.path.join(os.path.dirname(PROG), "it_dlclose")
    # The control: without the shim, the program's dlclose unloads libpq.
    bare = run([prog], preload=False, report_dir=False)
    eq(bare.rc, 0, f"it_dlclose without the shim:\n{bare.err}")
    if bare.out != "unloaded\n":
        print(f"SKIP: libpq stays loaded after dlclose even without the shim: {bare.out!r}")
        sys.exit(77)
    # The shim calls libpq's functions until exit: it holds its own reference to a libpq it did not
    # see loaded at start-up.
    r = run([prog], report_dir=False)
    eq((r.rc, r.out), (0, "loaded\n"), f"libpq after the program's dlclose, under the shim:\n{r.err}")


def deepbind_module():
    """A module that needs libpq, loaded with RTLD_DEEPBIND (as PHP loads pgsql.so): it keeps its own
    lookup scope, and its connections are seen all the same."""
    prog = os.path.join(os.path.dirname(PROG), "it_deepbind")
    module = os.path.join(os.path.dirname(PROG), "..", "lib", "libit_deepmod.so")
    bare = run([prog, module], preload=False, report_dir=False)
    eq((bare.rc, bare.out), (0, "which=2\n"), f"it_deepbind without the shim:\n{bare.err}")
    r = run([prog, module])
    eq((r.rc, r.out), (0, "which=2\n"), f"the module keeps its own lookup scope under the shim:\n{r.err}")
    rep = r.only_report()
    groups = leaks(rep)
    eq([g["count"] for g in groups], [1], f"the module's connection is seen and leaked: {groups}")
    f = frames(rep, groups[0]["stack"])[0]
    eq((f["function"], os.path.basename(f["file"] or "")), ("deepmod_run", "deepmod.c"), f"opened at: {f}")
    check("could not be pointed" not in r.err, f"no warning:\n{r.err}")


def unwind_fallback():
    """A frame without unwind information (hand-written assembly without CFI directives), which the
    shim's own walk cannot follow: the shim walks that stack with libunwind, loaded for it, whose
    frame-pointer guess goes on past the frame to main."""
    prog = os.path.join(os.path.dirname(PROG), "it_nocfi")
    r = run([prog])
    eq((r.rc, r.out), (0, "status=1\n"), r.err)
    rep = r.only_report()
    groups = leaks(rep)
    eq([g["count"] for g in groups], [1], f"the connection is leaked: {groups}")
    names = [f["function"] for f in frames(rep, groups[0]["stack"])]
    check("open_leak" in names and "main" in names and names.index("main") > names.index("open_leak"),
          f"the stack goes from open_leak past nocfi_call to main: {names}")


main({f.__name__: f for f in (two_sites, entry_points_clean, entry_points_leak, threads, failed_freed,
                              failed_leaked, secrets, exitcode, underscore_exit, fork, atexit_close, quiet,
                              malformed_setting, disable, stack_depth, suppressions, log_file,
                              unwritable_report_dir, no_text_report, exports, rtld_next, lsan_alongside,
                              secure_exec, psql, pgbench, underscore_Exit, trace, client_port,
                              log_after_closing_fds, libpq_dlclose, unwind_fds, deepbind_module,
                              unwind_fallback)})
