<?php
// PHP PDO pgsql, clean: the transaction committed, the connection closed by dropping the last reference.
$pdo = new PDO("pgsql:dbname=" . getenv("PGDATABASE"), getenv("PGUSER"), null,
               [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$pdo->beginTransaction();
$pdo->exec("create temporary table pending (n int)");
$pdo->exec("insert into pending values (1)");
$pdo->commit();
$pdo = null;
echo "done\n";
