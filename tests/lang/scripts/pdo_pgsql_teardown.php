<?php
// PHP PDO pgsql, leaking: the script begins a transaction and ends. PHP's shutdown destroys the PDO
// object, which rolls the transaction back and closes the connection (teardown).
$options = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION];
$pdo = new PDO("pgsql:dbname=" . getenv("PGDATABASE"), getenv("PGUSER"), null, $options);  // pqleak-test: open
$pdo->beginTransaction();  // pqleak-test: begin
$pdo->exec("create temporary table pending (n int)");
$pdo->exec("insert into pending values (1)");
echo "done\n";
