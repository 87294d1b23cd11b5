#!/usr/bin/env bash
# `pqleak status` against a Python program (psycopg2 under the shim) that holds one connection, inside
# a transaction, in a long-running loop: OK, one connection, its stacks showing the script's own
# function, and the same in --json. A Python program with a SIGUSR1 handler of its own (or SIGUSR1 and
# SIGUSR2) keeps it: the shim installs none, and status refuses to send the signal (the program's
# handler never runs: after status, the program answers a ping, so any signal sent before has been
# handled by then). Without psycopg2 the test is skipped (77).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import psycopg2' 2>/dev/null || { echo "SKIP: no psycopg2 for $PY"; exit 77; }

cat >"$T/hold.py" <<'PY'
import os, signal, sys, time
import psycopg2

stop, own = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
if own:
    # The program's own use of SIGUSR1 (and SIGUSR2, as Ruby and PHP do), installed before any connection.
    signal.signal(signal.SIGUSR1, lambda *a: open(stop + ".usr1", "w").close())
if own == "both":
    signal.signal(signal.SIGUSR2, lambda *a: open(stop + ".usr2", "w").close())


def hold_connection():
    conn = psycopg2.connect("")
    cur = conn.cursor()
    cur.execute("select 1")  # psycopg2 opens a transaction: the connection stays idle in it
    return conn


conn = hold_connection()
print("ready", flush=True)
deadline = time.monotonic() + 60
pinged = False
while not os.path.exists(stop) and time.monotonic() < deadline:
    # A ping is answered one turn of the loop after it is seen: a signal sent before the ping was
    # made has reached the process by then, and its Python handler runs at the turn of the loop.
    if pinged:
        open(stop + ".pong", "w").close()
    pinged = os.path.exists(stop + ".ping") and not os.path.exists(stop + ".pong")
    time.sleep(0.05)
conn.close()
PY

# py NAME [ARG]: starts the script under the shim; sets $pid.
py() {
  rm -f "$T/stop.$1"* "$T/py.$1.out"
  PQLEAK_REPORT_DIR="$T/reports" LD_PRELOAD=$SHIM "$PY" "$T/hold.py" "$T/stop.$1" ${2:+"$2"} \
    >"$T/py.$1.out" 2>"$T/py.$1.err" &
  pid=$!
  wait_for 30 grep -qs ready "$T/py.$1.out"
}

# ping NAME: waits until the program has answered a ping (every signal sent to it before has been
# handled).
ping() {
  rm -f "$T/stop.$1.pong"
  touch "$T/stop.$1.ping"
  wait_for 30 test -e "$T/stop.$1.pong"
  rm -f "$T/stop.$1.ping"
}

# unpy NAME: stops it; it must exit 0.
unpy() {
  touch "$T/stop.$1"
  local got=0
  wait "$pid" || got=$?
  [ "$got" = 0 ] || { cat "$T/py.$1.err" >&2; fail "the Python program exited with $got, expected 0"; }
}

py hold
expect 0 "$PQLEAK" status "$pid"
first_line "$T/out" "PQLEAK OK - 1 connection open, no cap | open=1;;;0 "
has "$T/out" "process $pid ("
has "$T/out" "1 connection open:"
has "$T/out" ", idle in transaction (intrans), thread $pid"
[ "$(count "$T/out" "opened at:")" = 1 ] || { cat "$T/out" >&2; fail "expected one open stack"; }
# Both stacks show the script's own function, as a Python frame (the C frames of psycopg2 are folded).
sed -n '/opened at:/,/transaction began at:/p' "$T/out" >"$T/open"
sed -n '/transaction began at:/,$p' "$T/out" >"$T/tx"
has "$T/open" "hold_connection $T/hold.py:"
has "$T/tx" "hold_connection $T/hold.py:"
has "$T/open" "frames in _psycopg"
has "$T/out" ": $T/reports/pqleak-$pid-signal-"
expect 0 "$PQLEAK" status --json "$pid"
pyjson "$T/out" 'd["trigger"] == "signal"' "d['pid'] == $pid" 'len(d["connections"]) == 1' \
  'd["connections"][0]["tx_status"] == "intrans"' 'd["program"].rsplit("/", 1)[-1].startswith("python3")'
unpy hold

py own own-handler
expect 3 "$PQLEAK" status "$pid"
has "$T/out" "PQLEAK UNKNOWN - process $pid does not run pqleak's signal handler (pqleak runs in it, but the program handles SIGUSR1 itself; start it with PQLEAK_SIGNAL=USR2)"
one_line "$T/out"
ping own
[ ! -e "$T/stop.own.usr1" ] || fail "the program's own SIGUSR1 handler ran: status sent the signal"
# The check above could see a signal: one we send is handled by the time the ping is answered.
kill -USR1 "$pid"
ping own
[ -e "$T/stop.own.usr1" ] || fail "the program's SIGUSR1 handler did not run before it answered a ping"
unpy own

# Both signals taken: no advice to switch.
py both both
expect 3 "$PQLEAK" status "$pid"
has "$T/out" "PQLEAK UNKNOWN - process $pid does not run pqleak's signal handler (pqleak runs in it, but the program handles SIGUSR1 and SIGUSR2 itself)"
ping both
[ ! -e "$T/stop.both.usr1" ] && [ ! -e "$T/stop.both.usr2" ] || fail "a program's own handler ran: status sent a signal"
kill -USR1 "$pid"
kill -USR2 "$pid"
ping both
[ -e "$T/stop.both.usr1" ] && [ -e "$T/stop.both.usr2" ] ||
  fail "the program's handlers did not run before it answered a ping"
unpy both
echo PASS
