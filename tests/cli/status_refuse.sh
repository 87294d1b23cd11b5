#!/usr/bin/env bash
# `pqleak status` refuses what it must not touch, exits 3 (unknown) with one line saying why, and never
# signals such a process (each one is still alive afterwards and dies of our SIGTERM, not of SIGUSR1):
# a process without the shim, one with the shim that never connected, one whose PQLEAK_SIGNAL is none,
# and a pid that does not exist. Usage errors exit 3 too (UNKNOWN, never CRITICAL). status_other_user.sh has another user's process
# (it needs root).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
NOHANDLER="does not run pqleak's signal handler"

# Usage errors: 3 (UNKNOWN) and one line; --help: 0.
for args in "" "--json" "12 13" "abc" "-5" "0" "--timeout" "--timeout 0 1" "--timeout x 1" "--timeout 4000 1" \
  "--bogus 1"; do
  # shellcheck disable=SC2086
  expect 3 "$PQLEAK" status $args
  one_line "$T/err"
  has "$T/err" "pqleak: status: "
  [ ! -s "$T/out" ] || fail "usage error '$args' wrote to stdout"
done
expect 3 "$PQLEAK" status abc
has "$T/err" "'abc' is not a process id"
expect 0 "$PQLEAK" status --help
has "$T/out" "pqleak status [--json] [--timeout S] PID"
expect 0 "$PQLEAK" --help
has "$T/out" "pqleak status [--json] [--timeout S] PID"

# A pid that does not exist (above any pid_max): text mode says so on stdout, --json on stderr.
expect 3 "$PQLEAK" status 4194304
has "$T/out" "PQLEAK UNKNOWN - process 4194304 does not exist"
one_line "$T/out"
[ ! -s "$T/err" ] || { show; fail "text mode wrote to stderr"; }
expect 3 "$PQLEAK" status --json 4194304
one_line "$T/err"
has "$T/err" "pqleak: status: process 4194304 does not exist"
[ ! -s "$T/out" ] || { show; fail "--json wrote something that is not JSON to stdout"; }

# No shim at all: refused, not signalled.
sleep 30 &
p=$!
wait_for 10 runs "$p" sleep
expect 3 "$PQLEAK" status "$p"
has "$T/out" "PQLEAK UNKNOWN - process $p $NOHANDLER (no pqleak reporter in it: it does not run the shim, or has not opened a connection yet)"
one_line "$T/out"
still_alive "$p"

# The shim preloaded, but no connection yet: no handler, so a SIGUSR1 would kill it.
LD_PRELOAD=$SHIM sleep 30 &
p=$!
wait_for 10 shim_mapped "$p"
expect 3 "$PQLEAK" status "$p"
has "$T/out" "PQLEAK UNKNOWN - process $p $NOHANDLER"
still_alive "$p"

# PQLEAK_SIGNAL=none: connected, but no handler.
serve none PQLEAK_SIGNAL=none PQLEAK_REPORT_DIR="$T/none"
expect 3 "$PQLEAK" status "$pid"
has "$T/out" "PQLEAK UNKNOWN - process $pid $NOHANDLER (its PQLEAK_SIGNAL is none)"
one_line "$T/out"
unserve
# Its exit report is there (PQLEAK_REPORT_DIR is set), but no live report was ever asked for.
ls "$T/none"/pqleak-*-exit-*.json >/dev/null || fail "no exit report in $T/none"
if ls "$T/none"/pqleak-*-signal-*.json 2>/dev/null; then fail "a live report was written with PQLEAK_SIGNAL=none"; fi

echo PASS
