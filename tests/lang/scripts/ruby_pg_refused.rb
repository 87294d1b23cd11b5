# Ruby pg under PQLEAK_MAX_CONNS=1: a second connect while the first connection is still open is refused
# by pqleak at once (pg connects without blocking: no free slot, no wait); PG::ConnectionBad carries
# pqleak's message. Once the first connection is closed, a connect succeeds: the refused one took no slot.
require "pg"

$stdout.sync = true
held = PG.connect(application_name: "ruby_pg_refused_held")  # pqleak-test: open
held.exec("select 1")
begin
  second = PG.connect(application_name: "ruby_pg_refused_second")
  puts "second connect succeeded"
  second.close
rescue PG::ConnectionBad => e
  puts "refused: #{e.message.strip}"
end
held.close
again = PG.connect(application_name: "ruby_pg_refused_again")
again.close
puts "done"
