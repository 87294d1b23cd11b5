<?php
// PHP pgsql, leaking, leaving through _exit called by FFI (no atexit handlers, no PHP shutdown): the shim's
// _exit must still write the exit report. PHP loads its ffi extension with RTLD_DEEPBIND, which would bind
// ffi.so's own dlsym (and the RTLD_DEFAULT lookup FFI::cdef makes with it) to libc before the shim: the
// shim's dlopen drops RTLD_DEEPBIND for ffi.so.
function connect_db()
{
    return pg_connect("dbname=" . getenv("PGDATABASE") . " application_name=php_ffi_underscore_exit");  // pqleak-test: open
}

$c = connect_db();
pg_query($c, "select 1");
echo "done\n";
FFI::cdef("void _exit(int status);")->_exit(0);
