<?php
// PHP PDO pgsql, leaking: the script leaves through libc's exit (by FFI), which skips PHP's shutdown, so
// nothing ever destroys the PDO object (unclosed).
$options = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION];
$pdo = new PDO("pgsql:dbname=" . getenv("PGDATABASE"), getenv("PGUSER"), null, $options);  // pqleak-test: open
$pdo->query("select 1");
echo "done\n";
FFI::cdef("void exit(int status);")->exit(0);
