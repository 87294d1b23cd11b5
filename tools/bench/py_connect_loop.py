"""The Python workload of tools/bench/run: WARMUP untimed connects, then N × (psycopg2.connect("");
close()), each made from DEPTH nested Python calls (the depth of an application's stack: the shim's
Python-frame capture walks them). The connection comes from PG* variables.

    python3 py_connect_loop.py [-w WARMUP] [-d DEPTH] N

Prints "ns_per_iter <float>" (wall time) and "cpu_ns_per_iter <float>" (this process's CPU time, user +
system, all its threads: the client side alone) and exits 0; exits 1 on a failed connect. Every
connection is closed, so the shim never reports a leak."""
import argparse
import sys
import time

import psycopg2


def at_depth(depth, fn):
    """Calls fn from depth nested Python frames (this one included)."""
    if depth <= 1:
        return fn()
    return at_depth(depth - 1, fn)


def connect_close():
    psycopg2.connect("").close()


def measured_loop(n):
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(n):
        connect_close()
    return time.perf_counter_ns() - wall, time.process_time_ns() - cpu


def main():
    ap = argparse.ArgumentParser(description="psycopg2 connect+close loop")
    ap.add_argument("-w", type=int, default=5, metavar="WARMUP")
    ap.add_argument("-d", type=int, default=1, metavar="DEPTH")
    ap.add_argument("n", type=int)
    a = ap.parse_args()
    if a.n < 1 or a.w < 0 or a.d < 1 or a.d > 500:
        ap.error("N >= 1, WARMUP >= 0, 1 <= DEPTH <= 500")
    try:
        for _ in range(a.w):
            at_depth(a.d, connect_close)
        wall, cpu = at_depth(a.d, lambda: measured_loop(a.n))
    except psycopg2.Error as e:
        print(f"py_connect_loop: connect failed: {e}", file=sys.stderr)
        return 1
    print(f"ns_per_iter {wall / a.n:.1f}")
    print(f"cpu_ns_per_iter {cpu / a.n:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
