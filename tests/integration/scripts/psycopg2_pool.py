# A psycopg2 ThreadedConnectionPool: the pool opens its connections at construction; a request handler
# on a worker thread checks one out and, with "keeps", never puts it back (the fixed twin does).
import sys
import threading

from psycopg2.pool import ThreadedConnectionPool

keeps = sys.argv[1] == "keeps"
pool = ThreadedConnectionPool(2, 4, "")


def handle_order(n):
    conn = pool.getconn()
    cur = conn.cursor()
    cur.execute("SELECT %s", (n,))
    cur.fetchone()
    if not keeps:
        conn.commit()
        pool.putconn(conn)


t = threading.Thread(target=handle_order, args=(1,))
t.start()
t.join()
if not keeps:
    pool.closeall()
