# Ruby pg, idle: a global connection, its work done, never closed. Ruby's exit finalizers close it with
# nothing in flight (held: a leak only in strict mode).
require "pg"

$conn = PG.connect(application_name: "ruby_pg_held")  # pqleak-test: open
$conn.exec("select 1")
puts "done"
