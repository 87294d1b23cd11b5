# Helpers for the pqleak command's tests; sourced by each tests/cli/*.sh, never run by itself.
# Every test gets a private scratch directory $T, removed on exit.
set -euo pipefail

: "${PQLEAK_CLI:?run these tests through ctest (PQLEAK_CLI is not set)}"
: "${CLI_DATA:?run these tests through ctest (CLI_DATA is not set)}"
PQLEAK=$PQLEAK_CLI
T=$(mktemp -d "${TMPDIR:-/tmp}/pqleak-clitest.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

show() {
  echo "--- stdout:" >&2
  cat "$T/out" >&2
  echo "--- stderr:" >&2
  cat "$T/err" >&2
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; fails the test after SECONDS.
wait_for() {
  local tries=$(($1 * 10))
  shift
  while ! "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || fail "timed out waiting for: $*"
    sleep 0.1
  done
}

# expect STATUS CMD...: runs CMD with stdout in $T/out and stderr in $T/err; fails unless it exits with
# STATUS.
expect() {
  local want=$1 got=0
  shift
  "$@" >"$T/out" 2>"$T/err" || got=$?
  if [ "$got" != "$want" ]; then
    show
    fail "'$*' exited with $got, expected $want"
  fi
}

# has FILE TEXT: FILE contains the fixed string TEXT.
has() {
  grep -qF -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "$(basename "$1") lacks: $2"; }
}

hasnt() {
  if grep -qF -- "$2" "$1"; then
    echo "--- $1:" >&2
    cat "$1" >&2
    fail "$(basename "$1") has: $2"
  fi
}

# count FILE TEXT: number of lines of FILE containing TEXT.
count() {
  grep -cF -- "$2" "$1" || true
}

# one_line FILE: FILE is exactly one line (usage errors and unreadable reports say one thing).
one_line() {
  local n
  n=$(wc -l <"$1")
  [ "$n" -eq 1 ] || { cat "$1" >&2; fail "$(basename "$1") has $n lines, expected 1"; }
}

# pyjson FILE EXPR...: asserts Python expressions about the JSON document d loaded from FILE.
pyjson() {
  local f=$1
  shift
  "${PYTHON:-python3}" - "$f" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for expr in sys.argv[2:]:
    if not eval(expr, {"d": d, "len": len, "sorted": sorted, "set": set, "any": any, "all": all}):
        sys.exit("FAIL: %s: not true: %s" % (sys.argv[1], expr))
PY
}
