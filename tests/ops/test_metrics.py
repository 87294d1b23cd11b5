"""ops.metrics: the metrics file of a psycopg2 program under the shim (tests/ops/client.py states), one
file per process (%p), removed at exit, labelled with the service (the script's name by default), with
the connections by state, the thread waiting at the cap and the wait-time histogram; the text checked by
`promtool check metrics` and parsed by prometheus_client (family names distinct).

usage: test_metrics.py"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ["PQLEAK_SRC"], "tests", "integration"))
from harness import Background, check, eq, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROMTOOL = "/usr/bin/promtool"


def samples(text):
    """{(name, extra labels as a tuple): value} from prometheus_client's parser, with the families it read."""
    from prometheus_client.parser import text_string_to_metric_families
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    eq(len(names), len(set(names)), f"family names are distinct: {names}")
    out = {}
    for f in families:
        for s in f.samples:
            extra = tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("service", "program", "pid")))
            out[(s.name, extra)] = (s.value, s.labels)
    return out


def promtool(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    eq((p.returncode, p.stdout + p.stderr), (0, ""), "promtool check metrics")


def value(s, name, **labels):
    return s[(name, tuple(sorted(labels.items())))][0]


def main():
    if not os.access(PROMTOOL, os.X_OK):
        print("SKIP: no promtool (Debian package prometheus; tools/deps)")
        return 77
    d = tempfile.mkdtemp(prefix="pqleak-ops-metrics-")
    pattern = os.path.join(d, "pqleak-%p.prom")
    env = {"PQLEAK_METRICS": pattern, "PQLEAK_METRICS_INTERVAL": "0.1", "PQLEAK_MAX_CONNS": "4",
           "PQLEAK_CHECKOUT_TIMEOUT": "120", "PQLEAK_SIGNAL": "none"}
    bg = Background(lambda stop: [sys.executable, os.path.join(HERE, "client.py"), "states", stop], env=env)
    path = pattern.replace("%p", str(bg.proc.pid))
    state = {s: ("pqleak_connections_in_state", (("state", s),)) for s in
             ("idle", "active", "idle in transaction", "idle in transaction (aborted)")}

    def settled():
        if not os.path.exists(path):
            return None
        text = open(path).read()
        s = samples(text)
        return (text, s) if (value(s, "pqleak_checkout_waiting") == 1 and
                             s[state["active"]][0] == 1) else None

    text, s = wait_for(settled, "a thread waiting at the cap and the active query in the metrics")
    promtool(text)
    labels = s[("pqleak_connections_open", ())][1]
    eq((labels["service"], labels["pid"]), ("client.py", str(bg.proc.pid)), "service (the script) and pid labels")
    eq({k: s[v][0] for k, v in state.items()},
       {"idle": 1, "active": 1, "idle in transaction": 1, "idle in transaction (aborted)": 1}, "connections by state")
    eq(value(s, "pqleak_connections_open"), 4, "open")
    eq(value(s, "pqleak_checkout_wait_duration_seconds_count"), 0, "no wait ended yet")

    # The idle connection closes: the waiter gets its slot; the histogram has its wait.
    open(bg.stop_file + ".release", "w").close()
    eq(bg.proc.stdout.readline().strip(), "granted", "the waiting connect got a slot")

    def waited():
        s = samples(open(path).read())
        return s if value(s, "pqleak_checkout_wait_duration_seconds_count") == 1 else None

    s = wait_for(waited, "the ended wait in the histogram")
    text = open(path).read()
    promtool(text)
    eq(value(s, "pqleak_checkout_waiting"), 0, "nobody waiting")
    eq(value(s, "pqleak_checkout_wait_duration_seconds_bucket", le="+Inf"), 1, "+Inf bucket")
    eq(value(s, "pqleak_checkout_wait_duration_seconds_sum"), value(s, "pqleak_checkout_wait_seconds_total"),
       "histogram sum: the seconds waited")
    buckets = [v for (n, l), (v, _) in sorted(s.items()) if n.endswith("_bucket")]
    check(all(0 <= v <= 1 for v in buckets), f"buckets: {buckets}")

    rc, _, err = bg.stop()
    eq(rc, 0, err)
    eq(os.listdir(d), [], "files left in the metrics directory after a normal exit")
    shutil.rmtree(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
