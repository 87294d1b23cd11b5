# Ruby pg, leaking: a global connection left inside a transaction. Ruby's exit finalizers close it and
# the server rolls the insert back (teardown).
require "pg"

$conn = PG.connect  # pqleak-test: open
$conn.exec("begin")  # pqleak-test: begin
$conn.exec("create temporary table pending (n int)")
$conn.exec("insert into pending values (1)")
puts "done"
