# Ruby pg, leaking: exit! skips the finalizers, so nothing ever closes the connection (unclosed).
require "pg"

$conn = PG.connect  # pqleak-test: open
$conn.exec("select 1")
puts "done"
$stdout.flush
exit!(0)
