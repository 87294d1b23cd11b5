# A psycopg 3 psycopg_pool.ConnectionPool: the pool's own threads open its connections; a request handler
# on a worker thread checks one out and, with POOL_MODE=keeps, never gives it back (the fixed twin,
# POOL_MODE=returns, does). psycopg_pool keeps no reference to a checked-out connection: when the handler
# returns, Python's garbage collector closes it (PGconn.__del__), its transaction rolled back, and the
# pool has lost a slot for good.
import os
import threading

from psycopg_pool import ConnectionPool

keeps = os.environ["POOL_MODE"] == "keeps"
pool = ConnectionPool("", min_size=2, max_size=4)
pool.wait()


def handle_order(n):
    conn = pool.getconn()
    conn.execute("SELECT %s", (n,)).fetchone()  # pqleak-test: kept
    if not keeps:
        conn.commit()
        pool.putconn(conn)


t = threading.Thread(target=handle_order, args=(1,))
t.start()
t.join()
if not keeps:
    pool.close()
print("done")
