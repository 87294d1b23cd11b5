<?php
// The PHP query workload of tools/bench/run (php_query): a PHP CLI script's short work, in one process:
// CONNECTS x (pg_connect; QUERIES x `select 1`; TXNS x a short transaction, begin / select 1 / commit;
// pg_close). The connection comes from PG* variables (libpq reads them; PGDATABASE names the database).
//
//     php php_query_loop.php [CONNECTS [QUERIES [TXNS]]]     (defaults 40, 100, 100)
//
// Prints "transactions <n>" and exits 0; a failed connect or query exits 1. Every connection is closed,
// so the shim never reports a leak.
$args = array_map('intval', array_slice($argv, 1)) + [40, 100, 100];
[$connects, $queries, $txns] = $args;
for ($c = 0; $c < $connects; $c++) {
    // A new link each time: pg_connect would reuse an open one with the same string.
    $conn = pg_connect("dbname=" . getenv("PGDATABASE"), PGSQL_CONNECT_FORCE_NEW);
    if (!$conn)
        exit(1);
    for ($i = 0; $i < $queries; $i++)
        pg_query($conn, "select 1") or exit(1);
    for ($i = 0; $i < $txns; $i++) {
        pg_query($conn, "begin") or exit(1);
        pg_query($conn, "select 1") or exit(1);
        pg_query($conn, "commit") or exit(1);
    }
    pg_close($conn);
}
echo "transactions " . ($connects * $txns) . "\n";
