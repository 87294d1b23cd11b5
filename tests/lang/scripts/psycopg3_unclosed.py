"""psycopg 3, leaking: os._exit skips every destructor, so nothing ever closes the connection (unclosed)."""
import os

import psycopg

conn = psycopg.connect("application_name=psycopg3_unclosed")  # pqleak-test: open
conn.execute("select 1")
conn.commit()
print("done", flush=True)
os._exit(0)
