<?php
// PHP pgsql, leaking: the script leaves through libc's exit (by FFI), which skips PHP's shutdown, so nothing
// ever closes the connection (unclosed).
function connect_db()
{
    return pg_connect("dbname=" . getenv("PGDATABASE") . " application_name=php_pgsql_unclosed");  // pqleak-test: open
}

$c = connect_db();
pg_query($c, "select 1");
echo "done\n";
FFI::cdef("void exit(int status);")->exit(0);
