#!/usr/bin/env bash
# `pqleak report` merges hand-written reports (data/merge): two processes of one program with the same
# leak site at different addresses and under different stack ids become one group; a live (signal)
# report of a process that also wrote an exit report adds no leaks and no second process; the merged
# JSON (trigger "merged") reads back to the same result.
source "$(dirname "$0")/lib.sh"
M=$CLI_DATA/merge

expect 23 "$PQLEAK" report "$M"
has "$T/out" "pqleak: 3 connections leaked (unclosed: not closed before exit), opened at open_db (app.c:12)"
has "$T/out" "    in: /usr/local/bin/app (pids 1001, 1002)"
has "$T/out" "    to: /tmp/s:5432 app app, db.example:5433 app report"
# runtime frames folded, the user's frames shown
has "$T/out" "      #0 ... 1 frame in libpq.so.5"
has "$T/out" "      #1 open_db src/app.c:12 (app+0x1234)"
has "$T/out" "      #4 ... 2 frames in libc.so.6"
hasnt "$T/out" "__libc_start_main"
has "$T/out" "opened at open_cache (cache.c:8)"
has "$T/out" "    transaction began at:"
has "$T/out" "      #0 begin_cache_tx src/cache.c:21 (app+0x2100)"
has "$T/out" "pqleak: 1 connection held until exit (held: closed by the language runtime's teardown while idle; a leak only with --strict), opened at open_pool (pool.c:3)"
has "$T/out" "pqleak: suppressed: 2 connections (unclosed) opened at vendor_connect in /usr/local/bin/worker (pid 2001), by leak:vendor_*"
has "$T/out" "pqleak: suppression leak:vendor_* matched 2 connections in 1 group"
has "$T/out" "pqleak: 6 connections leaked in 3 groups (1 suppressed) across 3 processes; 1 connection held until exit (not counted; --strict counts them)"
[ "$(count "$T/out" "opened at open_db")" -eq 1 ] || fail "the open_db leak is not one group"
[ ! -s "$T/err" ] || { show; fail "report wrote to stderr"; }
totals=$(tail -n 1 "$T/out")

# --strict: held connections count
expect 23 "$PQLEAK" report --strict "$M"
has "$T/out" "pqleak: 7 connections leaked in 4 groups (1 suppressed) across 3 processes"

# Order does not matter, and files may be named one by one.
expect 23 "$PQLEAK" report "$M"/pqleak-2001-exit-1.json "$M"/pqleak-1002-exit-1.json "$M"/pqleak-1001-signal-1.json \
  "$M"/pqleak-1001-exit-1.json
[ "$(tail -n 1 "$T/out")" = "$totals" ] || fail "merging in another order gave: $(tail -n 1 "$T/out")"

# A live report alone: no leaks (live reports never count leaks), one process.
expect 0 "$PQLEAK" report "$M"/pqleak-1001-signal-1.json
has "$T/out" "pqleak: no connection leaks in 1 process"

# The merged JSON report.
expect 23 "$PQLEAK" report --json "$M"
cp "$T/out" "$T/merged.json"
pyjson "$T/merged.json" \
  'd["schema"] == "pqleak/1" and d["trigger"] == "merged" and d["pid"] is None' \
  'sorted((p["program"], p["pid"]) for p in d["processes"]) == [("/usr/local/bin/app", 1001), ("/usr/local/bin/app", 1002), ("/usr/local/bin/worker", 2001)]' \
  'len(d["leaks"]) == 4' \
  '[l["count"] for l in d["leaks"]] == [3, 1, 1, 2]' \
  '[l["kind"] for l in d["leaks"]] == ["unclosed", "unclosed", "held", "unclosed"]' \
  'd["leaks"][0]["processes"] == [{"program": "/usr/local/bin/app", "pid": 1001}, {"program": "/usr/local/bin/app", "pid": 1002}]' \
  'd["leaks"][3]["suppressed"] is True and d["leaks"][3]["rule"] == "leak:vendor_*"' \
  'all(l["suppressed"] is False and l["rule"] is None for l in d["leaks"][:3])' \
  'all(str(l["stack"]) in d["stacks"] for l in d["leaks"])' \
  'd["leaks"][1]["tx_stack"] is not None and d["stacks"][str(d["leaks"][1]["tx_stack"])][0]["function"] == "begin_cache_tx"' \
  'd["stacks"][str(d["leaks"][0]["stack"])][1]["function"] == "open_db"' \
  'len(d["connections"]) == 7 and len(set(c["id"] for c in d["connections"])) == 7' \
  'sorted(i for l in d["leaks"] for i in l["connections"]) == sorted(c["id"] for c in d["connections"])' \
  'all(str(c["stack"]) in d["stacks"] for c in d["connections"])' \
  'set(c["pid"] for c in d["connections"] if c["id"] in d["leaks"][0]["connections"]) == {1001, 1002}' \
  'd["utilization"]["open"] == 7 and d["utilization"]["opened_total"] == 25' \
  'd["utilization"]["peak_open"] == 7 and d["utilization"]["failed_total"] == 1' \
  'd["settings"]["max_conns"] == 0'

# The merged report reads back as a report: same groups, same processes.
expect 23 "$PQLEAK" report "$T/merged.json"
[ "$(tail -n 1 "$T/out")" = "$totals" ] || fail "the merged report read back as: $(tail -n 1 "$T/out")"
has "$T/out" "    in: /usr/local/bin/app (pids 1001, 1002)"
expect 23 "$PQLEAK" report --json "$T/merged.json"
pyjson "$T/out" '[l["count"] for l in d["leaks"]] == [3, 1, 1, 2]' 'd["utilization"]["open"] == 7'

# Only *.json files not starting with '.' are read from a directory; others are ignored.
cp -r "$M" "$T/d"
echo '{garbage' >"$T/d/.pqleak-1-exit-1.json.tmp"
echo '{garbage' >"$T/d/.hidden.json"
echo '{garbage' >"$T/d/notes.txt"
mkdir "$T/d/sub.json"
expect 23 "$PQLEAK" report "$T/d"
[ "$(tail -n 1 "$T/out")" = "$totals" ] || fail "ignored files changed the result"
echo PASS
