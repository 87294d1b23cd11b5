"""psycopg 3, clean: `with psycopg.connect() as conn` commits and closes; the other one is closed by hand."""
import psycopg

for i in range(3):
    with psycopg.connect("") as conn:
        assert conn.execute("select %s", (i,)).fetchone() == (i,)
assert conn.closed
conn = psycopg.connect("")
conn.execute("select 1")
conn.rollback()
conn.close()
print("done")
