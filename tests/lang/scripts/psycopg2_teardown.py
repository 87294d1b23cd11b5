"""psycopg2, leaking: a global connection left inside a transaction. Python's finalization closes it and
the server rolls the insert back (teardown)."""
import psycopg2


def record(conn, n):
    with conn.cursor() as cur:
        cur.execute("create temporary table pending (n int)")  # pqleak-test: begin
        cur.execute("insert into pending values (%s)", (n,))


conn = psycopg2.connect("")  # pqleak-test: open
record(conn, 1)
print("done")
