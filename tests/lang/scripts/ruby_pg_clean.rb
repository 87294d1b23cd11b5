# Ruby pg, clean: the transaction committed by the block, the connection closed.
require "pg"

conn = PG.connect
conn.transaction do |c|
  c.exec("create temporary table pending (n int)")
  c.exec("insert into pending values (1)")
end
conn.close
puts "done"
