"""A connection left in a transaction and closed by a Python finalizer, never by the program: the runtime
closing what the program forgot (teardown). FINALIZER says which finalizer, each a different mark the shim
reads before it walks the stack: "del" a __del__ run when the last reference goes (inside the dealloc's
trashcan), "generator" a dropped generator's finally block (GeneratorExit handled), "generator_local" a
dropped generator's local psycopg2 connection released with its frame (the GeneratorExit's traceback
drops the frame, inside the trashcan). libpq
through ctypes (any CPython) but for generator_local."""
import ctypes
import os

libpq = ctypes.CDLL("libpq.so.5")
libpq.PQconnectdb.restype = ctypes.c_void_p
libpq.PQconnectdb.argtypes = [ctypes.c_char_p]
libpq.PQexec.restype = ctypes.c_void_p
libpq.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
libpq.PQclear.argtypes = [ctypes.c_void_p]
libpq.PQfinish.argtypes = [ctypes.c_void_p]


def begin(conn):
    libpq.PQclear(libpq.PQexec(conn, b"begin"))  # pqleak-test: begin


class Session:
    """Owns a connection; its finalizer closes it."""

    def __init__(self):
        self.conn = libpq.PQconnectdb(b"application_name=python_finalizer")  # pqleak-test: open
        begin(self.conn)

    def __del__(self):
        libpq.PQfinish(self.conn)


def rows():
    conn = libpq.PQconnectdb(b"application_name=python_finalizer")  # pqleak-test: gen_open
    begin(conn)
    try:
        yield 1
    finally:
        libpq.PQfinish(conn)


def local_rows():
    import psycopg2

    conn = psycopg2.connect("application_name=python_finalizer")  # pqleak-test: local_open
    conn.cursor().execute("select 1")  # pqleak-test: local_begin
    yield 1


mode = os.environ["FINALIZER"]
if mode == "del":
    s = Session()
    del s
elif mode == "generator":
    g = rows()
    next(g)
    del g
elif mode == "generator_local":
    g = local_rows()
    next(g)
    del g
print("done")
