#!/usr/bin/env bash
# End to end, real shim and real server: programs that close their connections pass. psql, createdb,
# pgbench -i and pgbench -C (a new connection per transaction) and a clean cli_leaker: exit 0, one
# "no connection leaks" line, every process that connected reported.
source "$(dirname "$0")/lib.sh"
: "${CLI_LEAKER:?}" "${PGHOST:?run through tools/pgserver exec}"
db=pqleak_cli_clean_$$

work="
  set -e
  psql -XAtqc 'select 1' >/dev/null
  createdb $db
  pgbench -i -q $db
  pgbench -C -t 20 -c 2 $db
  \"\$CLI_LEAKER\" clean 4
  dropdb $db
"
expect 0 "$PQLEAK" run --json "$T/m.json" -- bash -c "$work"
has "$T/err" "pqleak: no connection leaks in "
hasnt "$T/err" "leaked"
pyjson "$T/m.json" \
  'd["leaks"] == []' \
  'len(d["processes"]) >= 6' \
  'set(p["program"].rsplit("/", 1)[-1] for p in d["processes"]) >= {"psql", "createdb", "pgbench", "cli_leaker", "dropdb"}' \
  'd["utilization"]["opened_total"] >= 20 + 4 + 1'
echo PASS
