#!/usr/bin/env bash
# `pqleak status` against a real program under the real shim (it_prog serve: two connections, one idle
# in a transaction begun in forget_commit): the plugin line, its performance data and the exit status
# at each utilization level (exactly at the warning and critical levels too), suspects (idle in a
# transaction, open too long) counted in the summary and the perf data, the connections with their
# stacks, --json, where the report is looked for (the process's own PQLEAK_REPORT_DIR, absolute or
# relative, else its private ${TMPDIR:-/tmp}/pqleak-UID), one report per process, and the ways no
# report can be had (timeout, a corrupt file, the process exiting). status_foreign.sh has the part that
# needs root (report files of another user).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
mkdir -p "$T/tmp"

# OK: no cap. Two connections, the second idle in a transaction begun in forget_commit; each line
# names its application_name.
serve plain TMPDIR="$T/tmp" PGAPPNAME=serve-app
expect 0 "$PQLEAK" status "$pid"
# The whole plugin line: no suspect, no cap, every counter.
[ "$(head -n 1 "$T/out")" = "PQLEAK OK - 2 connections open, no cap | open=2;;;0 peak=2;;;0 suspects=0 opened=2c closed=0c failed=0c waits=0c timeouts=0c refused=0c" ] ||
  { cat "$T/out" >&2; fail "unexpected plugin line"; }
has "$T/out" "process $pid ($PQLEAK_BIN/it_prog), live report of "
has "$T/out" "utilization: 2 open, peak 2; no cap"
has "$T/out" "2 connections open:"
[ "$(count "$T/out" "opened at:")" = 2 ] || { cat "$T/out" >&2; fail "expected two open stacks"; }
[ "$(count "$T/out" "transaction began at:")" = 1 ] || { cat "$T/out" >&2; fail "expected one transaction stack"; }
has "$T/out" ", idle in transaction (intrans), thread $pid"
[ "$(count "$T/out" ", application_name serve-app, ")" = 2 ] || { cat "$T/out" >&2; fail "application_name not shown"; }
has "$T/out" "mode_serve "
# Where the transaction began: forget_commit, among the innermost frames of the transaction stack.
sed -n '/transaction began at:/,$p' "$T/out" >"$T/tx"
has "$T/tx" "forget_commit "
[ ! -s "$T/err" ] || { show; fail "status wrote to stderr"; }
# A probe never writes into the service's own log (its stderr here): the report goes to a file only.
hasnt "$T/serve.plain.err" "live report"
# The report is in the process's private default directory, under its own TMPDIR.
dir=$T/tmp/pqleak-$(id -u)
[ "$(stat -c %a "$dir")" = 700 ] || fail "$dir is not mode 700"
# Besides reports, the directory holds the reporter's advertisement (pqleak-PID.reporter).
[ -f "$dir/pqleak-$pid.reporter" ] || fail "no advertisement $dir/pqleak-$pid.reporter"
first=$(ls "$dir" | grep -v '\.reporter$')
case "$first" in pqleak-$pid-signal-*.json) ;; *) fail "unexpected files in $dir: $first" ;; esac
has "$T/out" "$dir/$first"

# --json: the report itself; it parses, is a live report of this process, and sets the same status.
expect 0 "$PQLEAK" status --json "$pid"
pyjson "$T/out" 'd["schema"] == "pqleak/1"' 'd["trigger"] == "signal"' "d['pid'] == $pid" \
  '"leaks" not in d' 'len(d["connections"]) == 2' 'd["utilization"]["open"] == 2' \
  'sorted(c["tx_status"] for c in d["connections"]) == ["idle", "intrans"]'
# One signal report per process: the second request replaced the first.
second=$(ls "$dir" | grep -v '\.reporter$')
[ "$(echo "$second" | wc -l)" = 1 ] && [ "$second" != "$first" ] || fail "expected one new report, got: $second"
# ... and --json printed that report byte for byte.
cmp "$T/out" "$dir/$second" || fail "--json did not print the report $dir/$second as it is"

# A thread id is not a process id.
tid=$(ls "/proc/$pid/task" | grep -vx "$pid" | head -n 1)
expect 3 "$PQLEAK" status "$tid"
has "$T/out" "PQLEAK UNKNOWN - $tid is a thread of process $pid, not a process"
one_line "$T/out"

# --timeout: a stopped process cannot answer; status gives up after the timeout, not the default 10 s.
stop "$pid"
start=$SECONDS
expect 3 "$PQLEAK" status --timeout 1 "$pid"
[ $((SECONDS - start)) -le 4 ] || fail "--timeout 1 took $((SECONDS - start)) s"
has "$T/out" "PQLEAK UNKNOWN - no live report from process $pid in $dir after 1 s"
one_line "$T/out"
kill -CONT "$pid"
expect 0 "$PQLEAK" status "$pid"

# A file that appears after the signal but is not a report: 3, naming it (the process is held stopped
# so that the planted file is the only new one).
stop "$pid"
"$PQLEAK" status --timeout 20 "$pid" >"$T/out" 2>"$T/err" &
st=$!
wait_for 10 pending "$pid" USR1
printf '{"schema": "pqleak/1", "trig' >"$dir/.tmp" && mv "$dir/.tmp" "$dir/pqleak-$pid-signal-999.json"
got=0
wait "$st" || got=$?
[ "$got" = 3 ] || { show; fail "status with a corrupt report exited with $got, expected 3"; }
has "$T/out" "PQLEAK UNKNOWN - $dir/pqleak-$pid-signal-999.json: not valid JSON, truncated or corrupt"
one_line "$T/out"
rm -f "$dir/pqleak-$pid-signal-999.json"
kill -CONT "$pid"
expect 0 "$PQLEAK" status "$pid"

# The process exits while status waits: 3 at once, not after the timeout.
stop "$pid"
"$PQLEAK" status --timeout 30 "$pid" >"$T/out" 2>"$T/err" &
st=$!
wait_for 10 pending "$pid" USR1
start=$SECONDS
kill -KILL "$pid"
got=0
wait "$st" || got=$?
[ "$got" = 3 ] || { show; fail "status of an exiting process exited with $got, expected 3"; }
[ $((SECONDS - start)) -le 5 ] || fail "status waited $((SECONDS - start)) s for a dead process"
has "$T/out" "PQLEAK UNKNOWN - process $pid exited before it wrote a live report"
{ wait "$pid"; } 2>/dev/null || true
rm -rf "$dir"

# Utilization levels: 2 of 2 is 100% (critical), 2 of 3 at PQLEAK_WARN_PCT=60 is a warning, a critical
# level of 60 makes it critical; --json exits the same way. Exactly at a level counts as reaching it
# (2 of 4 is 50%): at a warning level of 50 WARNING, of 51 OK; at a critical level of 50 CRITICAL, of
# 51 WARNING (warning level 40).
serve cap2 PQLEAK_REPORT_DIR="$T/r2" PQLEAK_MAX_CONNS=2
expect 2 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK CRITICAL - 2 of 2 connections open (100%) | open=2;;;0;2 peak=2;;;0;2 utilization=100%;80;95;0;100 "
has "$T/out" "utilization: 2 of 2 open (100%), peak 2; warning at 80%, critical at 95%"
expect 2 "$PQLEAK" status --json "$pid"
pyjson "$T/out" 'd["utilization"]["utilization_pct"] == 100' 'd["settings"]["max_conns"] == 2'
unserve
serve cap3 PQLEAK_REPORT_DIR="$T/r3" PQLEAK_MAX_CONNS=3 PQLEAK_WARN_PCT=60
expect 1 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK WARNING - 2 of 3 connections open (66.7%) | "
has "$T/out" "utilization=66.7%;60;95;0;100"
expect 1 "$PQLEAK" status --json "$pid"
unserve
serve crit3 PQLEAK_REPORT_DIR="$T/r3" PQLEAK_MAX_CONNS=3 PQLEAK_WARN_PCT=50 PQLEAK_CRIT_PCT=60
expect 2 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK CRITICAL - 2 of 3 connections open (66.7%) | "
unserve
# level WARN CRIT STATUS WORD: 2 of 4 open, with these levels, is STATUS (WORD) in text and --json.
level() {
  serve "cap4-$1-$2" PQLEAK_REPORT_DIR="$T/r4" PQLEAK_MAX_CONNS=4 PQLEAK_WARN_PCT="$1" PQLEAK_CRIT_PCT="$2"
  expect "$3" "$PQLEAK" status "$pid"
  first_line "$T/out" "PQLEAK $4 - 2 of 4 connections open (50%) | open=2;;;0;4 peak=2;;;0;4 utilization=50%;$1;$2;0;100 suspects=0 "
  has "$T/out" "utilization: 2 of 4 open (50%), peak 2; warning at $1%, critical at $2%"
  expect "$3" "$PQLEAK" status --json "$pid"
  pyjson "$T/out" 'd["utilization"]["utilization_pct"] == 50' "d['settings']['warn_pct'] == $1" \
    "d['settings']['crit_pct'] == $2"
  unserve
}
level 50 95 1 WARNING
level 51 95 0 OK
level 40 50 2 CRITICAL
level 40 51 1 WARNING

# Suspects: with PQLEAK_SUSPECT_IDLE_TX the connection idle in its transaction becomes one (the shim
# says so in its log once it has marked it); with PQLEAK_SUSPECT_AGE both do. A suspect is a WARNING
# even without a cap. The summary and the suspects= perf data count them, each is marked in the list.
serve idletx PQLEAK_REPORT_DIR="$T/rs" PQLEAK_SUSPECT_IDLE_TX=0.1
wait_for 30 grep -qs "SUSPECT: connection #" "$T/serve.idletx.err"
expect 1 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK WARNING - 2 connections open, no cap, 1 suspect | open=2;;;0 peak=2;;;0 suspects=1 opened=2c "
[ "$(count "$T/out" "SUSPECT")" = 1 ] || { cat "$T/out" >&2; fail "expected one connection marked SUSPECT"; }
has "$T/out" ", idle in transaction (intrans), thread $pid, SUSPECT: idle in a transaction longer than PQLEAK_SUSPECT_IDLE_TX"
expect 1 "$PQLEAK" status --json "$pid"
pyjson "$T/out" 'sorted(str(c.get("suspect")) for c in d["connections"]) == ["None", "idle_tx"]'
unserve
serve age PQLEAK_REPORT_DIR="$T/rs" PQLEAK_SUSPECT_AGE=0.1
two_suspects() { [ "$(count "$T/serve.age.err" "SUSPECT: connection #")" = 2 ]; }
wait_for 30 two_suspects
expect 1 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK WARNING - 2 connections open, no cap, 2 suspects | open=2;;;0 peak=2;;;0 suspects=2 opened=2c "
[ "$(count "$T/out" ", SUSPECT: open longer than PQLEAK_SUSPECT_AGE")" = 2 ] ||
  { cat "$T/out" >&2; fail "expected two connections marked SUSPECT (age)"; }
unserve
# ... and at a level, a suspect does not hide the level: WARNING, 1 suspect.
serve capsus PQLEAK_REPORT_DIR="$T/rs" PQLEAK_MAX_CONNS=4 PQLEAK_WARN_PCT=50 PQLEAK_SUSPECT_IDLE_TX=0.1
wait_for 30 grep -qs "SUSPECT: connection #" "$T/serve.capsus.err"
expect 1 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK WARNING - 2 of 4 connections open (50%), 1 suspect | open=2;;;0;4 peak=2;;;0;4 utilization=50%;50;95;0;100 suspects=1 "
unserve

# PQLEAK_REPORT_DIR is the process's own: absolute, or relative to its working directory; status is
# told neither. PQLEAK_SIGNAL=USR2 is honored.
serve absdir PQLEAK_REPORT_DIR="$T/reports" PQLEAK_SIGNAL=USR2
expect 0 "$PQLEAK" status "$pid"
has "$T/out" ": $T/reports/pqleak-$pid-signal-"
ls "$T/reports"/pqleak-"$pid"-signal-*.json >/dev/null || fail "no report in $T/reports"
unserve
mkdir -p "$T/cwd"
serve reldir -C "$T/cwd" PQLEAK_REPORT_DIR=rel
expect 0 "$PQLEAK" status "$pid"
has "$T/out" ": $T/cwd/rel/pqleak-$pid-signal-"
ls "$T/cwd/rel"/pqleak-"$pid"-signal-*.json >/dev/null || fail "no report in $T/cwd/rel"
unserve

# With neither PQLEAK_REPORT_DIR nor TMPDIR (nor a usable one: relative is ignored), the private
# directory is /tmp/pqleak-UID. Only this test's files are removed afterwards, and the directory only
# if this test made it and it is empty.
shared=/tmp/pqleak-$(id -u)
made=0
[ -e "$shared" ] || made=1
for tmpdir in unset relative/tmp; do
  if [ "$tmpdir" = unset ]; then
    serve shared1 -u TMPDIR
  else
    serve shared2 TMPDIR="$tmpdir"
  fi
  got=0
  "$PQLEAK" status "$pid" >"$T/out" 2>"$T/err" || got=$?
  files=$(ls "$shared"/pqleak-"$pid"-signal-*.json 2>/dev/null || true)
  unserve
  rm -f "$shared"/pqleak-"$pid"-signal-*.json
  [ "$got" = 0 ] || { show; fail "status (TMPDIR $tmpdir) exited with $got, expected 0"; }
  [ -n "$files" ] || fail "no report in $shared (TMPDIR $tmpdir)"
  has "$T/out" ": $shared/pqleak-$pid-signal-"
done
[ "$made" = 0 ] || rmdir "$shared" 2>/dev/null || true
echo PASS
