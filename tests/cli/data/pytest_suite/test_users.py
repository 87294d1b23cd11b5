"""The second file of the suite: test_leak_connection opens a connection and keeps it, idle, to the end
(held: closed by Python's finalization, a leak under --strict); test_clean_user closes its own."""
import psycopg2

kept = []


def test_clean_user():
    conn = psycopg2.connect("")
    with conn.cursor() as cur:
        cur.execute("select 1")
    conn.close()


def test_leak_connection():
    conn = psycopg2.connect("application_name=pytest_users")  # pqleak-test: leak
    conn.commit()
    kept.append(conn)
