<?php
// PHP PDO pgsql, leaking: the script begins a transaction and ends. PHP's shutdown destroys the PDO
// object, which rolls the transaction back and closes the connection (teardown).
$pdo = new PDO("pgsql:dbname=" . getenv("PGDATABASE"), getenv("PGUSER"), null,
               [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$pdo->beginTransaction();
$pdo->exec("create temporary table pending (n int)");
$pdo->exec("insert into pending values (1)");
echo "done\n";
