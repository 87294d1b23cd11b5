"""psycopg 3, idle: a global autocommit connection, never closed. Python's finalization closes it with
nothing in flight (held: a leak only in strict mode)."""
import psycopg

conn = psycopg.connect("", autocommit=True)  # pqleak-test: open
conn.execute("select 1")
print("done")
