#!/usr/bin/env bash
# `pqleak status` and other users' processes: run as 'nobody' against root's process it is refused as
# not theirs (exit 3, one line, before anything else is looked at, and the process is never
# signalled); root may ask nobody's process, and nobody may ask its own (both refused here only because
# the shim has no handler in a process that never connected). Needs root, setpriv and a 'nobody' that
# can run the command and read the shim; otherwise the test is skipped (77) and says why.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/status_lib.sh"
: "${PGHOST:?run through tools/pgserver exec}"
NOHANDLER="does not run pqleak's signal handler"
skip() {
  echo "SKIP: another user's process: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (to run processes as nobody)"
command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
as_nobody test -x "$PQLEAK" -a -r "$SHIM" || skip "user nobody cannot run $PQLEAK or read $SHIM"

# Root's process, status run as nobody: not yours.
LD_PRELOAD=$SHIM sleep 30 &
p=$!
wait_for 10 shim_mapped "$p"
expect 3 as_nobody "$PQLEAK" status "$p"
has "$T/out" "PQLEAK UNKNOWN - process $p belongs to user root (uid 0), not to you; only its owner or root may ask it for a report"
one_line "$T/out"
expect 3 as_nobody "$PQLEAK" status --json "$p"
one_line "$T/err"
has "$T/err" "pqleak: status: process $p belongs to user root (uid 0), not to you"
still_alive "$p"

# Nobody's process: root and nobody get past the owner check (to the missing handler).
# setpriv itself, not the function, so that $! is the process that becomes sleep.
setpriv --reuid=nobody --regid=nogroup --clear-groups env LD_PRELOAD="$SHIM" sleep 30 &
p=$!
owned_by_nobody() { grep -q '^Uid:[[:space:]]*65534[[:space:]]' "/proc/$1/status"; }
wait_for 10 owned_by_nobody "$p"
wait_for 10 shim_mapped "$p"
expect 3 "$PQLEAK" status "$p"
has "$T/out" "PQLEAK UNKNOWN - process $p $NOHANDLER"
hasnt "$T/out" "not to you"
expect 3 as_nobody "$PQLEAK" status "$p"
has "$T/out" "PQLEAK UNKNOWN - process $p $NOHANDLER"
hasnt "$T/out" "not to you"
still_alive "$p"
echo PASS
