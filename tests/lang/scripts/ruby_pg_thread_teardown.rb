# Ruby pg, leaking after a worker thread's clean work: the worker connects first and commits a
# transaction (ruby_run_node is not on a worker's stack: the shim learns that once for that thread and
# stops walking there), then the main program leaves a global connection inside a transaction. Ruby's
# exit finalizers close it and the server rolls the insert back (teardown).
require "pg"

Thread.new do
  c = PG.connect(application_name: "ruby_pg_thread_worker")
  c.transaction { |t| t.exec("select 1") }
  c.close
end.join

$conn = PG.connect  # pqleak-test: open
$conn.exec("begin")  # pqleak-test: begin
$conn.exec("create temporary table pending (n int)")
$conn.exec("insert into pending values (1)")
puts "done"
