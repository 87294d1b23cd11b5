"""psycopg2, leaking: a global connection left idle inside a transaction until pqleak reports it as a
suspect (PQLEAK_SUSPECT_IDLE_TX), never returned: Python's finalization closes it at exit and the server
rolls the insert back (teardown). The script waits for the suspect report file, not for a time."""
import glob
import os
import time

import psycopg2


def record(conn, n):
    with conn.cursor() as cur:
        cur.execute("create temporary table pending (n int)")  # pqleak-test: begin
        cur.execute("insert into pending values (%s)", (n,))


conn = psycopg2.connect("application_name=psycopg2_suspect")  # pqleak-test: open
record(conn, 1)
# Idle in the transaction until the reporter thread has written its suspect report (the text warning
# is logged before the file is renamed into place).
pattern = os.path.join(os.environ["PQLEAK_REPORT_DIR"], f"pqleak-{os.getpid()}-suspect-*.json")
deadline = time.monotonic() + 30
while not glob.glob(pattern):
    if time.monotonic() > deadline:
        raise SystemExit(f"no suspect report {pattern} after 30 s")
    time.sleep(0.05)
print("done")
