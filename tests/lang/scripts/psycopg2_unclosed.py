"""psycopg2, leaking: os._exit skips every destructor, so nothing ever closes the connection (unclosed)."""
import os

import psycopg2


def open_db():
    return psycopg2.connect("application_name=psycopg2_unclosed")  # pqleak-test: open


conn = open_db()
with conn.cursor() as cur:
    cur.execute("select 1")
conn.commit()
print("done", flush=True)
os._exit(0)
