"""A pytest suite under pqleak (tests/cli/e2e_pytest.sh): test_open_for_later opens a connection that
it keeps for a later test, test_checkout begins a transaction on it and never ends it (a teardown leak
opened in one test, its transaction begun in another); the other tests are clean."""
import psycopg2
import pytest

kept = {}


@pytest.fixture
def db():
    conn = psycopg2.connect("application_name=pytest_clean")
    yield conn
    conn.close()


def test_clean_fixture(db):
    with db.cursor() as cur:
        cur.execute("select 1")
    db.commit()


def test_open_for_later():
    kept["orders"] = psycopg2.connect("application_name=pytest_orders")  # pqleak-test: open
    kept["orders"].autocommit = True


def test_checkout():
    conn = kept["orders"]
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute("create temporary table cart (n int)")  # pqleak-test: begin


def test_clean_after():
    conn = psycopg2.connect("")
    conn.close()
