"""psycopg2 and psycopg 3 in one process: psycopg2 links libpq, so the preloaded shim sees its connection
in any case; psycopg 3 finds libpq's functions with ctypes (dlsym), which only the shim's dlsym hook
answers. The psycopg2 connection is closed; the psycopg 3 one is left inside a transaction (teardown
when seen)."""
import psycopg
import psycopg2

linked = psycopg2.connect("application_name=psycopg3_hook_off_psycopg2")  # pqleak-test: psycopg2
with linked.cursor() as cur:
    cur.execute("select 1")
linked.commit()

conn = psycopg.connect("application_name=psycopg3_hook_off_psycopg3")  # pqleak-test: open
conn.execute("create temporary table pending (n int)")  # pqleak-test: begin
conn.execute("insert into pending values (1)")

linked.close()
print("done")
