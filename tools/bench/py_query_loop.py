"""The Python query workload of tools/bench/run (py_query): a web worker's short work in one process.
CONNECTS × (psycopg2.connect(""); QUERIES × `select 1` in autocommit; TXNS × a short transaction
(`with conn:` around one `select 1`, committed on leaving the block); close()), each connection's work
made from DEPTH nested Python calls. The connection comes from PG* variables.

    python3 py_query_loop.py [-c CONNECTS] [-q QUERIES] [-t TXNS] [-d DEPTH]

Prints "transactions <n>" and exits 0; exits 1 on a failed connect or query. Every connection is
closed, so the shim never reports a leak."""
import argparse
import sys

import psycopg2

from py_connect_loop import at_depth


def work(queries, txns):
    conn = psycopg2.connect("")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for _ in range(queries):
                cur.execute("select 1")
                cur.fetchone()
        conn.autocommit = False
        for _ in range(txns):
            with conn:  # BEGIN (sent with the first query), COMMIT on leaving the block
                with conn.cursor() as cur:
                    cur.execute("select 1")
                    cur.fetchone()
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description="psycopg2 queries and short transactions")
    ap.add_argument("-c", type=int, default=40, metavar="CONNECTS")
    ap.add_argument("-q", type=int, default=100, metavar="QUERIES")
    ap.add_argument("-t", type=int, default=100, metavar="TXNS")
    ap.add_argument("-d", type=int, default=1, metavar="DEPTH")
    a = ap.parse_args()
    if a.c < 1 or a.q < 0 or a.t < 0 or a.d < 1 or a.d > 500:
        ap.error("CONNECTS >= 1, QUERIES >= 0, TXNS >= 0, 1 <= DEPTH <= 500")
    try:
        for _ in range(a.c):
            at_depth(a.d, lambda: work(a.q, a.t))
    except psycopg2.Error as e:
        print(f"py_query_loop: {e}", file=sys.stderr)
        return 1
    print(f"transactions {a.c * a.t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
