# shellcheck shell=bash
# Helpers for the `pqleak status` tests; sourced after lib.sh, never run by itself. Every process a test
# starts in the background and has not waited for yet (the shell's jobs) is killed on exit, whatever
# happened.
: "${PQLEAK_SHIM:?}" "${PQLEAK_BIN:?}"
SHIM=$(realpath "$PQLEAK_SHIM")
trap 'kill -KILL $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT

# serve NAME [VAR=VALUE...]: starts `it_prog serve` under the shim with the extra environment (two
# connections, one idle in a transaction begun in forget_commit) and waits for "ready". Sets $pid;
# stop it with `unserve`.
serve() {
  local name=$1
  shift
  # The old output must be gone before the wait below: the new process truncates it only once started.
  rm -f "$T/stop.$name" "$T/serve.$name.out"
  env "$@" LD_PRELOAD="$SHIM" "$PQLEAK_BIN/it_prog" serve "$T/stop.$name" >"$T/serve.$name.out" \
    2>"$T/serve.$name.err" &
  pid=$!
  SERVE_NAME=$name
  wait_for 30 grep -qs ready "$T/serve.$name.out"
}

# unserve: asks the last `serve` to stop and checks it exits 0 (it was not killed by a signal).
unserve() {
  touch "$T/stop.$SERVE_NAME"
  local got=0
  wait "$pid" || got=$?
  [ "$got" = 0 ] || { cat "$T/serve.$SERVE_NAME.err" >&2; fail "it_prog serve exited with $got, expected 0"; }
}

# shim_mapped PID: the process has the shim loaded (it has exec'd the program started with LD_PRELOAD).
shim_mapped() {
  grep -qF "$SHIM" "/proc/$1/maps" 2>/dev/null
}

# runs PID PROG: the process runs PROG (it has exec'd it; before, it is still the forked shell).
runs() {
  [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$(realpath "$(command -v "$2")")" ]
}

# first_line FILE TEXT: the first line of FILE starts with TEXT.
first_line() {
  local l
  l=$(head -n 1 "$1")
  case "$l" in
  "$2"*) ;;
  *) echo "--- $1:" >&2; cat "$1" >&2; fail "first line is '$l', expected it to start with '$2'" ;;
  esac
}

# stop PID: stops the process and waits until every thread of it has stopped (a signal sent before then
# could still be handled).
stop() {
  kill -STOP "$1"
  wait_for 10 all_stopped "$1"
}

all_stopped() {
  local t
  for t in /proc/"$1"/task/*; do
    grep -q '^State:[[:space:]]*T' "$t/status" || return 1
  done
}

# pending PID SIG: the signal is pending for the (stopped) process PID, or for one of its threads (status
# sends it to the shim's reporter thread only).
pending() {
  local mask t
  for t in /proc/"$1"/status /proc/"$1"/task/*/status; do
    for mask in $(sed -n 's/^\(ShdPnd\|SigPnd\):[[:space:]]*//p' "$t"); do
      [ $(((0x$mask >> ($(kill -l "$2") - 1)) & 1)) = 0 ] || return 0
    done
  done
  return 1
}

# still_alive PID: PID was not killed by the status command's signal: ending it with SIGTERM now makes
# it exit with 143 (a SIGUSR1 would have made that 138 already).
still_alive() {
  kill -0 "$1" 2>/dev/null || fail "process $1 is gone"
  kill -TERM "$1"
  local got=0
  wait "$1" || got=$?
  [ "$got" = 143 ] || fail "process $1 exited with $got, expected 143 (killed by our SIGTERM)"
}
