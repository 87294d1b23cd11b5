"""Connects once while pytest collects, before any test runs (PYTEST_CURRENT_TEST unset): the shim
decides at its first connection whether to look for test names, and must see that it is in Python."""
import psycopg2

psycopg2.connect("application_name=pytest_collect").close()
