"""libpq through ctypes (any CPython, no client library needed), leaking: os._exit skips every
finalizer, so nothing ever closes the connection (unclosed)."""
import ctypes
import os
import sys


def connect():
    libpq = ctypes.CDLL("libpq.so.5")
    libpq.PQconnectdb.restype = ctypes.c_void_p
    libpq.PQconnectdb.argtypes = [ctypes.c_char_p]
    libpq.PQstatus.argtypes = [ctypes.c_void_p]
    conn = libpq.PQconnectdb(b"application_name=ctypes_unclosed")  # pqleak-test: open
    return libpq, conn


libpq, conn = connect()
if libpq.PQstatus(conn) != 0:
    sys.exit("connect failed")
print("done")
sys.stdout.flush()
os._exit(0)
