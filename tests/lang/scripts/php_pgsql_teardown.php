<?php
// PHP pgsql, leaking: the script begins a transaction and ends. PHP's shutdown closes the connection
// and the server rolls the insert back (teardown).
$c = pg_connect("dbname=" . getenv("PGDATABASE"));  // pqleak-test: open
pg_query($c, "begin");  // pqleak-test: begin
pg_query($c, "create temporary table pending (n int)");
pg_query($c, "insert into pending values (1)");
echo "done\n";
