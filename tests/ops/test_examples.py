"""ops.example_*: the files of examples/ used as a user would copy them.

  systemd         examples/systemd/pqleak.conf: its Environment= lines, parsed as systemd does (quotes,
                  several assignments a line, %% for %), applied to examples/leaky_service.c's program
  github_actions  examples/ci/github-actions.yml: the install line of its build step and its pqleak step
  gitlab_ci       examples/ci/gitlab-ci.yml: the same from before_script and script
                  (both run against a pytest suite with a leaking test, then a clean one)
  docker          examples/docker/Dockerfile: the install of its build stage, the files its COPY lines
                  take from that stage, its ENV applied to leaky_service through the copied shim

Paths a real machine has (/usr/local, /var/lib, /opt) are moved under a temporary directory; the build
tree under test stands for the one the examples build. Against the test server (PG* variables).

usage: test_examples.py CASE"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ["PQLEAK_SRC"], "tests", "integration"))
from harness import check, eq, environment  # noqa: E402

SRC = os.environ["PQLEAK_SRC"]
BIN = os.environ["PQLEAK_BIN"]
BUILD = os.path.dirname(BIN)
EXAMPLES = os.path.join(SRC, "examples")
LEAKY = os.path.join(BIN, "leaky_service")
# What tools/deps installs to build pqleak: an example that builds it must install these too.
BUILD_PACKAGES = ["cmake", "pkg-config", "libpq-dev", "libunwind-dev", "uthash-dev", "libdw-dev", "libjansson-dev"]


def moved(root, value):
    """value with every absolute path under /var/lib, /opt or /usr/local moved under root."""
    return re.sub(r"(?<![\w/])/(var/lib|opt|usr/local)/", lambda m: f"{root}/{m.group(1)}/", value)


def run_leaky(env, root):
    """leaky_service with exactly the given PQLEAK_* and LD_PRELOAD (the caller's are dropped)."""
    e = environment(env, preload=False)
    p = subprocess.run([LEAKY], env=e, capture_output=True, text=True, timeout=120)
    eq(p.stdout, "served 10 requests, 3 not found\n", f"the program's own output:\n{p.stderr}")
    eq(p.returncode, 0, p.stderr)
    check("SUMMARY: pqleak: 4 connections leaked in 2 groups" in p.stderr, f"text report:\n{p.stderr}")
    return p


def one_report(d):
    files = glob.glob(os.path.join(d, "pqleak-*-exit-*.json"))
    eq(len(files), 1, f"exit reports in {d}")
    with open(files[0]) as f:
        return json.load(f)


# ---- systemd ----

def systemd_environment(path):
    """{name: value} of the [Service] section's Environment= lines, and its StateDirectory=, as systemd
    reads them: each line holds space-separated assignments, quoted with " or ' when they hold spaces;
    "%%" is "%" (the test refuses any other specifier: it would not mean what the example says)."""
    env, state = {}, []
    section = None
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        check(section == "[Service]", f"{path}: {line!r} outside [Service]")
        key, _, value = line.partition("=")
        check(not re.search(r"%[^%]", value.replace("%%", "")), f"{path}: a systemd specifier in {line!r}")
        if key == "Environment":
            for word in shlex.split(value):
                name, eq_, v = word.partition("=")
                check(eq_ and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f"{path}: {word!r} is not NAME=VALUE")
                env[name] = v.replace("%%", "%")
        elif key == "StateDirectory":
            state += value.split()
    return env, state


def systemd():
    root = tempfile.mkdtemp(prefix="pqleak-ex-systemd-")
    env, state = systemd_environment(os.path.join(EXAMPLES, "systemd", "pqleak.conf"))
    eq(env.get("LD_PRELOAD"), "/usr/local/lib/libpqleak.so", "the shim where cmake --install puts it")
    eq(state, ["pqleak"], "StateDirectory")
    env = {k: moved(root, v) for k, v in env.items()}
    env["LD_PRELOAD"] = os.environ["PQLEAK_SHIM"]
    os.makedirs(os.path.join(root, "var/lib/pqleak"), 0o700)  # what StateDirectory=pqleak makes
    metrics_dir = os.path.join(root, "var/lib/prometheus/node-exporter")
    os.makedirs(metrics_dir)  # node_exporter's textfile directory
    check(env["PQLEAK_REPORT_DIR"] == os.path.join(root, "var/lib/pqleak"), f"report dir: {env}")
    run_leaky(env, root)
    r = one_report(env["PQLEAK_REPORT_DIR"])
    s = r["settings"]
    eq((s["max_conns"], s["checkout_timeout_s"], s["suspect_idle_tx_s"], s["service"]),
       (20, 30, 60, "orders-api"), "settings from PQLEAK_OPTIONS and the other assignments")
    eq(s["metrics"], os.path.join(metrics_dir, "pqleak-%p.prom"), "%% became % (the pid's %p)")
    eq(os.listdir(metrics_dir), [], "the metrics file is removed at exit")
    shutil.rmtree(root)


# ---- CI jobs ----

LEAKING_SUITE = {
    "test_orders.py": '''import psycopg2

_kept = []


def test_checkout():
    conn = psycopg2.connect("")
    conn.cursor().execute("select 1")  # a transaction left open, the connection never closed
    _kept.append(conn)


def test_clean():
    conn = psycopg2.connect("")
    conn.close()
''',
}
CLEAN_SUITE = {"test_orders.py": LEAKING_SUITE["test_orders.py"].split("\n\ndef test_checkout")[0] + '''

def test_clean():
    conn = psycopg2.connect("")
    conn.close()
'''}


def ci_commands(commands):
    """(install line, pqleak line) among a job's shell commands; the install line checked to come after a
    build that installs pqleak's build packages."""
    text = "\n".join(commands)
    for p in BUILD_PACKAGES:
        check(re.search(rf"apt-get install [^\n]*(?<![\w-]){re.escape(p)}(?![\w-])", text),
              f"the job installs {p} to build pqleak:\n{text}")
    check(re.search(r"^(sudo )?cmake -S \S+ -B \S+", text, re.M) and re.search(r"^(sudo )?cmake --build ", text, re.M),
          f"the job builds pqleak with cmake:\n{text}")
    install = [c for c in text.splitlines() if re.match(r"(sudo )?cmake --install ", c)]
    run = [c for c in text.splitlines() if c.startswith("pqleak run ")]
    eq((len(install), len(run)), (1, 1), f"one install and one pqleak run line:\n{text}")
    return install[0], run[0]


def run_ci(install, command):
    root = tempfile.mkdtemp(prefix="pqleak-ex-ci-")
    words = shlex.split(install)
    words = words[1:] if words[0] == "sudo" else words
    eq(words[:2], ["cmake", "--install"], install)
    prefix = os.path.join(root, "usr/local")
    words[2] = BUILD  # the job's build tree
    words[words.index("--prefix") + 1] = prefix
    p = subprocess.run(words, capture_output=True, text=True)
    eq(p.returncode, 0, p.stdout + p.stderr)
    path = f"{prefix}/bin:/usr/bin:/bin"
    results = {}
    for name, suite in (("leaking", LEAKING_SUITE), ("clean", CLEAN_SUITE)):
        work = os.path.join(root, name)
        os.makedirs(os.path.join(work, "tests"))
        for f, text in suite.items():
            with open(os.path.join(work, "tests", f), "w") as fh:
                fh.write(text)
        env = environment({"PATH": path}, preload=False)
        p = subprocess.run(["bash", "-ec", command], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        results[name] = (p, work)
    p, work = results["leaking"]
    eq(p.returncode, 23, f"a leaking test fails the job:\n{p.stdout}\n{p.stderr}")
    check("test_orders.py" in p.stderr, f"the summary names the leaking test's file:\n{p.stderr}")
    junit = os.path.join(work, "pqleak-junit.xml")
    x = subprocess.run(["xmllint", "--noout", junit], capture_output=True, text=True)
    eq((x.returncode, x.stderr), (0, ""), "JUnit XML well formed")
    check("<failure" in open(junit).read(), "JUnit has a failing test case")
    with open(os.path.join(work, "pqleak.json")) as f:
        eq(json.load(f)["trigger"], "merged", "the merged report")
    p, work = results["clean"]
    eq(p.returncode, 0, f"a clean suite passes:\n{p.stdout}\n{p.stderr}")
    check("<failure" not in open(os.path.join(work, "pqleak-junit.xml")).read(), "no failure in JUnit")
    shutil.rmtree(root)


def skip_without_pytest():
    if subprocess.run(["/usr/bin/python3", "-c", "import pytest, psycopg2"], capture_output=True).returncode:
        print("SKIP: python3-pytest or python3-psycopg2 missing (tools/deps)")
        sys.exit(77)


def github_actions():
    import yaml
    skip_without_pytest()
    wf = yaml.safe_load(open(os.path.join(EXAMPLES, "ci", "github-actions.yml")))
    job = wf["jobs"]["tests-under-pqleak"]
    commands = [line for step in job["steps"] if "run" in step for line in step["run"].splitlines()]
    run_ci(*ci_commands(commands))


def gitlab_ci():
    import yaml
    skip_without_pytest()
    job = yaml.safe_load(open(os.path.join(EXAMPLES, "ci", "gitlab-ci.yml")))["tests-under-pqleak"]
    eq(job["artifacts"]["reports"]["junit"], "pqleak-junit.xml", "GitLab reads the JUnit file pqleak writes")
    run_ci(*ci_commands(job["before_script"] + job["script"]))


# ---- Dockerfile ----

def dockerfile_instructions(path):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, cur = [], ""
    for line in open(path):
        line = line.rstrip("\n")
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        cur += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def docker():
    root = tempfile.mkdtemp(prefix="pqleak-ex-docker-")
    ins = dockerfile_instructions(os.path.join(EXAMPLES, "docker", "Dockerfile"))
    runs = " && ".join(a for i, a in ins if i == "RUN")
    for p in BUILD_PACKAGES:
        check(re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", runs), f"the build stage installs {p}")
    for p in ("libunwind8", "libdw1", "libjansson4"):
        check(p in runs, f"the final stage installs the run-time library {p}")
    install = [c.strip() for c in runs.split("&&") if c.strip().startswith("cmake --install")]
    eq(len(install), 1, "one cmake --install in the build stage")
    words = shlex.split(install[0])
    words[2] = BUILD
    words[words.index("--prefix") + 1] = moved(root, words[words.index("--prefix") + 1])
    p = subprocess.run(words, capture_output=True, text=True)
    eq(p.returncode, 0, p.stdout + p.stderr)
    copies = {}
    for i, a in ins:
        if i == "COPY" and a.startswith("--from=pqleak "):
            src, dst = a.split()[1:]
            src = moved(root, src)
            check(os.path.isfile(src), f"COPY --from=pqleak {src}: the stage's install has it")
            copies[dst] = src
    eq(sorted(copies), ["/usr/local/bin/pqleak", "/usr/local/lib/libpqleak.so"], "the shim and the command copied")
    env = {}
    for i, a in ins:
        if i == "ENV":
            for word in shlex.split(a):
                name, _, value = word.partition("=")
                env[name] = value
    eq(env.get("LD_PRELOAD"), "/usr/local/lib/libpqleak.so", "the shim preloaded where COPY put it")
    env["LD_PRELOAD"] = copies[env["LD_PRELOAD"]]
    env["PQLEAK_REPORT_DIR"] = moved(root, env["PQLEAK_REPORT_DIR"])
    os.makedirs(env["PQLEAK_REPORT_DIR"], 0o700)  # the VOLUME
    run_leaky(env, root)
    eq(one_report(env["PQLEAK_REPORT_DIR"])["settings"]["max_conns"], 20, "PQLEAK_OPTIONS of the ENV line")
    p = subprocess.run([copies["/usr/local/bin/pqleak"], "report", env["PQLEAK_REPORT_DIR"]], capture_output=True,
                       text=True)
    eq(p.returncode, 23, f"the copied command reads the report:\n{p.stdout}{p.stderr}")
    shutil.rmtree(root)


CASES = {f.__name__: f for f in (systemd, github_actions, gitlab_ci, docker)}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
