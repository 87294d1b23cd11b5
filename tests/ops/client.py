"""A small psycopg2 program for the ops tests (libpq under the shim, a real client):
  client.py connect N        open N connections at once, print "ok N" or "refused: MESSAGE", leak them
  client.py states STOP      hold connections idle, active, idle in a transaction and aborted; a fifth
                             connect waits at the cap (PQLEAK_MAX_CONNS=4) until the idle one is closed
                             once the file STOP.release appears; prints "ready", then "granted" and
                             exits at STOP
  client.py nothing          import psycopg2 and never connect
"""
import os
import sys
import threading
import time

import psycopg2


def wait_file(path, limit=60):
    end = time.monotonic() + limit
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.02)


KEPT = []  # leaked: closed by Python's finalization at exit (a "held" leak, counted under PQLEAK_STRICT)


def connect(n):
    conns = KEPT
    try:
        for _ in range(n):
            conns.append(psycopg2.connect(""))
    except psycopg2.OperationalError as e:
        print("refused:", str(e).strip())
        return 0
    print("ok", len(conns))
    return 0


def states(stop):
    idle = psycopg2.connect("")
    idle.autocommit = True
    idle.cursor().execute("select 1")
    in_tx = psycopg2.connect("")
    in_tx.cursor().execute("select 1")  # psycopg2 opens a transaction: idle in transaction
    aborted = psycopg2.connect("")
    try:
        aborted.cursor().execute("select 1/0")
    except psycopg2.DataError:
        pass
    active = psycopg2.connect("")
    active.autocommit = True

    def busy():
        try:
            active.cursor().execute("select pg_sleep(60)")
        except psycopg2.Error:
            pass  # cancelled at the end

    b = threading.Thread(target=busy)
    b.start()
    got = []
    w = threading.Thread(target=lambda: got.append(psycopg2.connect("")))
    w.start()
    print("ready", flush=True)
    wait_file(stop + ".release")
    idle.close()
    w.join()
    print("granted" if got else "not granted", flush=True)
    wait_file(stop)
    active.cancel()
    b.join()
    for c in (in_tx, aborted, active, got[0]):
        c.close()
    return 0


def main():
    if sys.argv[1] == "connect":
        return connect(int(sys.argv[2]))
    if sys.argv[1] == "states":
        return states(sys.argv[2])
    if sys.argv[1] == "nothing":
        return 0
    return 2


sys.exit(main())
