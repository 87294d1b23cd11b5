<?php
// PHP pgsql, clean: the transaction committed, the connection closed with pg_close.
$c = pg_connect("dbname=" . getenv("PGDATABASE"));
pg_query($c, "begin");
pg_query($c, "create temporary table pending (n int)");
pg_query($c, "insert into pending values (1)");
pg_query($c, "commit");
pg_close($c);
echo "done\n";
