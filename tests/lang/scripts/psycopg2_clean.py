"""psycopg2, clean: every connection closed by the program."""
import psycopg2

for i in range(3):
    conn = psycopg2.connect("")
    with conn.cursor() as cur:
        cur.execute("select %s", (i,))
        assert cur.fetchone() == (i,)
    conn.close()
with psycopg2.connect("") as conn:  # commits at the end of the block, does not close
    with conn.cursor() as cur:
        cur.execute("select 1")
conn.close()
print("done")
