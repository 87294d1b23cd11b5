"""psycopg2, idle: a global connection, its work committed, never closed. Python's finalization closes it
with nothing in flight (held: a leak only in strict mode)."""
import psycopg2

conn = psycopg2.connect("")  # pqleak-test: open
with conn.cursor() as cur:
    cur.execute("select 1")
conn.commit()
print("done")
