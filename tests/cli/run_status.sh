#!/usr/bin/env bash
# `pqleak run` without a database: the child's status passes through (128+N for a signal), signals
# are forwarded, the environment the shim needs is set, LD_PRELOAD is extended, the private report
# directory is made 0700 and removed, --report-dir is kept and only this run's reports count, and
# reports are read (the command writes them itself here, standing in for the shim) and fail closed.
source "$(dirname "$0")/lib.sh"
M=$CLI_DATA/merge
SHIM=$(realpath "$PQLEAK_SHIM")

expect 7 "$PQLEAK" run -- sh -c 'exit 7'
expect 143 "$PQLEAK" run -- sh -c 'kill -TERM $$'
expect 130 "$PQLEAK" run -- sh -c 'kill -INT $$'
expect 0 "$PQLEAK" run -- true
has "$T/err" "pqleak: no reports: no process opened a PostgreSQL connection"
# --no-fail and the child's own failure both pass the status through
expect 3 "$PQLEAK" run --no-fail -- sh -c 'exit 3'

# The child's environment.
expect 0 env -u LD_PRELOAD "$PQLEAK" run -- sh -c 'env; stat -c "mode=%a" "$PQLEAK_REPORT_DIR"'
has "$T/out" "LD_PRELOAD=$SHIM"
has "$T/out" "PQLEAK_EXITCODE=0"
has "$T/out" "PQLEAK_TEXT_REPORT=0"
has "$T/out" "mode=700"
hasnt "$T/out" "PQLEAK_STRICT="
hasnt "$T/out" "PQLEAK_MAX_CONNS="
dir=$(sed -n 's/^PQLEAK_REPORT_DIR=//p' "$T/out")
[ -n "$dir" ] || fail "no PQLEAK_REPORT_DIR"
[ ! -e "$dir" ] || fail "the private report directory $dir was not removed"
# Ours goes last in LD_PRELOAD, after what the user had.
other=$(ls /lib/*-linux-gnu/libm.so.6 /usr/lib/*-linux-gnu/libm.so.6 2>/dev/null | head -n 1)
[ -n "$other" ] || fail "no libm.so.6 found to preload"
expect 0 env LD_PRELOAD="$other" "$PQLEAK" run -- sh -c 'echo "LD_PRELOAD=$LD_PRELOAD"'
has "$T/out" "LD_PRELOAD=$other:$SHIM"
cd "$T"
printf 'leak:nothing\n' >rules
expect 0 "$PQLEAK" run --suppressions rules --max-conns 5 --checkout-timeout 2.5 --strict -- env
has "$T/out" "PQLEAK_SUPPRESSIONS=$T/rules"
has "$T/out" "PQLEAK_MAX_CONNS=5"
has "$T/out" "PQLEAK_CHECKOUT_TIMEOUT=2.5"
has "$T/out" "PQLEAK_STRICT=1"
cd - >/dev/null

# Signals sent to pqleak reach the command; pqleak then exits as the command did. The command says its
# pid once it runs (pqleak forwards signals from before it starts the command); afterwards it must be
# gone: not left running by a pqleak that died of the signal itself.
for sig in TERM HUP; do
  rm -f "$T/child.pid"
  "$PQLEAK" run -- sh -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" && exec sleep 30' sh "$T/child.pid" \
    >"$T/out" 2>"$T/err" &
  pid=$!
  wait_for 30 test -s "$T/child.pid"
  child=$(cat "$T/child.pid")
  kill -"$sig" "$pid"
  start=$SECONDS
  got=0
  wait "$pid" || got=$?
  want=$((128 + $(kill -l "$sig")))
  if kill -0 "$child" 2>/dev/null; then
    kill -KILL "$child"
    fail "SIG$sig: the command (pid $child) still runs after pqleak exited: the signal was not forwarded"
  fi
  [ "$got" = "$want" ] || { show; fail "SIG$sig: exited with $got, expected $want"; }
  [ $((SECONDS - start)) -lt 10 ] || fail "SIG$sig: the command was not stopped"
done

# Reports: the command copies hand-written ones into the report directory.
copy='cp "$1"/*.json "$PQLEAK_REPORT_DIR"/; exit "${2:-0}"'
expect 23 "$PQLEAK" run --json "$T/m.json" -- sh -c "$copy" sh "$M"
has "$T/err" "pqleak: 3 connections leaked (unclosed: not closed before exit), opened at open_db (app.c:12)"
has "$T/err" "pqleak: 6 connections leaked in 3 groups (1 suppressed) across 3 processes"
pyjson "$T/m.json" 'd["trigger"] == "merged"' 'len(d["leaks"]) == 4' 'len(d["processes"]) == 3'
expect 9 "$PQLEAK" run --exitcode 9 -- sh -c "$copy" sh "$M"
expect 0 "$PQLEAK" run --exitcode 0 -- sh -c "$copy" sh "$M"
expect 0 "$PQLEAK" run --no-fail -- sh -c "$copy" sh "$M"
expect 4 "$PQLEAK" run -- sh -c "$copy" sh "$M" 4
has "$T/err" "6 connections leaked"
expect 23 "$PQLEAK" run --strict -- sh -c "$copy" sh "$M"
has "$T/err" "7 connections leaked in 4 groups"
# Shim-suppressed and held only: passes.
expect 0 "$PQLEAK" run -- sh -c 'cp "$1" "$PQLEAK_REPORT_DIR"/' sh "$M/pqleak-2001-exit-1.json"
has "$T/err" "pqleak: 2 connections leaked in 1 group (1 suppressed) across 1 process"

# A corrupt report fails closed: 2 and one line naming it; the child's own failure wins.
bad='echo "{\"schema\": \"pqleak/1\", \"trig" >"$PQLEAK_REPORT_DIR/pqleak-77-exit-1.json"; exit "${1:-0}"'
expect 2 "$PQLEAK" run --json "$T/bad.json" -- sh -c "$bad" sh
one_line "$T/err"
has "$T/err" "pqleak-77-exit-1.json"
[ ! -e "$T/bad.json" ] || fail "a merged report was written from unreadable reports"
expect 5 "$PQLEAK" run -- sh -c "$bad" sh 5
expect 0 "$PQLEAK" run --no-fail -- sh -c "$bad" sh
# Temp files of the shim (dot-prefixed) and other files are not reports.
expect 0 "$PQLEAK" run -- sh -c 'echo "{" >"$PQLEAK_REPORT_DIR/.pqleak-1-exit-1.json.tmp"; echo x >"$PQLEAK_REPORT_DIR/x.txt"'

# --report-dir: made (0700) and kept; reports already there from an earlier run do not count.
expect 23 "$PQLEAK" run --report-dir "$T/keep/reports" -- sh -c "$copy" sh "$M"
[ "$(stat -c %a "$T/keep/reports")" = 700 ] || fail "--report-dir is not mode 0700"
[ "$(ls "$T/keep/reports" | wc -l)" = 4 ] || fail "--report-dir does not hold the reports"
expect 0 "$PQLEAK" run --report-dir "$T/keep/reports" -- true
has "$T/err" "pqleak: no reports in $T/keep/reports"
[ "$(ls "$T/keep/reports" | wc -l)" = 4 ] || fail "--report-dir lost reports"
# ... and a report rewritten under the same name in this run does count.
expect 23 "$PQLEAK" run --report-dir "$T/keep/reports" -- sh -c 'cp "$1" "$PQLEAK_REPORT_DIR"/' sh \
  "$M/pqleak-1001-exit-1.json"
has "$T/err" "pqleak: 2 connections leaked in 1 group across 1 process"

# Reports written by processes the command left behind still count (pqleak waits for them).
# The left-behind process writes its report only once the command is gone (reaped by pqleak).
expect 23 "$PQLEAK" run -- sh -c '(while kill -0 $$ 2>/dev/null; do sleep 0.05; done; cp "$1" "$PQLEAK_REPORT_DIR"/) \
  >/dev/null 2>&1 & exit 0' sh "$M/pqleak-1001-exit-1.json"
has "$T/err" "2 connections leaked"
# ... but a process that never exits is not waited for forever.
start=$SECONDS
expect 0 "$PQLEAK" run -- sh -c 'sleep 60 >/dev/null 2>&1 & echo $! >"$1"' sh "$T/daemon.pid"
kill "$(cat "$T/daemon.pid")" 2>/dev/null || true
[ $((SECONDS - start)) -lt 30 ] || fail "waited too long for a left-behind process"
has "$T/err" "still running"
echo PASS
