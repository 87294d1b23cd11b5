<?php
// PHP pgsql, idle: the script's work done, the connection never closed. PHP's shutdown closes it with
// nothing in flight (held: a leak only in strict mode).
function connect_db()
{
    return pg_connect("dbname=" . getenv("PGDATABASE") . " application_name=php_pgsql_held");  // pqleak-test: open
}

$c = connect_db();
pg_query($c, "select 1");
echo "done\n";
