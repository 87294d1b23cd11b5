#!/usr/bin/env bash
# The real pg_basebackup -X stream under `pqleak run` against the test server (issue 13 item 13): its
# WAL connection handed to the forked streaming child, and its main connection finished by the child's
# exit (pg_basebackup's atexit handler runs in the child too) after the parent's last use of it, are
# neither leaks nor misuse: the run passes, saying both hand-offs. Skipped (77) without pg_basebackup or
# when the server takes no replication connection (the control run without pqleak fails).
source "$(dirname "$0")/lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
command -v pg_basebackup >/dev/null || { echo "SKIP: no pg_basebackup"; exit 77; }
pg_basebackup -c fast -X stream -D "$T/control" >"$T/control.log" 2>&1 ||
  { cat "$T/control.log"; echo "SKIP: pg_basebackup fails without pqleak"; exit 77; }

expect 0 "$PQLEAK" run --json "$T/m.json" -- pg_basebackup -c fast -X stream -D "$T/backup"
[ -f "$T/backup/PG_VERSION" ] || fail "no backup was made"
hasnt "$T/err" "connection misuse ("
hasnt "$T/err" "leaked (unclosed"
has "$T/err" "pqleak: fork hand-off: connection to $PGHOST:"
has "$T/err" "which used it: not a leak of pid "
has "$T/err" "closed by its forked child PID "
has "$T/err" "pqleak: no connection leaks in 2 processes"
pyjson "$T/m.json" 'len(d["misuse"]) >= 2 and all(m["handed_off"] for m in d["misuse"])' \
  'sum(l["count"] for l in d["leaks"]) == 0'
echo PASS
