<?php
// PHP PDO pgsql, idle: the script's work done, the PDO object never dropped. PHP's shutdown destroys it
// with nothing in flight (held: a leak only in strict mode).
class Db
{
    public static function open()
    {
        $options = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION];
        return new PDO("pgsql:dbname=" . getenv("PGDATABASE"), getenv("PGUSER"), null, $options);  // pqleak-test: open
    }
}

$pdo = Db::open();
$pdo->query("select 1");
echo "done\n";
