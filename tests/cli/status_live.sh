#!/usr/bin/env bash
# `pqleak status` against a real program under the real shim (it_prog serve: two connections, one idle
# in a transaction begun in forget_commit): the plugin line and exit status at each utilization level,
# the connections with their stacks, --json, where the report is looked for (the process's own
# PQLEAK_REPORT_DIR, absolute or relative, else its private ${TMPDIR:-/tmp}/pqleak-UID), one report per
# process, and the ways no report can be had (timeout, a corrupt or foreign file, the process exiting).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
mkdir -p "$T/tmp"

# OK: no cap. Two connections, the second idle in a transaction begun in forget_commit.
serve plain TMPDIR="$T/tmp"
expect 0 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK OK - 2 connections open, no cap | open=2;;;0 peak=2;;;0 "
has "$T/out" "process $pid ($PQLEAK_BIN/it_prog), live report of "
has "$T/out" "utilization: 2 open, peak 2; no cap"
has "$T/out" "2 connections open:"
[ "$(count "$T/out" "opened at:")" = 2 ] || { cat "$T/out" >&2; fail "expected two open stacks"; }
[ "$(count "$T/out" "transaction began at:")" = 1 ] || { cat "$T/out" >&2; fail "expected one transaction stack"; }
has "$T/out" ", idle in transaction (intrans), thread $pid"
has "$T/out" "mode_serve "
# Where the transaction began: forget_commit, among the innermost frames of the transaction stack.
sed -n '/transaction began at:/,$p' "$T/out" >"$T/tx"
has "$T/tx" "forget_commit "
[ ! -s "$T/err" ] || { show; fail "status wrote to stderr"; }
# The report is in the process's private default directory, under its own TMPDIR.
dir=$T/tmp/pqleak-$(id -u)
[ "$(stat -c %a "$dir")" = 700 ] || fail "$dir is not mode 700"
first=$(ls "$dir")
case "$first" in pqleak-$pid-signal-*.json) ;; *) fail "unexpected files in $dir: $first" ;; esac
has "$T/out" "$dir/$first"

# --json: the report itself; it parses, is a live report of this process, and sets the same status.
expect 0 "$PQLEAK" status --json "$pid"
pyjson "$T/out" 'd["schema"] == "pqleak/1"' 'd["trigger"] == "signal"' "d['pid'] == $pid" \
  '"leaks" not in d' 'len(d["connections"]) == 2' 'd["utilization"]["open"] == 2' \
  'sorted(c["tx_status"] for c in d["connections"]) == ["idle", "intrans"]'
if command -v jq >/dev/null; then
  [ "$(jq -r .trigger "$T/out")" = signal ] || fail "jq does not read the --json output"
fi
# One signal report per process: the second request replaced the first.
second=$(ls "$dir")
[ "$(echo "$second" | wc -l)" = 1 ] && [ "$second" != "$first" ] || fail "expected one new report, got: $second"

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

# A report-looking file that is not the process's user's is never read (nor a symlink); status keeps
# waiting and says what it ignored.
stop "$pid"
"$PQLEAK" status --timeout 2 "$pid" >"$T/out" 2>"$T/err" &
st=$!
wait_for 10 pending "$pid" USR1
printf '{"schema": "pqleak/1", "trigger": "signal", "pid": %s, "connections": [], "utilization": {"open": 0}}\n' \
  "$pid" >"$T/tmp/fake.json"
if [ "$(id -u)" = 0 ]; then
  chown nobody "$T/tmp/fake.json"
  mv "$T/tmp/fake.json" "$dir/pqleak-$pid-signal-998.json"
  ln -s "$dir/pqleak-$pid-signal-998.json" "$dir/pqleak-$pid-signal-997.json"
  got=0
  wait "$st" || got=$?
  [ "$got" = 3 ] || { show; fail "status with foreign files exited with $got, expected 3"; }
  has "$T/out" "PQLEAK UNKNOWN - no live report from process $pid in $dir after 2 s"
  has "$T/out" "ignored 2 files there not owned by its user"
  rm -f "$dir/pqleak-$pid-signal-998.json" "$dir/pqleak-$pid-signal-997.json"
else
  wait "$st" || true
  echo "SKIP: foreign-owner files (needs root)"
fi
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
# level of 60 makes it critical, 2 of 4 is OK; --json exits the same way.
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
unserve
serve crit3 PQLEAK_REPORT_DIR="$T/r3" PQLEAK_MAX_CONNS=3 PQLEAK_WARN_PCT=50 PQLEAK_CRIT_PCT=60
expect 2 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK CRITICAL - 2 of 3 connections open (66.7%) | "
unserve
serve cap4 PQLEAK_REPORT_DIR="$T/r4" PQLEAK_MAX_CONNS=4
expect 0 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK OK - 2 of 4 connections open (50%) | "
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
