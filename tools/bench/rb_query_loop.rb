# The Ruby query workload of tools/bench/run (rb_query): a threaded server's worker (Puma's, Sidekiq's)
# doing short work, in one process. On one worker thread, CONNECTS x (PG.connect; QUERIES x `select 1`;
# TXNS x a short transaction, `conn.transaction { select 1 }`; close). The connection comes from PG*
# variables.
#
#     ruby rb_query_loop.rb [CONNECTS [QUERIES [TXNS]]]     (defaults 40, 100, 100)
#
# Prints "transactions <n>" and exits 0; a failed connect or query raises (exit 1). Every connection is
# closed, so the shim never reports a leak.
require "pg"

connects, queries, txns = (ARGV + %w[40 100 100][ARGV.size..]).map { |a| Integer(a) }
Thread.new do
  connects.times do
    conn = PG.connect
    queries.times { conn.exec("select 1").clear }
    txns.times { conn.transaction { |c| c.exec("select 1").clear } }
    conn.close
  end
end.join
puts "transactions #{connects * txns}"
