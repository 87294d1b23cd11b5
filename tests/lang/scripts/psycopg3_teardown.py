"""psycopg 3, leaking: a global connection left inside a transaction. Python's finalization closes it and
the server rolls the insert back (teardown)."""
import psycopg


def record(conn, n):
    conn.execute("create temporary table pending (n int)")  # pqleak-test: begin
    conn.execute("insert into pending values (%s)", (n,))


conn = psycopg.connect("")  # pqleak-test: open
record(conn, 1)
print("done")
