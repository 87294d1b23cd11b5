"""Runs the story app (app.py) under uvicorn with the shim preloaded, drives it over HTTP, and stops it:
shared by test_story.py and tools/demo. Everything is bounded in time, and the server is always stopped.

    python3 story.py demo SHIM PQLEAK   (PG* variables set: tools/pgserver exec)
runs the leaking app until its pool times out and prints `pqleak status` of the server."""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "app.py")
PYTHON = "/usr/bin/python3"  # Debian's: FastAPI, uvicorn, SQLAlchemy and psycopg2 are Debian packages


def marker_line(path, tag):
    """The line of PATH marked `# story: TAG`."""
    with open(path) as f:
        lines = [i for i, t in enumerate(f, 1) if t.rstrip().endswith(f"# story: {tag}")]
    if len(lines) != 1:
        raise RuntimeError(f"{path}: {len(lines)} lines marked 'story: {tag}'")
    return lines[0]


def die_with_parent():
    """In the child, before exec: SIGTERM when the process that started it dies (a test killed by its
    timeout leaves no server behind)."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=10.0):
    """GET url: (HTTP status, seconds taken); status 0 when nothing answered."""
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (urllib.error.URLError, OSError):
        status = 0
    return status, time.monotonic() - t


class Server:
    """uvicorn serving app.py on a free port of 127.0.0.1, its stderr in a file. env: the complete
    environment (with LD_PRELOAD and PQLEAK_* as the caller wants). Use as a context manager: the server
    is stopped (SIGTERM, then SIGKILL) on the way out, whatever happened."""

    def __init__(self, env, start_timeout=30.0):
        self.env, self.start_timeout = env, start_timeout
        self.dir = tempfile.mkdtemp(prefix="pqleak-story-")
        self.err_path = os.path.join(self.dir, "uvicorn.err")
        self.proc = None
        self.rc = None

    def __enter__(self):
        for _ in range(3):  # the port may be taken between free_port() and uvicorn's bind
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            with open(self.err_path, "w") as err:
                self.proc = subprocess.Popen(
                    [PYTHON, "-m", "uvicorn", "app:app", "--app-dir", HERE, "--host", "127.0.0.1",
                     "--port", str(self.port), "--no-access-log"],
                    env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    preexec_fn=die_with_parent)
            end = time.monotonic() + self.start_timeout
            while time.monotonic() < end and self.proc.poll() is None:
                if get(self.base + "/health", timeout=2)[0] == 200:
                    return self
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError(f"uvicorn did not answer within {self.start_timeout} s:\n{self.stderr()}")
            if "address already in use" not in self.stderr().lower():
                raise RuntimeError(f"uvicorn exited with status {self.proc.returncode}:\n{self.stderr()}")
        raise RuntimeError(f"uvicorn found no free port:\n{self.stderr()}")

    def __exit__(self, *exc):
        self.stop()

    def stop(self, timeout=15.0):
        """Stops the server gracefully (uvicorn's shutdown, then Python's finalization); its status."""
        if self.proc and self.rc is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.rc = self.proc.wait()
        return self.rc

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()


def drive(base, max_orders=6):
    """Requests /orders/1, /orders/2, ... until one fails (the pool timed out) or max_orders were
    asked; then /health once. Returns [(path, status, seconds)]."""
    log = []
    for i in range(1, max_orders + 1):
        status, secs = get(f"{base}/orders/{i}")
        log.append((f"/orders/{i}", status, secs))
        if status != 200:
            break
    log.append(("/health", *get(base + "/health")))
    return log


def print_lines(text, pattern, limit):
    """Prints the lines of text matching pattern (a regular expression), at most limit of them."""
    lines = [l.rstrip() for l in text.splitlines() if re.search(pattern, l)]
    for l in lines[:limit]:
        print(l)
    if len(lines) > limit:
        print(f"... ({len(lines) - limit} more)")


def demo(shim, pqleak):
    """The demo: the leaking app until its pool times out, then `pqleak status` of the server."""
    env = dict(os.environ, LD_PRELOAD=shim, PQLEAK_SUSPECT_IDLE_TX="1")
    line = marker_line(APP, "begin")
    with Server(env) as srv:
        print(f"$ python3 -m uvicorn app:app --port {srv.port}     # pid {srv.proc.pid}, the shim preloaded")
        for path, status, secs in drive(srv.base):
            print(f"GET {path:<12} -> HTTP {status} in {secs:.1f} s")
        print()
        print(f"### Where are the pool's connections? (the forgotten session's query is app.py:{line})")
        print(f"$ pqleak status {srv.proc.pid}")
        sys.stdout.flush()
        st = subprocess.run([pqleak, "status", str(srv.proc.pid)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=30)
        print(st.stdout.rstrip())
        print(f"(pqleak status exited with {st.returncode})")
        # The shim's own warnings in uvicorn's stderr (PQLEAK_SUSPECT_IDLE_TX=1), one per connection.
        print()
        print("### uvicorn's stderr: the shim's suspect warnings (PQLEAK_SUSPECT_IDLE_TX=1)")
        err = srv.stderr()
        first = err.find("pqleak: SUSPECT:")
        second = err.find("pqleak: SUSPECT:", first + 1)
        print_lines(err[first:second] if first >= 0 else "", r"pqleak: SUSPECT:|its transaction began|app\.py:\d+", 4)
        print(f"... ({err.count('pqleak: SUSPECT:')} suspect warnings in all)")
        srv.stop()
        print()
        print("### uvicorn stopped (SIGTERM): Python's finalization closed the forgotten connections")
        print_lines(srv.stderr(), r"^Leak of|its transaction began in|^SUMMARY", 8)
    shutil.rmtree(srv.dir, ignore_errors=True)
    found = re.search(rf"app\.py:{line}\b", st.stdout)
    return 0 if found else 1


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "demo":
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(demo(sys.argv[2], sys.argv[3]))
